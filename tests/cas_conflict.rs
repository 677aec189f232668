//! Compare-and-swap semantics of insert, update, delete and `update_with`, one thread.

use revkv::{Conflict, Error, Store, Version, Versioned};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    title: String,
    body: String,
}

fn doc(title: &str, body: &str) -> Doc {
    Doc {
        title: title.into(),
        body: body.into(),
    }
}

#[test]
fn insert_get_update_delete_round_trip() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;

    let v1 = docs.insert("d1", doc("a", "first"))?;
    let got = docs.get("d1")?.expect("inserted");
    assert_eq!(got.version, v1);
    assert_eq!(got.value, doc("a", "first"));

    let v2 = docs.update("d1", v1, doc("a", "second"))?;
    assert!(v2 > v1);
    assert_eq!(docs.get("d1")?.expect("updated").value.body, "second");

    docs.delete("d1", v2)?;
    assert_eq!(docs.get("d1")?, None);
    Ok(())
}

#[test]
fn stale_update_carries_the_current_record() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let v1 = docs.insert("d1", doc("a", "first"))?;
    let v2 = docs.update("d1", v1, doc("a", "winner"))?;

    let err = docs.update("d1", v1, doc("a", "loser")).unwrap_err();
    let Error::Conflict(conflict) = &err else {
        panic!("expected a conflict, got {err:?}")
    };
    let Conflict::VersionMismatch {
        collection,
        key,
        expected,
        current,
        ..
    } = conflict
    else {
        panic!("expected a version mismatch, got {conflict:?}")
    };
    assert_eq!((collection.as_str(), key.as_str()), ("docs", "d1"));
    assert_eq!((*expected, *current), (v1, Some(v2)));
    let theirs: Versioned<Doc> = conflict.current_record()?.expect("record exists");
    assert_eq!(theirs.version, v2);
    assert_eq!(theirs.value.body, "winner");
    assert_eq!(docs.get("d1")?.expect("kept").value.body, "winner");
    Ok(())
}

#[test]
fn insert_of_a_taken_key_is_already_exists() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let v1 = docs.insert("d1", doc("a", "first"))?;
    let err = docs.insert("d1", doc("b", "second")).unwrap_err();
    let Some(conflict @ Conflict::AlreadyExists { current, .. }) = err.as_conflict() else {
        panic!("expected AlreadyExists, got {err:?}")
    };
    assert_eq!(*current, v1);
    let existing: Versioned<Doc> = conflict.current_record()?.expect("carried");
    assert_eq!(existing.value.title, "a");
    Ok(())
}

#[test]
fn absent_keys() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    assert_eq!(docs.get("nope")?, None);

    let err = docs
        .update("nope", Version::new(1), doc("x", "y"))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::VersionMismatch {
            current: None,
            record: None,
            ..
        })
    ));
    let err = docs.delete("nope", Version::new(1)).unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::VersionMismatch { current: None, .. })
    ));
    let err = docs.update_with("nope", Clone::clone).unwrap_err();
    assert!(matches!(err, Error::NotFound { ref key, .. } if key == "nope"));
    Ok(())
}

#[test]
fn stale_delete_is_refused_and_keeps_the_record() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let v1 = docs.insert("d1", doc("a", "1"))?;
    let v2 = docs.update("d1", v1, doc("a", "2"))?;
    let err = docs.delete("d1", v1).unwrap_err();
    assert_eq!(
        err.as_conflict().and_then(Conflict::current_version),
        Some(v2)
    );
    assert!(docs.get("d1")?.is_some());
    Ok(())
}

#[test]
fn versions_never_repeat_across_delete_and_recreate() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let mut last = docs.insert("d1", doc("a", "1"))?;
    for round in 0..20 {
        docs.delete("d1", last)?;
        let again = docs.insert("d1", doc("a", &round.to_string()))?;
        assert!(again > last, "re-created at {again} after {last}");
        // The old version can never match again.
        assert!(docs.update("d1", last, doc("z", "z")).is_err());
        last = again;
    }
    Ok(())
}

#[test]
fn update_with_returns_the_new_record() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let v1 = docs.insert("d1", doc("a", "x"))?;
    let after = docs.update_with("d1", |d: &Doc| Doc {
        body: format!("{}y", d.body),
        ..d.clone()
    })?;
    assert!(after.version > v1);
    assert_eq!(after.value.body, "xy");
    assert_eq!(docs.get("d1")?, Some(after));
    Ok(())
}

#[test]
fn conflicts_explain_themselves() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let v1 = docs.insert("d1", doc("a", "x"))?;
    docs.update("d1", v1, doc("a", "y"))?;
    let stale = docs
        .update("d1", v1, doc("a", "z"))
        .unwrap_err()
        .to_string();
    assert!(
        stale.contains("docs/d1") && stale.contains("re-read"),
        "{stale}"
    );
    let taken = docs.insert("d1", doc("a", "z")).unwrap_err().to_string();
    assert!(taken.contains("already exists"), "{taken}");
    Ok(())
}
