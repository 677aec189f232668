//! Round trips on etcd, counted by the cluster itself (its gRPC request counters): an update
//! of a version this process has read or written, alone or in a transaction, sends its
//! transaction without reading the record again, and a guess that another process made stale
//! costs one read, never a wrong write.
#![cfg(feature = "etcd")]

mod etcd;

use revkv::{Conflict, Error};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    email: String,
    visits: u64,
}

/// The requests of `method` (`Range`, `Txn`, ...) every member has handled, added up.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "counters of a test's few requests, printed as whole numbers"
)]
fn handled(cluster: &etcd::Cluster, method: &str) -> u64 {
    let needle = format!("grpc_method=\"{method}\"");
    cluster
        .endpoints()
        .iter()
        .map(|endpoint| {
            let mut answer = ureq::get(&format!("{endpoint}/metrics"))
                .call()
                .expect("the member's metrics");
            let text = answer.body_mut().read_to_string().expect("text");
            text.lines()
                .filter(|l| l.starts_with("grpc_server_handled_total{") && l.contains(&needle))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum::<f64>() as u64
}

/// The `Range` and `Txn` requests that `work` made.
fn requests<R>(cluster: &etcd::Cluster, work: impl FnOnce() -> R) -> (R, u64, u64) {
    let (ranges, txns) = (handled(cluster, "Range"), handled(cluster, "Txn"));
    let result = work();
    let ranges = handled(cluster, "Range") - ranges;
    let txns = handled(cluster, "Txn") - txns;
    (result, ranges, txns)
}

#[test]
fn an_update_of_a_version_this_process_saw_is_one_transaction_and_no_read() {
    let cluster = etcd::Cluster::start();
    let store = cluster.store("round-trips");
    let users = store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()
        .expect("users");
    let ada = |visits| User {
        email: "ada@example.com".into(),
        visits,
    };
    let v1 = users.insert("u1", ada(0)).expect("insert");

    let (v2, ranges, txns) = requests(&cluster, || users.update("u1", v1, ada(1)));
    let v2 = v2.expect("the version it wrote");
    assert_eq!((ranges, txns), (0, 1), "update of the version just written");

    let (read, ranges, _) = requests(&cluster, || users.get("u1"));
    assert_eq!(read.expect("get").map(|r| r.version), Some(v2));
    assert_eq!(ranges, 1, "a get is one read");
    let (v3, ranges, txns) = requests(&cluster, || users.update("u1", v2, ada(2)));
    let v3 = v3.expect("the version it read");
    assert_eq!(
        (ranges, txns),
        (0, 1),
        "get, then update: two round trips in all"
    );

    // Transactions likewise: a version read or written outside the transaction is not read.
    let (v3, ranges, txns) = requests(&cluster, || {
        store.transaction(|tx| tx.update(&users, "u1", v3, ada(2)))
    });
    let v3 = v3.expect("a transaction on the version written");
    assert_eq!((ranges, txns), (0, 1), "a transaction of one update");

    // Another process (another store) moves the record on; this one still guesses v3.
    let other = cluster.store("round-trips");
    let other_users = other.collection::<User>("users").open().expect("users");
    let v4 = other_users
        .update("u1", v3, ada(3))
        .expect("the other process");
    let (stale, ranges, txns) = requests(&cluster, || users.update("u1", v3, ada(99)));
    match stale {
        Err(Error::Conflict(Conflict::VersionMismatch { current, .. })) => {
            assert_eq!(current, Some(v4));
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(txns, 1, "the guess is checked by the transaction's compare");
    assert!(ranges >= 1, "and the conflict is found by reading again");
    let stored = users.get("u1").expect("get").expect("exists");
    assert_eq!(
        (stored.version, stored.value.visits),
        (v4, 3),
        "nothing overwritten"
    );

    // A transaction on a stale guess runs again on what it reads, and reports the conflict.
    let v5 = other_users
        .update("u1", v4, ada(5))
        .expect("the other process");
    let stale = store.transaction(|tx| tx.update(&users, "u1", v4, ada(99)));
    match stale {
        Err(Error::Conflict(Conflict::VersionMismatch { current, .. })) => {
            assert_eq!(current, Some(v5));
        }
        other => panic!("expected a version conflict, not contention: {other:?}"),
    }
    assert_eq!(
        users.get("u1").expect("get").expect("exists").value.visits,
        5
    );
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    customer: String,
}

/// A page is at most two round trips: the index entries, then its records in one transaction
/// of reads; a key range reads its records with the range itself.
#[test]
fn a_page_of_a_query_is_at_most_two_round_trips() {
    let cluster = etcd::Cluster::start();
    let store = cluster.store("query-round-trips");
    let orders = store
        .collection::<Order>("orders")
        .index("customer", |o: &Order| o.customer.clone())
        .open()
        .expect("orders");
    for i in 0..60 {
        let customer = if i % 2 == 0 { "ann" } else { "bob" };
        let order = Order {
            customer: customer.into(),
        };
        orders.insert(&format!("o-{i:02}"), order).expect("insert");
    }
    let by_ann = revkv::Query::index("customer", "ann").limit(20);
    let (page, ranges, txns) = requests(&cluster, || orders.query(&by_ann));
    let page = page.expect("a page");
    assert_eq!(page.records.len(), 20);
    assert_eq!((ranges, txns), (1, 1), "the entries, then the records");
    let next = by_ann.after(&page.next.expect("more"));
    let (page, ranges, txns) = requests(&cluster, || orders.query(&next));
    assert_eq!(page.expect("the next page").records.len(), 10);
    assert_eq!((ranges, txns), (1, 1), "the next page alike");

    let (page, ranges, txns) = requests(&cluster, || {
        orders.query(&revkv::Query::prefix("o-1").limit(5))
    });
    assert_eq!(page.expect("a page").records.len(), 5);
    assert_eq!(
        (ranges, txns),
        (1, 0),
        "a key range reads its records at once"
    );
}

/// A process that closes its store gives back the rest of its block of versions: the next
/// process continues right after the last version issued, unless another took a block since.
#[test]
fn versions_continue_after_a_process_closes_its_store() {
    let cluster = etcd::Cluster::start();
    let mut last = None;
    for round in 0..3 {
        let store = cluster.store("versions-continue");
        let docs = store.collection::<User>("users").open().expect("users");
        let user = User {
            email: format!("u{round}@example.com"),
            visits: 0,
        };
        let first = docs.insert(&format!("u{round}"), user).expect("insert");
        if let Some(last) = last {
            assert_eq!(first.get(), revkv::Version::get(last) + 1, "round {round}");
        }
        last = Some(first);
    }
}
