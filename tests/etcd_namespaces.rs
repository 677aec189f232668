//! etcd namespaces an operator can grant: every key of a store in namespace `N` lies under the
//! printable prefix `revkv/N/`, as `etcdctl` lists it; names that would not stay printable and
//! unambiguous are refused; a namespace in the earlier layout is refused with a typed error, and
//! moves to the current one through an export.
#![cfg(feature = "etcd")]

mod etcd;

use std::io::Cursor;
use std::process::Command;

use revkv::{Error, Store};

/// The keys `etcdctl` lists under `prefix` ("" for every key of the cluster).
fn etcdctl_keys(cluster: &etcd::Cluster, prefix: &str) -> Vec<String> {
    let output = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &cluster.endpoints().join(",")])
        .args(["get", prefix, "--prefix", "--keys-only"])
        .output()
        .expect("etcdctl runs (Debian's etcd-client; .ci/deps)");
    etcd::listed_keys(&output)
}

#[test]
fn every_key_of_a_store_lies_under_its_printable_prefix() {
    let cluster = etcd::Cluster::start();
    let store = Store::builder()
        .etcd(cluster.endpoints())
        .namespace("shop")
        .change_feed(revkv::Retention::default())
        .open()
        .expect("store");
    let users = store
        .collection::<String>("users")
        .unique("name", Clone::clone)
        .index("initial", |name: &String| name[..1].to_owned())
        .history(2)
        .open()
        .expect("users");
    let v = users.insert("u1", "ann".to_string()).expect("ann");
    users.update("u1", v, "anna".to_string()).expect("anna");
    users
        .insert_expiring("u2", "bob".to_string(), std::time::Duration::from_secs(60))
        .expect("bob");
    store
        .transaction(|tx| tx.insert(&users, "u3", "cid".to_string()).map(|_| ()))
        .expect("a transaction");

    let listed = etcdctl_keys(&cluster, "revkv/shop/");
    assert!(
        listed.len() >= 8,
        "records, indexes, history, expiry, meta: {listed:?}"
    );
    // Nothing of the store anywhere else in the cluster, where only the store with which the
    // test cluster checks that it serves (namespace "health") keeps keys too.
    let elsewhere: Vec<String> = etcdctl_keys(&cluster, "")
        .into_iter()
        .filter(|key| !key.starts_with("revkv/health/"))
        .collect();
    assert_eq!(elsewhere, listed);
}

#[test]
fn a_namespace_that_would_not_stay_printable_and_unambiguous_is_refused() {
    let cluster = etcd::Cluster::start();
    for name in ["a/b", "", "white space", "zero\0byte", &"x".repeat(65)] {
        let opened = Store::builder()
            .etcd(cluster.endpoints())
            .namespace(name)
            .open();
        assert!(
            matches!(opened, Err(Error::InvalidName { .. })),
            "{name:?}: {opened:?}"
        );
    }
    let stored = etcdctl_keys(&cluster, "");
    assert!(
        stored.iter().all(|key| key.starts_with("revkv/health/")),
        "nothing stored: {stored:?}"
    );
}

#[test]
fn a_store_in_the_earlier_layout_is_refused_and_moves_through_an_export() {
    let cluster = etcd::Cluster::start();
    let builder = || Store::builder().etcd(cluster.endpoints());
    let dump = {
        let old = builder()
            .namespace("old")
            .etcd_legacy_layout()
            .open()
            .expect("a store in the earlier layout");
        let users = old.collection::<String>("users").open().expect("users");
        users.insert("u1", "ann".to_string()).expect("ann");
        let mut dump = Vec::new();
        old.export(&mut dump).expect("export");
        dump
    };
    let refused = builder().namespace("old").open();
    let Err(Error::LegacyLayout { namespace }) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(namespace, "old");
    assert!(
        etcdctl_keys(&cluster, "revkv/old/").is_empty(),
        "nothing written"
    );

    let moved = builder().namespace("new").open().expect("new");
    moved.import(Cursor::new(dump)).expect("import");
    let users = moved.collection::<String>("users").open().expect("users");
    assert_eq!(users.get("u1").expect("get").expect("u1").value, "ann");
}
