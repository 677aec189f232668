//! `Collection::load`: many inserts with one durability wait.

use revkv::{Conflict, Durability, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    name: String,
}

#[test]
fn load_inserts_every_record_with_growing_versions() -> revkv::Result<()> {
    let store = Store::builder().durability(Durability::Immediate).open()?;
    let users = store.collection::<User>("users").open()?;
    let records: Vec<(String, User)> = (0..1_000)
        .map(|i| {
            (
                format!("u{i:04}"),
                User {
                    name: format!("n{i}"),
                },
            )
        })
        .collect();
    let versions = users.load(records.iter().map(|(k, u)| (k, u)))?;
    assert_eq!(versions.len(), 1_000);
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
    for ((key, user), version) in records.iter().zip(&versions) {
        let stored = users.get(key)?.expect("loaded");
        assert_eq!((&stored.value, stored.version), (user, *version));
    }
    Ok(())
}

#[test]
fn load_stops_at_a_taken_key_and_keeps_what_came_before() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = store.collection::<User>("users").open()?;
    let existing = users.insert("b", User { name: "old".into() })?;
    let batch = [("a", "1"), ("b", "2"), ("c", "3")].map(|(k, n)| (k, User { name: n.into() }));
    let err = users.load(batch).unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::AlreadyExists { ref key, current, .. }) if key == "b" && current == existing
    ));
    assert_eq!(users.get("a")?.map(|r| r.value.name), Some("1".into()));
    assert_eq!(users.get("b")?.map(|r| r.value.name), Some("old".into()));
    assert_eq!(users.get("c")?, None);
    Ok(())
}

#[test]
fn load_checks_unique_indexes() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = store
        .collection::<User>("users")
        .unique("name", |u: &User| u.name.clone())
        .open()?;
    let batch = [("a", "same"), ("b", "same")].map(|(k, n)| (k, User { name: n.into() }));
    let err = users.load(batch).unwrap_err();
    assert!(matches!(err, Error::Conflict(Conflict::Unique { ref holder, .. }) if holder == "a"));
    assert!(store.verify()?.is_clean());
    Ok(())
}
