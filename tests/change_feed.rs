//! The change feed: every committed change exactly once, in commit order, resumable across
//! restarts, never a change of an aborted transaction, consistent after a crash.
//!
//! Tests on a temporary store run on either engine; reopening, retention and crashes are the
//! local engine's (etcd's compaction: `tests/etcd_engine.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use revkv::{Change, ChangeKind, Conflict, Error, Retention, Store, Version};

fn feed_store(dir: &std::path::Path) -> revkv::Result<Store> {
    Store::builder()
        .path(dir)
        .change_feed(Retention::default())
        .open()
}

fn temporary_feed_store() -> revkv::Result<Store> {
    Store::builder().change_feed(Retention::default()).open()
}

/// What a change says happened, comparable with what a writer saw acknowledged.
type Seen = (String, String, Version, ChangeKind);

fn seen(change: &Change) -> Seen {
    (
        change.collection.clone(),
        change.key.clone(),
        change.version,
        change.kind,
    )
}

/// One writer's work: inserts, updates and deletes of its own keys, a transaction over two
/// collections per round, and one that aborts. Returns what it saw acknowledged (a deletion's
/// version is not returned, so deletions are listed with an empty collection, by key).
const WRITERS: u64 = 4;
const ROUNDS: u64 = 150;
/// Each round commits a change to `docs` and a transaction of two inserts.
const CHANGES_PER_ROUND: u64 = 3;

fn write_rounds(store: &Store, writer: u64) -> Vec<Seen> {
    let docs = store.collection::<u64>("docs").open().expect("docs");
    let other = store.collection::<u64>("other").open().expect("other");
    let mut mine = Vec::new();
    for i in 0..ROUNDS {
        let key = format!("w{writer}-{}", i % 20);
        match docs.get(&key).expect("read") {
            None => {
                let v = docs.insert(&key, i).expect("insert");
                mine.push(("docs".into(), key.clone(), v, ChangeKind::Insert));
            }
            Some(current) if i % 3 == 0 => {
                docs.delete(&key, current.version).expect("delete");
                mine.push((
                    String::new(),
                    key.clone(),
                    current.version,
                    ChangeKind::Delete,
                ));
            }
            Some(current) => {
                let v = docs.update(&key, current.version, i).expect("update");
                mine.push(("docs".into(), key.clone(), v, ChangeKind::Update));
            }
        }
        let (a, b) = (format!("t{writer}-{i}-a"), format!("t{writer}-{i}-b"));
        let pair = store
            .transaction(|tx| Ok((tx.insert(&other, &a, i)?, tx.insert(&other, &b, i)?)))
            .expect("transaction");
        mine.push(("other".into(), a, pair.0, ChangeKind::Insert));
        mine.push(("other".into(), b, pair.1, ChangeKind::Insert));
        let aborted = store.transaction(|tx| {
            tx.insert(&other, &format!("aborted-{writer}-{i}"), i)?;
            Err::<(), _>(Conflict::rule("nope", "abort").into())
        });
        assert!(aborted.is_err());
    }
    mine
}

#[test]
fn a_reader_concurrent_with_four_writers_sees_every_commit_once_in_order() -> revkv::Result<()> {
    let store = temporary_feed_store()?;
    let acknowledged: Mutex<BTreeSet<Seen>> = Mutex::new(BTreeSet::new());
    let barrier = Barrier::new(usize::try_from(WRITERS).expect("a few writers") + 1);
    let read: Vec<Change> = std::thread::scope(|s| {
        for writer in 0..WRITERS {
            let (store, acknowledged, barrier) = (&store, &acknowledged, &barrier);
            s.spawn(move || {
                barrier.wait();
                let mine = write_rounds(store, writer);
                acknowledged.lock().expect("lock").extend(mine);
            });
        }
        // The reader follows the feed while the writers write; a change that never shows up
        // fails the test instead of hanging it.
        s.spawn(|| {
            barrier.wait();
            let mut watch = store.watch(0).expect("watch");
            (0..WRITERS * ROUNDS * CHANGES_PER_ROUND)
                .map(|_| {
                    watch
                        .next_timeout(Duration::from_secs(30))
                        .expect("next change")
                        .expect("a change within 30 s")
                })
                .collect()
        })
        .join()
        .expect("reader")
    });

    let seqs: Vec<u64> = read.iter().map(|c| c.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order or repeated"
    );
    assert!(
        read.iter().all(|c| !c.key.starts_with("aborted-")),
        "a change of an aborted transaction"
    );
    // Nothing beyond what was committed: the feed is drained.
    assert_eq!(store.changes_since(*seqs.last().expect("some"))?.count(), 0);
    let mut expected = acknowledged.into_inner().expect("lock");
    let mut deletes: BTreeMap<String, usize> = BTreeMap::new();
    expected.retain(|(collection, key, _, _)| {
        if collection.is_empty() {
            *deletes.entry(key.clone()).or_default() += 1;
        }
        !collection.is_empty()
    });
    let mut read_deletes: BTreeMap<String, usize> = BTreeMap::new();
    let mut read_rest = BTreeSet::new();
    for change in &read {
        if change.kind == ChangeKind::Delete {
            *read_deletes.entry(change.key.clone()).or_default() += 1;
        } else {
            assert!(read_rest.insert(seen(change)), "seen twice: {change:?}");
        }
    }
    assert_eq!(read_rest, expected);
    assert_eq!(read_deletes, deletes);
    // Values decode as what was written: each `other` key ends in its round's number.
    for change in read.iter().filter(|c| c.collection == "other") {
        let round: u64 = change
            .key
            .split('-')
            .nth(1)
            .expect("round")
            .parse()
            .expect("number");
        assert_eq!(change.value::<u64>()?, Some(round), "{change:?}");
    }
    Ok(())
}

#[test]
fn resuming_after_a_reopen_continues_without_gaps() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let position = {
        let store = feed_store(dir.path())?;
        let docs = store.collection::<String>("docs").open()?;
        for i in 0..50 {
            docs.insert(&format!("a{i}"), format!("v{i}"))?;
        }
        let all: Vec<Change> = store.changes_since(0)?.collect::<revkv::Result<_>>()?;
        assert_eq!(all.len(), 50);
        all.last().expect("50").seq
    };
    let store = feed_store(dir.path())?;
    let docs = store.collection::<String>("docs").open()?;
    let v = docs.update(
        "a0",
        docs.get("a0")?.expect("a0").version,
        "changed".to_owned(),
    )?;
    docs.insert("b", "new".to_owned())?;
    let after: Vec<Change> = store
        .changes_since(position)?
        .collect::<revkv::Result<_>>()?;
    assert_eq!(after.len(), 2);
    assert_eq!(
        (after[0].key.as_str(), after[0].version, after[0].kind),
        ("a0", v, ChangeKind::Update)
    );
    assert_eq!(after[0].value::<String>()?, Some("changed".to_owned()));
    assert_eq!(
        (after[1].key.as_str(), after[1].kind),
        ("b", ChangeKind::Insert)
    );
    assert_eq!(store.changes_since(0)?.count(), 52);
    Ok(())
}

#[test]
fn a_position_older_than_the_retained_history_is_history_compacted() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::builder()
        .path(dir.path())
        .change_feed(Retention::new(100, Duration::from_secs(3600)))
        .open()?;
    let docs = store.collection::<u32>("docs").open()?;
    for i in 0..3_000 {
        docs.insert(&format!("k{i}"), i)?;
        if i % 500 == 0 {
            store.flush()?; // entries become prunable once known applied
        }
    }
    let Err(Error::HistoryCompacted { oldest }) = store.changes_since(0) else {
        panic!("the first changes should have been pruned");
    };
    assert!(oldest > 1);
    let rest = store.changes_since(oldest - 1)?.count();
    assert!(rest >= 100, "at least the retained changes remain: {rest}");
    Ok(())
}

#[test]
fn watch_waits_for_the_next_commit() -> revkv::Result<()> {
    let store = temporary_feed_store()?;
    let docs = store.collection::<u32>("docs").open()?;
    let mut watch = store.watch(0)?;
    assert_eq!(watch.next_timeout(Duration::from_millis(20))?, None);
    std::thread::scope(|s| {
        let waiter = s.spawn(move || watch.next_change().expect("change"));
        docs.insert("k", 7).expect("insert");
        let change = waiter.join().expect("waiter");
        assert_eq!(
            (change.key.as_str(), change.value::<u32>().expect("decodes")),
            ("k", Some(7))
        );
    });
    Ok(())
}

#[test]
fn a_store_without_a_feed_says_so() -> revkv::Result<()> {
    let store = Store::temporary()?;
    assert!(matches!(store.changes_since(0), Err(Error::NoChangeFeed)));
    Ok(())
}

/// After a crash at any write, the records are exactly what replaying the feed gives.
#[cfg(feature = "fault-injection")]
#[test]
fn after_a_crash_at_any_write_the_feed_and_the_records_agree() -> revkv::Result<()> {
    for crash_point in 0.. {
        let dir = tempfile::tempdir()?;
        let finished = Store::builder()
            .path(dir.path())
            .change_feed(Retention::default())
            .crash_after_writes(crash_point)
            .open()
            .and_then(|store| {
                let docs = store.collection::<u32>("docs").open()?;
                let v = docs.insert("a", 1)?;
                store.transaction(|tx| {
                    tx.update(&docs, "a", v, 2)?;
                    tx.insert(&docs, "b", 3)?;
                    Ok(())
                })?;
                let b = docs.get("b")?.expect("b").version;
                docs.delete("b", b)
            })
            .is_ok();
        let store = feed_store(dir.path())?;
        let docs = store.collection::<u32>("docs").open()?;
        let mut replayed: BTreeMap<String, (Version, u32)> = BTreeMap::new();
        for change in store.changes_since(0)? {
            let change = change?;
            match change.value::<u32>()? {
                Some(value) => replayed.insert(change.key.clone(), (change.version, value)),
                None => replayed.remove(&change.key),
            };
        }
        let stored: BTreeMap<String, (Version, u32)> = docs
            .iter()
            .map(|r| r.map(|(k, v)| (k, (v.version, v.value))))
            .collect::<revkv::Result<_>>()?;
        assert_eq!(stored, replayed, "crash point {crash_point}");
        if finished {
            assert!(crash_point > 5);
            return Ok(());
        }
    }
    unreachable!()
}
