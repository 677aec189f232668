//! `Durability::Immediate` makes a write durable in revkv's journal before the engine applies
//! it, so an acknowledged write survives even if the engine loses everything it wrote since
//! its last checkpoint (sled's own flush is no durability barrier).
//!
//! A child process (this test binary, re-run) opens a store in Immediate mode, writes a first
//! batch, flushes (a checkpoint: the engine is durable on its own), copies the engine's files
//! aside, then writes a second batch: inserts, updates, deletes, a transaction, unique index
//! changes. It reports each acknowledged write and exits without closing the store. The
//! parent puts the copied engine files back, which is what a power loss may leave (a prefix of
//! the engine's writes: none after the checkpoint), and reopens: every acknowledged write must
//! be back, the indexes must match the records, and the change feed must list each write once.

mod child;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use revkv::{ChangeKind, Collection, Durability, Retention, Store, StoreBuilder, Version};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "REVKV_JOURNAL_CHILD_DIR";
/// What the engine writes in its directory; the rest (`journal`, `revkv.lock`) is revkv's.
const ENGINE_FILES: [&str; 3] = ["conf", "db", "blobs"];

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    name: String,
    email: String,
}

fn users(store: &Store) -> revkv::Result<Collection<User>> {
    store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()
}

/// The store as child and parent open it, in `durability` mode, with a change feed.
fn store(dir: &Path, durability: Durability) -> StoreBuilder {
    Store::builder()
        .path(dir)
        .durability(durability)
        .change_feed(Retention::default())
}

fn user(i: usize, round: usize) -> User {
    User {
        name: format!("user {i}, round {round}"),
        email: format!("u{i}.r{round}@example.com"),
    }
}

/// The child: two batches around a checkpoint, then an exit that closes nothing.
#[test]
#[ignore = "run by acknowledged_writes_come_back_from_the_journal as a child process"]
fn journal_child() {
    let dir = std::env::var_os(CHILD_ENV).expect("run by the journal test");
    let dir = Path::new(&dir);
    let store = store(&dir.join("store"), Durability::Immediate)
        .open()
        .expect("open");
    let users = users(&store).expect("collection");
    for i in 0..20 {
        users.insert(&format!("u{i}"), user(i, 0)).expect("insert");
    }
    store.flush().expect("checkpoint");
    copy_engine_files(&dir.join("store"), &dir.join("engine-copy"));

    // Acknowledged from here on: reported as "key version" or "key gone".
    for i in 0..10 {
        let current = users.get(&format!("u{i}")).expect("get").expect("present");
        let version = users
            .update(&format!("u{i}"), current.version, user(i, 1))
            .expect("update");
        println!("u{i} {version}");
    }
    for i in 10..15 {
        let current = users.get(&format!("u{i}")).expect("get").expect("present");
        users
            .delete(&format!("u{i}"), current.version)
            .expect("delete");
        println!("u{i} gone");
    }
    for i in 20..30 {
        let version = users.insert(&format!("u{i}"), user(i, 1)).expect("insert");
        println!("u{i} {version}");
    }
    let moved = store
        .transaction(|tx| {
            let from = tx.get(&users, "u15")?.expect("present");
            tx.delete(&users, "u15", from.version)?;
            // Takes over u15's e-mail address in the same transaction.
            tx.insert(&users, "u30", user(15, 0))
        })
        .expect("transaction");
    println!("u15 gone");
    println!("u30 {moved}");
    std::process::exit(0);
}

/// The engine's files and directories in the store directory `dir`.
fn engine_files(dir: &Path) -> Vec<std::path::PathBuf> {
    fs::read_dir(dir)
        .expect("store dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path.file_name().expect("a name").to_string_lossy();
            ENGINE_FILES.contains(&name.as_ref()) || name.starts_with("snap.")
        })
        .collect()
}

fn copy_engine_files(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("copy dir");
    for path in engine_files(from) {
        copy(&path, &to.join(path.file_name().expect("a name")));
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).expect("dir");
        for entry in fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        fs::copy(from, to).expect("copy");
    }
}

/// Replaces the engine's files in `store` with the copy: the engine forgets every write it
/// made after the checkpoint.
fn roll_engine_back(store: &Path, copy: &Path) {
    for path in engine_files(store) {
        if path.is_dir() {
            fs::remove_dir_all(path).expect("remove dir");
        } else {
            fs::remove_file(path).expect("remove");
        }
    }
    copy_engine_files(copy, store);
}

/// Runs the child in a fresh directory; returns the directory and what the child saw
/// acknowledged: the version of each key written, `None` for each key deleted.
fn run_child() -> (tempfile::TempDir, BTreeMap<String, Option<Version>>) {
    let dir = tempfile::tempdir().expect("dir");
    let child = child::command("journal_child", CHILD_ENV, dir.path())
        .expect("test binary")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child");
    let output = child.wait_with_output().expect("child output");
    assert!(output.status.success(), "the child failed: {output:?}");
    let mut acknowledged = BTreeMap::new();
    for line in BufReader::new(output.stdout.as_slice()).lines() {
        let line = line.expect("line");
        // The last two words: the test harness may print its own text ahead of the first.
        let mut words = line.split_whitespace().rev();
        let (Some(what), Some(key)) = (words.next(), words.next()) else {
            continue;
        };
        if !key.starts_with('u') {
            continue;
        }
        let version = (what != "gone").then(|| what.parse().expect("a version"));
        acknowledged.insert(key.to_owned(), version);
    }
    assert_eq!(acknowledged.len(), 27, "the child reported every write");
    (dir, acknowledged)
}

fn check_acknowledged(
    store: &Store,
    acknowledged: &BTreeMap<String, Option<Version>>,
) -> revkv::Result<()> {
    let users = users(store)?;
    for (key, version) in acknowledged {
        let found = users.get(key)?.map(|u| u.version);
        assert_eq!(&found, version, "{key} as acknowledged");
    }
    // Untouched since the checkpoint.
    for i in 16..20 {
        assert_eq!(
            users.get(&format!("u{i}"))?.map(|u| u.value),
            Some(user(i, 0))
        );
    }
    // The transaction moved the e-mail address; the index follows the records exactly.
    assert_eq!(
        users
            .find_unique("email", &user(15, 0).email)?
            .map(|u| u.version),
        acknowledged["u30"]
    );
    assert!(store.verify()?.is_clean(), "{:?}", store.verify()?);
    // The feed shows every change once, in order; the last of each key is as acknowledged.
    let mut last = BTreeMap::new();
    let mut seq = 0;
    for change in store.changes_since(0)? {
        let change = change?;
        assert!(change.seq > seq, "positions only grow");
        seq = change.seq;
        let version = (change.kind != ChangeKind::Delete).then_some(change.version);
        last.insert(change.key, version);
    }
    for (key, version) in acknowledged {
        assert_eq!(last.get(key), Some(version), "{key}'s last change");
    }
    assert_eq!(last.len(), 31, "u0..u30, each at least once");
    Ok(())
}

#[test]
fn acknowledged_writes_come_back_from_the_journal() -> revkv::Result<()> {
    let (dir, acknowledged) = run_child();
    let store_dir = dir.path().join("store");
    roll_engine_back(&store_dir, &dir.path().join("engine-copy"));
    {
        // The rolled-back engine alone has none of the second batch: what follows can fail.
        let without_journal = dir.path().join("without-journal");
        copy_engine_files(&store_dir, &without_journal);
        let store = Store::open(&without_journal)?;
        assert_eq!(users(&store)?.get("u20")?, None);
    }
    {
        let store = store(&store_dir, Durability::Immediate).open()?;
        check_acknowledged(&store, &acknowledged)?;
    }
    // Closed cleanly, the journal's frames are not applied a second time.
    let store = store(&store_dir, Durability::Immediate).open()?;
    check_acknowledged(&store, &acknowledged)
}

#[test]
fn a_store_reopened_without_immediate_durability_still_replays_its_journal() -> revkv::Result<()> {
    let (dir, acknowledged) = run_child();
    let store_dir = dir.path().join("store");
    roll_engine_back(&store_dir, &dir.path().join("engine-copy"));
    let store = store(&store_dir, Durability::OnFlush).open()?;
    check_acknowledged(&store, &acknowledged)?;
    assert!(
        !store_dir.join("journal").exists(),
        "replayed, then removed"
    );
    Ok(())
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Blob {
    writer: usize,
    round: usize,
    bytes: Vec<u8>,
}

/// Writers fill the journal several times over with large values (stored by sled as separate
/// blob files): each time, a checkpoint makes the engine durable and the journal starts over.
#[test]
fn a_full_journal_starts_over_without_losing_a_write() -> revkv::Result<()> {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 16;
    let dir = tempfile::tempdir()?;
    let open = || {
        Store::builder()
            .path(dir.path())
            .durability(Durability::Immediate)
            .open()
    };
    let blob = |writer, round| Blob {
        writer,
        round,
        bytes: vec![u8::try_from(round).expect("small"); 300 << 10],
    };
    {
        let store = open()?;
        let blobs = store.collection::<Blob>("blobs").open()?;
        std::thread::scope(|s| {
            for writer in 0..WRITERS {
                let blobs = &blobs;
                s.spawn(move || {
                    let key = format!("w{writer}");
                    let mut version = blobs.insert(&key, blob(writer, 0)).expect("insert");
                    for round in 1..ROUNDS {
                        version = blobs
                            .update(&key, version, blob(writer, round))
                            .expect("update");
                    }
                });
            }
        });
    }
    // 64 frames of 300 KiB: the 16 MiB journal filled at least once.
    let journal_len = fs::metadata(dir.path().join("journal"))?.len();
    assert!(
        journal_len < 17 << 20,
        "the journal started over: {journal_len} bytes"
    );
    let store = open()?;
    let blobs = store.collection::<Blob>("blobs").open()?;
    for writer in 0..WRITERS {
        let found = blobs.get(&format!("w{writer}"))?.map(|b| b.value);
        assert_eq!(found, Some(blob(writer, ROUNDS - 1)));
    }
    Ok(())
}
