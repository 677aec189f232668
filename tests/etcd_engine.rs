//! The etcd engine as a caller meets it: etcd's limits are typed errors that store nothing (a
//! transaction with more writes than an etcd transaction holds, a value larger than an etcd
//! request), a namespace names a store whichever builder call comes first, a store works
//! from tokio's blocking pool and may be dropped in a task, stores
//! that open a new unique index at once while they write keep it exact, and the change feed
//! meets etcd's compaction of its history.
#![cfg(feature = "etcd")]

mod etcd;

use std::sync::Barrier;
use std::time::Duration;

use revkv::{Change, Conflict, Error, Store};
use serde::{Deserialize, Serialize};

#[test]
fn commits_beyond_etcds_limits_are_commit_too_large_and_store_nothing() {
    let cluster = etcd::Cluster::start();
    let store = cluster.store("limits");
    let notes = store.collection::<String>("notes").open().expect("notes");

    let too_many = store.transaction(|tx| {
        for n in 0..200 {
            tx.insert(&notes, &format!("n{n}"), "x".to_owned())?;
        }
        Ok(())
    });
    assert!(
        matches!(
            too_many,
            Err(Error::CommitTooLarge {
                what: "operations",
                found: Some(200),
                limit: 128
            })
        ),
        "{too_many:?}"
    );
    assert_eq!(notes.iter().count(), 0, "nothing of it was stored");

    let large = "x".repeat(2 * 1024 * 1024);
    let err = notes.insert("big", &large).unwrap_err();
    assert!(
        matches!(err, Error::CommitTooLarge { what: "bytes", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("more than the storage engine takes"),
        "{err}"
    );
    assert!(notes.get("big").expect("read").is_none());

    // Within the limits, the same store takes writes as before.
    notes.insert("small", "x".to_owned()).expect("insert");
}

/// A namespace given before the cluster still names the store: it is kept when dropped, not
/// removed as a temporary one is.
#[test]
fn a_namespace_given_before_the_cluster_still_names_the_store() {
    let cluster = etcd::Cluster::start();
    {
        let store = Store::builder()
            .namespace("kept")
            .etcd(cluster.endpoints())
            .open()
            .expect("store");
        let notes = store.collection::<String>("notes").open().expect("notes");
        notes.insert("n", "kept".to_owned()).expect("insert");
    }
    let store = cluster.store("kept");
    let notes = store.collection::<String>("notes").open().expect("notes");
    let kept = notes.get("n").expect("read").map(|r| r.value);
    assert_eq!(kept.as_deref(), Some("kept"));
}

#[test]
fn a_store_works_from_tokios_blocking_pool_and_drops_inside_a_task() {
    let cluster = etcd::Cluster::start();
    let store = cluster.store("tokio");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let notes = store.collection::<String>("notes").open().expect("notes");
        let written = tokio::task::spawn_blocking({
            let notes = notes.clone();
            move || notes.insert("n1", "from the blocking pool".to_owned())
        })
        .await
        .expect("the blocking task ends")
        .expect("insert");
        let read = tokio::task::spawn_blocking(move || notes.get("n1"))
            .await
            .expect("the blocking task ends")
            .expect("read")
            .expect("exists");
        assert_eq!(read.version, written);
        // The last handle goes here, on a worker of this runtime.
        drop(store);
    });
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct User {
    email: String,
}

/// Four stores, each its own engine as a process would have, open a collection whose unique
/// index is new over 100 existing records, all at once; each writes as soon as its open
/// returns, while the others may still be building. Every existing e-mail stays taken, each
/// new one gets exactly one holder, and the index ends equal to the records.
#[test]
fn stores_building_a_new_index_at_once_while_writing_keep_it_exact() {
    const EXISTING: usize = 100;
    const NEW: usize = 20;
    let cluster = etcd::Cluster::start();
    {
        let store = cluster.store("build");
        let plain = store.collection::<User>("users").open().expect("users");
        for n in 0..EXISTING {
            let email = format!("e{n}@example.com");
            plain
                .insert(&format!("old{n}"), User { email })
                .expect("insert");
        }
    }
    let opening = Barrier::new(4);
    let created: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let (cluster, opening) = (&cluster, &opening);
                scope.spawn(move || {
                    let store = cluster.store("build");
                    opening.wait();
                    let users = store
                        .collection::<User>("users")
                        .unique("email", |u: &User| u.email.clone())
                        .open()
                        .expect("open with the new index");
                    let mut created = Vec::new();
                    for n in 0..NEW {
                        let taken = User {
                            email: format!("e{}@example.com", (n * 7 + writer) % EXISTING),
                        };
                        let err = users
                            .insert(&format!("w{writer}-old{n}"), taken)
                            .unwrap_err();
                        assert!(
                            matches!(err, Error::Conflict(Conflict::Unique { .. })),
                            "{err:?}"
                        );
                        let fresh = User {
                            email: format!("new{n}@example.com"),
                        };
                        match users.insert(&format!("w{writer}-new{n}"), fresh) {
                            Ok(_) => created.push(n),
                            Err(Error::Conflict(Conflict::Unique { .. })) => {}
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                    created
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("a writer"))
            .collect()
    });
    for n in 0..NEW {
        let holders = created.iter().filter(|c| c.contains(&n)).count();
        assert_eq!(holders, 1, "new{n}@example.com was created {holders} times");
    }
    let store = cluster.store("build");
    let users = store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()
        .expect("users");
    assert_eq!(users.iter().count(), EXISTING + NEW);
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{report}");
}

/// Once etcd compacts its history, a reader that missed a change compacted away is told so
/// (and can resume from the oldest position etcd keeps), while a reader that missed nothing,
/// even if it is behind the compaction's revision, carries on.
#[test]
fn a_feed_position_etcd_compacted_is_history_compacted_only_if_a_change_was_lost() {
    let cluster = etcd::Cluster::start();
    let store = cluster.store_with_feed("feed");
    let docs = store.collection::<u32>("docs").open().expect("docs");
    let read = |since| -> revkv::Result<Vec<Change>> { store.changes_since(since)?.collect() };
    docs.insert("a", 1).expect("insert");
    let saw_a = read(0).expect("changes")[0].seq;
    docs.insert("b", 2).expect("insert");
    let saw_b = read(saw_a).expect("changes")[0].seq;
    // Writes elsewhere on the cluster move its revision past the feed's last change.
    let elsewhere = cluster.store("elsewhere");
    let other = elsewhere.collection::<u32>("other").open().expect("other");
    other.insert("x", 0).expect("insert");
    cluster.compact();

    let Err(Error::HistoryCompacted { oldest }) = read(saw_a) else {
        panic!("b was compacted away from behind a reader that had seen only a");
    };
    assert!(oldest > saw_b, "{oldest} {saw_b}");
    assert_eq!(read(oldest - 1).expect("from the oldest kept").len(), 0);
    // The reader that saw b missed nothing: it reads on, and waits, across the compaction.
    assert_eq!(read(saw_b).expect("changes").len(), 0);
    let mut watch = store.watch(saw_b).expect("watch");
    assert_eq!(
        watch.next_timeout(Duration::from_millis(50)).expect("wait"),
        None
    );
    docs.insert("c", 3).expect("insert");
    let c = watch.next_change().expect("c");
    assert_eq!(
        (c.key.as_str(), c.value::<u32>().expect("decodes")),
        ("c", Some(3))
    );
    let after_b: Vec<String> = read(saw_b)
        .expect("changes")
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(after_b, ["c"]);
    assert_eq!(read(oldest - 1).expect("from the oldest kept").len(), 1);
}
