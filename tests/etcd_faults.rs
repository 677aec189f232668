//! Faults of the etcd cluster under a concurrent workload: a member killed with SIGKILL (the
//! leader first, then another), then restarted. No call fails: a call in flight when a member
//! dies completes after the election, through the other members. Afterwards every
//! acknowledged write is there and no unique value has two holders.
#![cfg(feature = "etcd")]

mod etcd;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use revkv::{Conflict, Error};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    email: String,
}

const WRITERS: usize = 4;
/// E-mails every writer tries to take: each may be held once.
const SHARED: usize = 16;

/// Waits until `acked` has grown by `more` since `from`, failing the test after a minute.
fn wait_for_progress(acked: &AtomicUsize, from: usize, more: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = acked.load(Ordering::Acquire);
        if now >= from + more {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the clients made no progress ({now} acknowledged)"
        );
        std::thread::yield_now();
    }
}

#[test]
fn killing_members_leader_first_loses_no_acknowledged_write() {
    let mut cluster = etcd::Cluster::start();
    let store = cluster.store("faults");
    let users = store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()
        .expect("users");
    let acked = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let acknowledged: Vec<Vec<(String, User)>> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (users, acked, stop) = (&users, &acked, &stop);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Acquire) {
                        n += 1;
                        let email = if n % 3 == 0 {
                            format!("shared-{}@example.com", n % SHARED)
                        } else {
                            format!("w{w}-{n}@example.com")
                        };
                        let key = format!("w{w}-{n}");
                        let user = User { email };
                        match users.insert(&key, &user) {
                            Ok(_) => {
                                mine.push((key, user));
                                acked.fetch_add(1, Ordering::AcqRel);
                            }
                            // A taken e-mail: the one refusal a writer may meet.
                            Err(Error::Conflict(Conflict::Unique { .. })) => {}
                            Err(other) => panic!("writer {w}, insert {n}: {other:?}"),
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut seen = wait_for_progress(&acked, 0, 50);
        let leader = cluster.leader();
        cluster.kill(leader);
        seen = wait_for_progress(&acked, seen, 100);
        cluster.restart(leader);
        let other = (leader + 1) % 3;
        cluster.kill(other);
        seen = wait_for_progress(&acked, seen, 100);
        cluster.restart(other);
        wait_for_progress(&acked, seen, 50);
        stop.store(true, Ordering::Release);
        writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect()
    });
    for (key, user) in acknowledged.iter().flatten() {
        let stored = users
            .get(key)
            .expect("read")
            .expect("an acknowledged insert");
        assert_eq!(&stored.value, user, "{key}");
    }
    for n in 0..SHARED {
        let email = format!("shared-{n}@example.com");
        let holders = users
            .iter()
            .filter(|entry| entry.as_ref().is_ok_and(|(_, r)| r.value.email == email))
            .count();
        assert!(holders <= 1, "{email} has {holders} holders");
    }
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn a_cluster_without_a_quorum_past_the_deadline_is_a_typed_unavailable_error() {
    let mut cluster = etcd::Cluster::start();
    let store = revkv::Store::builder()
        .etcd(cluster.endpoints())
        .namespace("quorum")
        .etcd_deadline(Duration::from_secs(2))
        .open()
        .expect("store");
    let users = store.collection::<User>("users").open().expect("users");
    let user = User {
        email: "ada@example.com".into(),
    };
    users.insert("before", &user).expect("a quorum answers");
    cluster.kill(0);
    cluster.kill(1);
    let started = Instant::now();
    match users.insert("after", &user) {
        Err(Error::Unavailable { waited, .. }) => assert_eq!(waited, Duration::from_secs(2)),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // The deadline, plus one attempt begun just before it; not the minutes of a hung call.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    match users.get("before") {
        Err(Error::Unavailable { .. }) => {}
        other => panic!("a read without a quorum: expected Unavailable, got {other:?}"),
    }
    cluster.restart(0);
    users
        .insert("again", &user)
        .expect("a quorum again: the same handle writes");
}
