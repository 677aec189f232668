//! Unique indexes: conflicts name the index, value and holder; updates and deletes free values.

use revkv::{Conflict, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    username: String,
    email: String,
}

fn user(username: &str, email: &str) -> User {
    User {
        username: username.into(),
        email: email.into(),
    }
}

fn users(store: &Store) -> revkv::Result<revkv::Collection<User>> {
    store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.to_lowercase())
        .unique("username", |u: &User| u.username.clone())
        .open()
}

#[test]
fn a_taken_value_is_a_unique_conflict_naming_index_value_and_holder() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    users.insert("u1", user("ann", "Ann@Example.com"))?;

    let err = users
        .insert("u2", user("anna", "ann@example.COM"))
        .unwrap_err();
    let Error::Conflict(Conflict::Unique {
        collection,
        key,
        index,
        value,
        holder,
    }) = &err
    else {
        panic!("expected a unique conflict, got {err:?}")
    };
    assert_eq!(
        (
            collection.as_str(),
            key.as_str(),
            index.as_str(),
            value.as_str(),
            holder.as_str()
        ),
        ("users", "u2", "email", "ann@example.com", "u1")
    );
    assert!(err.to_string().contains("email"), "{err}");
    assert_eq!(
        users.get("u2")?,
        None,
        "nothing of the refused insert is stored"
    );

    let err = users
        .insert("u3", user("ann", "other@example.com"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::Unique { ref index, .. }) if index == "username")
    );
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn find_unique_follows_updates_and_deletes() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    let v1 = users.insert("u1", user("ann", "ann@example.com"))?;
    let found = users
        .find_unique("email", "ann@example.com")?
        .expect("found");
    assert_eq!((found.version, found.value.username.as_str()), (v1, "ann"));

    // Changing the e-mail frees the old one in the same step.
    let v2 = users.update("u1", v1, user("ann", "ann@new.example"))?;
    assert_eq!(users.find_unique("email", "ann@example.com")?, None);
    assert_eq!(
        users
            .find_unique("email", "ann@new.example")?
            .map(|r| r.version),
        Some(v2)
    );
    users.insert("u2", user("bob", "ann@example.com"))?;

    // Deleting frees every value of the record.
    users.delete("u1", v2)?;
    assert_eq!(users.find_unique("username", "ann")?, None);
    users.insert("u3", user("ann", "ann@new.example"))?;

    assert!(matches!(
        users.find_unique("phone", "1"),
        Err(Error::UnknownIndex { .. })
    ));
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    assert_eq!((report.records, report.index_entries), (2, 4));
    Ok(())
}

#[test]
fn updating_a_record_without_changing_its_values_keeps_them() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    let v1 = users.insert("u1", user("ann", "ann@example.com"))?;
    // Same values (one only differs in case, which the index normalises).
    users.update("u1", v1, user("ann", "ANN@example.com"))?;
    assert!(users.find_unique("email", "ann@example.com")?.is_some());
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn a_new_index_is_built_from_existing_records() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path())?;
        let plain = store.collection::<User>("users").open()?;
        plain.insert("u1", user("ann", "ann@example.com"))?;
        plain.insert("u2", user("bob", "bob@example.com"))?;
    }
    let store = Store::open(dir.path())?;
    let users = users(&store)?;
    assert_eq!(
        users.find_unique("username", "bob")?.map(|r| r.value.email),
        Some("bob@example.com".to_owned())
    );
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn a_new_index_over_duplicate_values_is_refused() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path())?;
        let plain = store.collection::<User>("users").open()?;
        plain.insert("u1", user("ann", "same@example.com"))?;
        plain.insert("u2", user("bob", "same@example.com"))?;
    }
    let store = Store::open(dir.path())?;
    let err = users(&store).unwrap_err();
    assert!(
        matches!(err, Error::Schema { ref detail, .. } if detail.contains("same@example.com")),
        "{err:?}"
    );
    // The records are untouched and the collection still opens without that index.
    let by_name = store
        .collection::<User>("users")
        .unique("username", |u: &User| u.username.clone())
        .open()?;
    assert_eq!(by_name.iter().count(), 2);
    // Once the duplicate is gone the index builds, and what the refused build had written
    // is kept where it still holds and swept where it no longer does.
    let current = |key| by_name.get(key).map(|r| r.expect("exists").version);
    by_name.update("u1", current("u1")?, user("ann", "ann@example.com"))?;
    by_name.delete("u2", current("u2")?)?;
    drop(by_name);
    let users = users(&store)?;
    assert_eq!(
        users
            .find_unique("email", "ann@example.com")?
            .map(|r| r.value.username),
        Some("ann".to_owned())
    );
    assert!(users.find_unique("email", "same@example.com")?.is_none());
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    Ok(())
}

#[test]
fn a_second_declaration_must_match_the_first() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let first = users(&store)?;
    first.insert("u1", user("ann", "ann@example.com"))?;
    let same = users(&store)?;
    assert!(same.get("u1")?.is_some());
    let err = store.collection::<User>("users").open().unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    Ok(())
}

#[test]
fn an_oversize_index_value_is_refused() -> revkv::Result<()> {
    let store = Store::builder().max_key_len(32).open()?;
    let users = users(&store)?;
    let err = users
        .insert(
            "u1",
            user("ann", &format!("{}@example.com", "a".repeat(40))),
        )
        .unwrap_err();
    assert!(matches!(err, Error::IndexValueTooLong { ref index, .. } if index == "email"));
    assert_eq!(users.get("u1")?, None);
    Ok(())
}
