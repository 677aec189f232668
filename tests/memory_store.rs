//! A store kept in a `revkv::Memory`: it reopens with what it held, a snapshot is independent
//! of the storage it was taken from and opens as a crash left it, and bytes planted past revkv
//! read as typed errors that `verify` reports.

use revkv::{Error, Memory, Problem, Store};

fn open(memory: &Memory) -> revkv::Result<(Store, revkv::Collection<String>)> {
    let store = Store::builder().memory(memory).open()?;
    let notes = store
        .collection::<String>("notes")
        .unique("text", |text: &String| text.clone())
        .open()?;
    Ok((store, notes))
}

#[test]
fn a_reopened_memory_store_keeps_its_records_and_never_reuses_a_version() -> revkv::Result<()> {
    let memory = Memory::new();
    let (store, notes) = open(&memory)?;
    let v1 = notes.insert("n1", "first".to_owned())?;
    let v2 = notes.update("n1", v1, "second".to_owned())?;
    drop((notes, store));

    let (_store, notes) = open(&memory)?;
    let twice = open(&memory).expect_err("one store at a time");
    assert!(matches!(twice, Error::Locked { .. }), "{twice:?}");
    let current = notes.get("n1")?.expect("kept across the reopen");
    assert_eq!((current.version, current.value.as_str()), (v2, "second"));
    notes.delete("n1", v2)?;
    let v3 = notes.insert("n1", "third".to_owned())?;
    assert!(v3 > v2, "{v3} after {v2}");
    Ok(())
}

#[test]
fn a_snapshot_taken_while_open_opens_on_its_own() -> revkv::Result<()> {
    let memory = Memory::new();
    let (store, notes) = open(&memory)?;
    notes.insert("n1", "kept".to_owned())?;
    let crash_image = memory.snapshot();
    notes.insert("n2", "after the snapshot".to_owned())?;

    // The original store is still open: the snapshot is storage of its own.
    let (copy, copied) = open(&crash_image)?;
    assert!(copied.get("n1")?.is_some());
    assert!(copied.get("n2")?.is_none(), "written after the snapshot");
    copied.insert("n3", "only in the copy".to_owned())?;
    assert!(copy.verify()?.is_clean());
    assert!(notes.get("n3")?.is_none());
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn planted_garbage_is_a_typed_error_and_a_reported_problem() -> revkv::Result<()> {
    let memory = Memory::new();
    {
        let (_store, notes) = open(&memory)?;
        notes.insert("n1", "fine".to_owned())?;
    }
    memory.plant("c/notes", b"n1", b"not a record");
    let (store, notes) = open(&memory)?;
    let err = notes.get("n1").expect_err("the bytes are no record");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let report = store.verify()?;
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Undecodable { .. })),
        "{report}"
    );
    Ok(())
}
