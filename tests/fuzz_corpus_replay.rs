//! Replays every committed seed of every cargo-fuzz target through the same function the
//! target calls (the bodies in `fuzz/bodies`, included here by path), so that `cargo test`
//! exercises the fuzz targets on stable. Each crash a fuzzing run found is kept below as its
//! own named regression test.
#![cfg(feature = "http")]

use std::path::Path;

#[path = "../fuzz/bodies/mod.rs"]
mod fuzzing;

/// Feeds each file of `fuzz/corpus/<target>` to `body`, naming the file before it runs so a
/// failure says which input broke.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the {target} corpus has too few seeds");
    for file in files {
        eprintln!("replaying {}", file.display());
        body(&std::fs::read(&file).expect("a corpus file reads"));
    }
}

#[test]
fn ops_corpus_replays_cleanly() {
    replay("ops", fuzzing::ops);
}

#[test]
fn decode_corpus_replays_cleanly() {
    replay("decode", fuzzing::decode);
}

#[test]
fn http_corpus_replays_cleanly() {
    replay("http", fuzzing::http);
}

/// `decode`, crash-af58a01f: an index entry named a record whose bytes do not decode, and
/// `Store::verify` failed with `Error::Corrupt` instead of reporting the problem.
#[test]
fn decode_regression_verify_reports_an_undecodable_indexed_record() {
    // Mode 8 plants the bytes as the record users/k0, which holds tag t0 and alias ann.
    fuzzing::decode(b"\x08\x7e\x00garbage");
}

/// `ops`, crash-84881249, found while the target kept its store in a directory: closing a
/// store and opening it again at once failed now and then with an I/O error, because sled's
/// background threads still held its lock on the log. The race is rare, so the close and
/// reopen run many times.
#[test]
fn reopen_at_once_after_close() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    for round in 0..100 {
        let store = revkv::Store::open(dir.path())?;
        let notes = store.collection::<u32>("notes").open()?;
        notes.insert(&format!("n{round}"), round)?;
    }
    let store = revkv::Store::open(dir.path())?;
    assert_eq!(store.collection::<u32>("notes").open()?.iter().count(), 100);
    Ok(())
}

/// The other side of that fix: when something outside this process's stores holds the
/// engine's lock, opening gives up after its bounded wait (10 s) with `Error::Locked`.
#[test]
fn an_engine_lock_held_elsewhere_is_locked_not_a_hang() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    // What sled's lock looks like to revkv: an exclusive lock on the file `db`.
    let log = std::fs::File::create(dir.path().join("db"))?;
    log.try_lock().expect("nobody else holds it");
    let err = revkv::Store::open(dir.path()).expect_err("must not open");
    assert!(matches!(err, revkv::Error::Locked { .. }), "{err:?}");
    drop(log);
    revkv::Store::open(dir.path())?;
    Ok(())
}
