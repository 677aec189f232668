//! Many processes, one etcd cluster: separate OS processes (this test binary run again as
//! children) share one store, and only etcd's compares keep them right. Lost updates (and the
//! change feed's order of them), one e-mail registered by eight processes, the last items
//! bought by four, and bank transfers that must conserve money; only outcomes are asserted,
//! never timing.
#![cfg(feature = "etcd")]

mod child;
mod etcd;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use revkv::{ChangeKind, Conflict, Error, Store, Version};
use serde::{Deserialize, Serialize};

/// How a child learns its cluster, namespace and index (`etcd::Cluster::part`).
const CHILD: &str = "REVKV_ETCD_CHILD";

/// One private cluster at a time: each test starts its own.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// A private cluster, once no other test of this binary has one, and the store `namespace`
/// on it.
fn cluster(namespace: &str) -> (MutexGuard<'static, ()>, etcd::Cluster, Store) {
    let one = ONE_CLUSTER.lock();
    let cluster = etcd::Cluster::start();
    let store = cluster.store(namespace);
    (one, cluster, store)
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    name: String,
    email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Item {
    stock: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Order {
    sku: String,
}

fn users(store: &Store) -> revkv::Collection<User> {
    store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.to_lowercase())
        .open()
        .expect("users")
}

/// Runs the ignored test `name` as `count` child processes on `namespace`, at once; returns
/// what each printed after `RESULT `, in child order.
fn run_children(cluster: &etcd::Cluster, name: &str, namespace: &str, count: usize) -> Vec<String> {
    let children: Vec<_> = (0..count)
        .map(|i| {
            child::command(name, CHILD, cluster.part(namespace, i))
                .expect("this test binary")
                .stdout(Stdio::piped())
                .spawn()
                .expect("a child process")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("the child ends");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(output.status.success(), "a child failed:\n{stdout}");
            stdout
                .lines()
                // libtest may have begun the line with the child test's name.
                .find_map(|line| line.split_once("RESULT ").map(|(_, result)| result))
                .unwrap_or_else(|| panic!("no result from a child:\n{stdout}"))
                .to_owned()
        })
        .collect()
}

/// In a child: its store and its index among the children.
fn child_store() -> (Store, usize) {
    etcd::open_part(&std::env::var(CHILD).expect("run by a parent test"))
}

const COUNTERS: usize = 4;
const INCREMENTS: u64 = 40;

/// Also the change feed across processes: the parent opens the store with a feed, the
/// children without one (a store that has a feed keeps it in every process), and the feed
/// lists every increment once, in the order they were committed, both to a watch that
/// follows it while the children write and when read afterwards.
#[test]
fn read_modify_write_from_four_processes_loses_no_update() {
    let (_one, cluster, _) = cluster("counter");
    let store = cluster.store_with_feed("counter");
    let counters = store
        .collection::<u64>("counters")
        .open()
        .expect("counters");
    counters.insert("c", 0_u64).expect("insert");
    let total = COUNTERS as u64 * INCREMENTS;
    let mut watch = store.watch(0).expect("watch");
    let (done, watched) = std::thread::scope(|scope| {
        let watcher = scope.spawn(move || {
            (0..=total)
                .map(|_| {
                    let change = watch.next_timeout(Duration::from_secs(60));
                    change.expect("next change").expect("a change within 60 s")
                })
                .collect::<Vec<_>>()
        });
        let done = run_children(&cluster, "child_increments", "counter", COUNTERS);
        (done, watcher.join().expect("the watcher"))
    });
    let mut acknowledged: Vec<Version> = done
        .iter()
        .flat_map(|versions| versions.split(','))
        .map(|v| Version::new(v.parse().expect("a version")))
        .collect();
    assert_eq!(acknowledged.len() as u64, total);
    let counter = counters.get("c").expect("read").expect("exists");
    assert_eq!(counter.value, total, "every increment is there");

    let changes: Vec<_> = store
        .changes_since(0)
        .expect("the feed")
        .collect::<revkv::Result<_>>()
        .expect("changes");
    assert_eq!(watched, changes, "the watch saw what the feed holds");
    let values: Vec<u64> = changes
        .iter()
        .map(|c| c.value::<u64>().expect("decodes").expect("a value"))
        .collect();
    assert_eq!(values, (0..=total).collect::<Vec<_>>(), "in commit order");
    assert!(changes[1..].iter().all(|c| c.kind == ChangeKind::Update));
    let mut fed: Vec<Version> = changes[1..].iter().map(|c| c.version).collect();
    assert!(fed.windows(2).all(|w| w[0] < w[1]), "versions grow");
    acknowledged.sort();
    fed.sort();
    assert_eq!(fed, acknowledged, "the acknowledged increments");
}

#[test]
#[ignore = "a child of read_modify_write_from_four_processes_loses_no_update"]
fn child_increments() {
    let (store, _) = child_store();
    let counters = store
        .collection::<u64>("counters")
        .open()
        .expect("counters");
    let versions: Vec<String> = (0..INCREMENTS)
        .map(|_| {
            let written = counters.update_with("c", |n| n + 1).expect("increment");
            written.version.get().to_string()
        })
        .collect();
    println!("RESULT {}", versions.join(","));
}

const REGISTRANTS: usize = 8;

#[test]
fn eight_processes_registering_one_email_make_one_user() {
    let (_one, cluster, store) = cluster("register");
    let outcomes = run_children(&cluster, "child_registers", "register", REGISTRANTS);
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| *outcome == "created")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| o == "created" || o == "unique email"),
        "{outcomes:?}"
    );
    let users = users(&store);
    let holder = users
        .find_unique("email", "same@example.com")
        .expect("find")
        .expect("one holder");
    assert_eq!(holder.value.name, format!("user-{}", winners[0]));
    assert_eq!(users.iter().count(), 1);
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{report}");
}

#[test]
#[ignore = "a child of eight_processes_registering_one_email_make_one_user"]
fn child_registers() {
    let (store, i) = child_store();
    let users = users(&store);
    let email = if i % 2 == 0 {
        "same@example.com"
    } else {
        "SAME@example.com"
    };
    let user = User {
        name: format!("user-{i}"),
        email: email.into(),
    };
    let outcome = match users.insert(&format!("u{i}"), &user) {
        Ok(_) => "created".to_owned(),
        Err(Error::Conflict(Conflict::Unique { index, .. })) => format!("unique {index}"),
        Err(other) => panic!("{other}"),
    };
    println!("RESULT {outcome}");
}

const STOCK: u32 = 12;
const BUYERS: usize = 4;

#[test]
fn four_processes_buying_the_last_items_never_oversell() {
    let (_one, cluster, store) = cluster("shop");
    let items = store.collection::<Item>("items").open().expect("items");
    items.insert("tea", Item { stock: STOCK }).expect("insert");
    let bought = run_children(&cluster, "child_buys", "shop", BUYERS);
    let bought: u32 = bought
        .iter()
        .map(|n| n.parse::<u32>().expect("a count"))
        .sum();
    assert_eq!(bought, STOCK, "every item sold exactly once");
    assert_eq!(
        items.get("tea").expect("read").expect("exists").value.stock,
        0
    );
    let orders = store.collection::<Order>("orders").open().expect("orders");
    assert_eq!(orders.iter().count(), STOCK as usize);
}

#[test]
#[ignore = "a child of four_processes_buying_the_last_items_never_oversell"]
fn child_buys() {
    let (store, i) = child_store();
    let items = store.collection::<Item>("items").open().expect("items");
    let orders = store.collection::<Order>("orders").open().expect("orders");
    let mut bought = 0;
    loop {
        let order = format!("o-{i}-{bought}");
        let outcome = store.transaction(|tx| {
            let item = tx.get(&items, "tea")?.expect("the item exists");
            if item.value.stock == 0 {
                return Err(Conflict::rule("out_of_stock", "sold out").into());
            }
            let left = Item {
                stock: item.value.stock - 1,
            };
            tx.update(&items, "tea", item.version, left)?;
            tx.insert(&orders, &order, Order { sku: "tea".into() })?;
            Ok(())
        });
        match outcome {
            Ok(()) => bought += 1,
            Err(Error::Conflict(Conflict::Rule { code, .. })) if code == "out_of_stock" => break,
            Err(other) => panic!("{other}"),
        }
    }
    println!("RESULT {bought}");
}

const ACCOUNTS: usize = 6;
const OPENING_BALANCE: u64 = 100;
const TRANSFERS: usize = 30;
const TELLERS: usize = 4;

#[test]
fn bank_transfers_from_four_processes_conserve_the_total() {
    let (_one, cluster, store) = cluster("bank");
    let accounts = store
        .collection::<u64>("accounts")
        .open()
        .expect("accounts");
    for a in 0..ACCOUNTS {
        accounts
            .insert(&format!("a{a}"), OPENING_BALANCE)
            .expect("open an account");
    }
    let made = run_children(&cluster, "child_transfers", "bank", TELLERS);
    let made: usize = made
        .iter()
        .map(|n| n.parse::<usize>().expect("a count"))
        .sum();
    assert!(made > 0, "some transfers went through");
    let balances: BTreeMap<String, u64> = accounts
        .iter()
        .map(|entry| entry.map(|(key, record)| (key, record.value)))
        .collect::<revkv::Result<_>>()
        .expect("balances");
    assert_eq!(balances.len(), ACCOUNTS);
    assert_eq!(
        balances.values().sum::<u64>(),
        ACCOUNTS as u64 * OPENING_BALANCE,
        "{balances:?}"
    );
}

#[test]
#[ignore = "a child of bank_transfers_from_four_processes_conserve_the_total"]
fn child_transfers() {
    let (store, i) = child_store();
    let accounts = store
        .collection::<u64>("accounts")
        .open()
        .expect("accounts");
    let mut rng = fastrand::Rng::with_seed(i as u64);
    let mut made = 0;
    for _ in 0..TRANSFERS {
        let from = format!("a{}", rng.usize(..ACCOUNTS));
        let to = format!("a{}", rng.usize(..ACCOUNTS));
        let amount = rng.u64(1..=30);
        if from == to {
            continue;
        }
        let moved = store.transaction(|tx| {
            let source = tx.get(&accounts, &from)?.expect("account");
            let target = tx.get(&accounts, &to)?.expect("account");
            if source.value < amount {
                return Ok(false);
            }
            tx.update(&accounts, &from, source.version, source.value - amount)?;
            tx.update(&accounts, &to, target.version, target.value + amount)?;
            Ok(true)
        });
        if moved.expect("a transfer") {
            made += 1;
        }
    }
    println!("RESULT {made}");
}
