//! The etcd engine as a caller meets it: etcd's limits are typed errors that store nothing (a
//! transaction with more writes than an etcd transaction holds, a value larger than an etcd
//! request), and a store works from tokio's blocking pool and may be dropped in a task.
#![cfg(feature = "etcd")]

mod etcd;

use revkv::Error;

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
