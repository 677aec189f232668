//! Records, versions and ABA-safety survive a close and reopen.

use revkv::{Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    body: String,
}

fn doc(body: &str) -> Doc {
    Doc { body: body.into() }
}

#[test]
fn records_and_versions_survive_reopen() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let (kept, deleted_at, highest) = {
        let store = Store::open(dir.path())?;
        let docs = store.collection::<Doc>("docs").open()?;
        let kept = docs.insert("kept", doc("hello"))?;
        let kept = docs.update("kept", kept, doc("hello again"))?;
        let gone = docs.insert("gone", doc("bye"))?;
        docs.delete("gone", gone)?;
        store.flush()?;
        (kept, gone, kept.max(gone))
    };

    let store = Store::open(dir.path())?;
    let docs = store.collection::<Doc>("docs").open()?;
    let record = docs.get("kept")?.expect("survived");
    assert_eq!((record.version, record.value), (kept, doc("hello again")));
    assert_eq!(docs.get("gone")?, None);

    // The old version still works for CAS; new versions start above everything issued before.
    let next = docs.update("kept", kept, doc("after reopen"))?;
    assert!(next > highest);
    let recreated = docs.insert("gone", doc("back"))?;
    assert!(recreated > deleted_at, "{recreated} reused an old version");
    assert!(docs.update("gone", deleted_at, doc("aba")).is_err());
    Ok(())
}

#[test]
fn versions_issued_but_never_flushed_are_not_reissued() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut issued: Vec<Version> = Vec::new();
    for round in 0..3 {
        let store = Store::open(dir.path())?;
        let docs = store.collection::<Doc>("docs").open()?;
        for i in 0..50 {
            let key = format!("k{round}-{i}");
            issued.push(docs.insert(&key, doc("x"))?);
        }
        // No flush: the versions were still handed out and must never come back.
    }
    let mut sorted = issued.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), issued.len());
    assert_eq!(sorted, issued, "versions must grow across sessions");
    Ok(())
}

#[test]
fn a_store_cannot_be_opened_twice() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = Store::open(dir.path())?;
    let err = Store::open(dir.path()).expect_err("second open must fail");
    assert!(matches!(err, revkv::Error::Locked { .. }), "{err:?}");
    drop(first);
    Store::open(dir.path())?;
    Ok(())
}

/// A clean close gives back the rest of its version lease: the next session's first version
/// follows right after the last one issued, instead of a lease (a million versions) later.
/// After a crash the rest of the lease is skipped; `crash_recovery.rs` checks that no version
/// repeats then.
#[test]
fn versions_continue_without_a_jump_after_a_clean_close() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut last = None;
    for round in 0..3 {
        let store = Store::open(dir.path())?;
        let docs = store.collection::<Doc>("docs").open()?;
        let first = docs.insert(&format!("k{round}"), doc("x"))?;
        if let Some(last) = last {
            assert_eq!(first.get(), Version::get(last) + 1, "round {round}");
        }
        last = Some(docs.update(&format!("k{round}"), first, doc("y"))?);
    }
    Ok(())
}
