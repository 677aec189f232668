//! Faults below the store: damaged files, a read-only or full file system, another process
//! holding the store. Each gives a typed error, never a panic, and what was acknowledged before
//! stays readable.

mod child;

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use revkv::{Collection, Durability, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    body: String,
}

fn doc(body: &str) -> Doc {
    Doc { body: body.into() }
}

/// Opens the store keeping only 1 MiB of free space in reserve, to fit small test mounts.
fn open(dir: &Path) -> revkv::Result<Store> {
    Store::builder().path(dir).min_free_bytes(1 << 20).open()
}

/// Writes `n` documents and flushes them.
fn fill(dir: &Path, n: usize) -> revkv::Result<()> {
    let store = open(dir)?;
    let docs = store.collection::<Doc>("docs").open()?;
    for i in 0..n {
        docs.insert(&format!("d{i}"), doc(&format!("body {i}")))?;
    }
    store.flush()
}

/// Opens the store and reads every document, returning the numbers of those it holds.
fn read_all(dir: &Path) -> revkv::Result<Vec<usize>> {
    let store = open(dir)?;
    let docs = store.collection::<Doc>("docs").open()?;
    let mut held = Vec::new();
    for entry in &docs {
        let (key, record) = entry?;
        assert_eq!(record.value.body, format!("body {}", &key[1..]));
        held.push(key[1..].parse().expect("a number"));
    }
    held.sort_unstable();
    Ok(held)
}

/// After damage to the log of a store `fill`ed with `written` documents: either a typed error,
/// or the first documents in the order they were written, none missing in between.
fn assert_prefix_or_typed_error(dir: &Path, written: usize) {
    match read_all(dir) {
        Ok(held) => {
            assert!(held.len() <= written);
            assert_eq!(held, (0..held.len()).collect::<Vec<_>>(), "not a prefix");
        }
        Err(e) => assert!(
            matches!(e, Error::Corrupt { .. } | Error::Io(_) | Error::Storage(_)),
            "{e:?}"
        ),
    }
}

#[test]
fn a_damaged_log_is_a_typed_error_or_a_consistent_prefix() -> revkv::Result<()> {
    for (offset_fraction, len) in [(2, 64), (3, 4096), (4, 1)] {
        let dir = tempfile::tempdir()?;
        fill(dir.path(), 500)?;
        let log = dir.path().join("db");
        let size = fs::metadata(&log)?.len();
        let mut file = OpenOptions::new().write(true).open(&log)?;
        file.seek(SeekFrom::Start(size / offset_fraction))?;
        file.write_all(&vec![0xa5; len])?;
        drop(file);
        assert_prefix_or_typed_error(dir.path(), 500);
    }
    Ok(())
}

#[test]
fn a_truncated_log_recovers_a_prefix_or_fails_cleanly() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    fill(dir.path(), 500)?;
    let log = dir.path().join("db");
    let size = fs::metadata(&log)?.len();
    OpenOptions::new()
        .write(true)
        .open(&log)?
        .set_len(size / 2)?;
    assert_prefix_or_typed_error(dir.path(), 500);
    Ok(())
}

/// A tmpfs mounted for one test, unmounted on drop. `None` where this process may not mount
/// (then the test reports that it did not run).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?.keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            Some(Self(dir))
        } else {
            eprintln!("not run: this environment cannot mount a tmpfs");
            None
        }
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn a_read_only_file_system_is_a_typed_error_and_loses_nothing() -> revkv::Result<()> {
    let Some(mount) = Mount::tmpfs("16m") else {
        return Ok(());
    };
    let dir = mount.0.join("store");
    fill(&dir, 100)?;
    mount.remount("ro");
    let err = open(&dir).expect_err("a read-only store cannot be opened for writing");
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    mount.remount("rw");
    assert_eq!(read_all(&dir)?, (0..100).collect::<Vec<_>>());
    Ok(())
}

/// Inserts 20 KB documents `big0`, `big1`, ..., running `after_each` after each, until the
/// store refuses one for want of space; returns its number. Any other error fails the test.
fn insert_until_disk_full(
    docs: &Collection<Doc>,
    after_each: impl Fn() -> revkv::Result<()>,
) -> usize {
    let big = doc(&"x".repeat(20_000));
    let insert = |i: usize| {
        docs.insert(&format!("big{i}"), &big)
            .and_then(|_| after_each())
    };
    (0..1_000)
        .find(|&i| match insert(i) {
            Ok(()) => false,
            Err(Error::DiskFull { .. }) => true,
            Err(e) => panic!("{e:?}"),
        })
        .expect("the disk fills up")
}

#[test]
fn a_full_disk_is_a_typed_error_and_flushed_data_stays_readable() -> revkv::Result<()> {
    let Some(mount) = Mount::tmpfs("8m") else {
        return Ok(());
    };
    let dir = mount.0.join("store");
    fill(&dir, 100)?;
    {
        let store = Store::builder().path(&dir).min_free_bytes(3 << 20).open()?;
        let docs = store.collection::<Doc>("docs").open()?;
        insert_until_disk_full(&docs, || store.flush());
        // What was flushed before is still readable through the same handle.
        assert_eq!(docs.get("d7")?.map(|r| r.value), Some(doc("body 7")));
    }
    mount.remount("size=64m");
    let store = open(&dir)?;
    let docs = store.collection::<Doc>("docs").open()?;
    for i in 0..100 {
        assert_eq!(
            docs.get(&format!("d{i}"))?.map(|r| r.value),
            Some(doc(&format!("body {i}")))
        );
    }
    Ok(())
}

/// A write refused for want of space stores nothing, now or after a restart (in Immediate
/// mode its journal frame must not be written either, or reopening would replay it), and the
/// store stays usable: once space is freed it takes writes again, without a reopen.
#[test]
fn a_write_refused_on_a_full_disk_stores_nothing_and_the_store_stays_usable() -> revkv::Result<()> {
    // Immediate mode needs room for its 16 MiB journal besides the data.
    for (durability, size) in [(Durability::OnFlush, "8m"), (Durability::Immediate, "24m")] {
        let Some(mount) = Mount::tmpfs(size) else {
            return Ok(());
        };
        let dir = mount.0.join("store");
        let refused = {
            let store = Store::builder()
                .path(&dir)
                .durability(durability)
                .min_free_bytes(3 << 20)
                .open()?;
            let docs = store.collection::<Doc>("docs").open()?;
            let refused = insert_until_disk_full(&docs, || Ok(()));
            let stored = docs.get(&format!("big{refused}"))?;
            assert!(stored.is_none(), "{durability:?}: refused, yet stored");
            mount.remount("size=64m");
            docs.insert("after", doc("room again"))?;
            store.flush()?;
            refused
        };
        let store = open(&dir)?;
        let docs = store.collection::<Doc>("docs").open()?;
        let replayed = docs.get(&format!("big{refused}"))?;
        assert!(
            replayed.is_none(),
            "{durability:?}: refused, yet stored after a reopen"
        );
        for i in 0..refused {
            assert!(
                docs.get(&format!("big{i}"))?.is_some(),
                "{durability:?}: big{i}"
            );
        }
        assert_eq!(docs.get("after")?.map(|r| r.value), Some(doc("room again")));
    }
    Ok(())
}

const HOLDER_ENV: &str = "REVKV_HOLDER_DIR";

/// Child process for the test below: holds the store open until its stdin closes.
#[test]
#[ignore = "run by a_store_held_by_another_process_is_locked as a child process"]
fn hold_store_open() {
    let dir = std::env::var_os(HOLDER_ENV).expect("run by the parent test");
    let _store = open(Path::new(&dir)).expect("child opens the store");
    println!("holding");
    std::io::stdout().flush().expect("stdout");
    std::io::read_to_string(std::io::stdin()).expect("stdin");
}

#[test]
fn a_store_held_by_another_process_is_locked() -> revkv::Result<()> {
    use std::io::BufRead;
    let dir = tempfile::tempdir()?;
    fill(dir.path(), 10)?;
    let mut child = child::command("hold_store_open", HOLDER_ENV, dir.path())?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    while !line.contains("holding") {
        line.clear();
        assert!(
            stdout.read_line(&mut line)? > 0,
            "the child exited: {:?}",
            child.wait()?
        );
    }
    let err = open(dir.path()).expect_err("held by the child");
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    drop(child.stdin.take()); // lets the child finish and release the store
    assert!(child.wait()?.success());
    assert_eq!(read_all(dir.path())?, (0..10).collect::<Vec<_>>());
    Ok(())
}
