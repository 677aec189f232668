//! Non-unique indexes and queries on the local engine, each against raw sled doing the same
//! reads or writes on the same layout (a record tree keyed by record key; an index tree whose
//! entries are the escaped index value, a zero byte and the record key, holding nothing):
//!
//! - `query_page_100`: one page of 100 orders of one customer (`Query::index` with a limit),
//!   20,000 orders over 100 customers, 200 each, a different customer every time; against its
//!   floor, a raw sled scan of the customer's first 100 index entries and a point get of each
//!   record (of the size revkv stores: header and encoded value), not decoded; and the same
//!   work a caller sees done, the floor plus what makes it a page: each record decoded (bincode,
//!   as revkv stores it) and handed out with its key as a `String`.
//! - `insert_one_index_1_thread`: an insert into a collection with one non-unique index, fresh
//!   keys every time, as `unique_insert.rs` for unique indexes; against its floor, the same two
//!   writes in raw sled, unchecked: the index entry into the index tree and the record into the
//!   record tree.
//! - `serializable_query_txn_8_threads`: 8 threads commit transactions that each read the 10
//!   oldest pending orders, then insert a new pending order (the one hot index value, which
//!   every transaction reads and writes into), in committed transactions per second; against
//!   the same transactions reading the same 10 records by key (`Transaction::get`) instead of
//!   by the query: what the query's freedom from phantoms costs. Every commit is useful (an
//!   order is queued) and none invalidates another's reads (the new orders sort after the page
//!   read, and no one changes its records), so both variants should rerun nothing; an untimed
//!   run per variant first prints its reruns per commit, which criterion does not report. (A
//!   transaction that updated a record of the page would invalidate every concurrent one in
//!   both variants alike, measuring the retries' backoff rather than the query.)

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bincode::Options;
use common::{Payload, run_threads};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use revkv::{Collection, Query, Store};
use serde::{Deserialize, Serialize};

/// Records per page of `query_page_100`, and orders per customer there.
const PAGE: usize = 100;
const PER_CUSTOMER: usize = 200;
/// Customers the inserts of `insert_one_index_1_thread` spread over.
const CUSTOMERS: u64 = 100;
/// Threads, the page each transaction reads and the pending orders before the first one, in
/// `serializable_query_txn_8_threads`.
const THREADS: usize = 8;
const PENDING_PAGE: usize = 10;
const BACKLOG: u64 = 100;

#[derive(Serialize, Deserialize, Clone)]
struct Order {
    customer: String,
    state: String,
    payload: Payload,
}

/// The key of the `n`-th order; keys sort in the order of `n`.
fn key(n: u64) -> String {
    format!("o{n:010}")
}

fn customer(c: u64) -> String {
    format!("customer-{c:03}")
}

/// The `n`-th order: pending, of one of `customers` customers.
fn order(n: u64, customers: u64) -> Order {
    Order {
        customer: customer(n % customers),
        state: "pending".to_owned(),
        payload: Payload::new(n),
    }
}

/// What every index entry of `value` starts with: the value, each zero byte escaped as
/// `0x00 0xff`, then a zero byte; the record key follows.
fn value_prefix(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 1);
    for &byte in value.as_bytes() {
        out.push(byte);
        if byte == 0 {
            out.push(0xff);
        }
    }
    out.push(0);
    out
}

fn index_entry(value: &str, key: &str) -> Vec<u8> {
    let mut entry = value_prefix(value);
    entry.extend_from_slice(key.as_bytes());
    entry
}

/// The size of a record as revkv stores it: an 18-byte header (tag, version, time written)
/// and the value in bincode's default options.
static RECORD_LEN: LazyLock<usize> = LazyLock::new(|| {
    let encoded = bincode::DefaultOptions::new().serialized_size(&order(1_000_000, CUSTOMERS));
    18 + encoded.expect("encode") as usize
});

/// A raw record of that size, different for every `n` (sled skips an insert of the bytes
/// already stored).
fn raw_record(n: u64) -> Vec<u8> {
    let mut bytes = vec![b'x'; *RECORD_LEN];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// A fresh sled database with the record tree of orders and the tree of their `customer`
/// index, named as revkv names them, for the raw floors. Keep the directory alive while using them.
fn sled_trees() -> (tempfile::TempDir, sled::Tree, sled::Tree) {
    let dir = tempfile::tempdir().expect("dir");
    let db = sled::open(dir.path()).expect("sled");
    let records = db.open_tree("c/orders").expect("tree");
    let index = db.open_tree("i/orders/customer").expect("tree");
    (dir, records, index)
}

fn query_page(c: &mut Criterion) {
    let orders_total = common::scale(20_000, 2_000) as u64;
    let customers = orders_total / PER_CUSTOMER as u64;
    let names: Vec<String> = (0..customers).map(customer).collect();
    let mut group = c.benchmark_group("query_page_100");
    group.throughput(Throughput::Elements(PAGE as u64));

    let (_store, orders) = indexed_orders("customer", orders_total, customers);
    let mut n = 0_usize;
    group.bench_function("revkv_query", |b| {
        b.iter(|| {
            n += 1;
            let query = Query::index("customer", &names[n % names.len()]).limit(PAGE);
            let page = orders.query(&query).expect("query");
            assert_eq!(page.records.len(), PAGE);
            black_box(page);
        });
    });

    // One raw store for both baselines, its records encoded as revkv encodes them (behind a
    // header of revkv's size) for the one that decodes.
    let options = || bincode::DefaultOptions::new().reject_trailing_bytes();
    let (_dir, records, index) = sled_trees();
    for n in 0..orders_total {
        let (key, order) = (key(n), order(n, customers));
        index
            .insert(index_entry(&order.customer, &key), &[])
            .expect("insert");
        let mut record = vec![0_u8; 18];
        options()
            .serialize_into(&mut record, &order)
            .expect("encode");
        records.insert(key, record).expect("insert");
    }
    // The floor: the customer's first 100 index entries and a get of each record, as bytes.
    let raw_page = |n: usize| -> (usize, Vec<(sled::IVec, sled::IVec)>) {
        let prefix = value_prefix(&names[n % names.len()]);
        let page: Vec<_> = index
            .scan_prefix(&prefix)
            .take(PAGE)
            .map(|entry| {
                let (entry, _) = entry.expect("scan");
                let record = records.get(&entry[prefix.len()..]).expect("get");
                (entry, record.expect("record"))
            })
            .collect();
        assert_eq!(page.len(), PAGE);
        (prefix.len(), page)
    };
    group.bench_function("sled_scan_and_gets", |b| {
        b.iter(|| {
            n += 1;
            black_box(raw_page(n));
        });
    });
    // The same work a caller sees done: each record decoded, with its key as a `String`.
    group.bench_function("sled_scan_gets_and_decode", |b| {
        b.iter(|| {
            n += 1;
            let (prefix_len, raw) = raw_page(n);
            let page: Vec<(String, Order)> = raw
                .into_iter()
                .map(|(entry, record)| {
                    let key = String::from_utf8(entry[prefix_len..].to_vec()).expect("UTF-8");
                    let order: Order = options().deserialize(&record[18..]).expect("decode");
                    (key, order)
                })
                .collect();
            black_box(page);
        });
    });
    group.finish();
}

fn insert_one_index(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_one_index_1_thread");
    group.throughput(Throughput::Elements(1));

    let (_store, orders) = indexed_orders("customer", 0, CUSTOMERS);
    let mut n = 0_u64;
    group.bench_function("revkv_insert", |b| {
        b.iter(|| {
            n += 1;
            orders.insert(&key(n), order(n, CUSTOMERS)).expect("insert");
        });
    });

    let (_dir, records, index) = sled_trees();
    group.bench_function("sled_2_inserts_unchecked", |b| {
        b.iter(|| {
            n += 1;
            let key = key(n);
            index
                .insert(index_entry(&customer(n % CUSTOMERS), &key), &[])
                .expect("insert");
            records.insert(key, raw_record(n)).expect("insert");
        });
    });
    group.finish();
}

/// How a transaction of `serializable_query_txn_8_threads` reads the oldest pending orders.
#[derive(Clone, Copy)]
enum Read {
    Query,
    ByKey,
}

impl Read {
    fn name(self) -> &'static str {
        match self {
            Self::Query => "revkv_query_then_insert",
            Self::ByKey => "revkv_gets_then_insert",
        }
    }
}

/// A store with `count` orders of `customers` customers, indexed by `index` (`customer` or
/// `state`).
fn indexed_orders(index: &str, count: u64, customers: u64) -> (Store, Collection<Order>) {
    let store = Store::temporary().expect("store");
    let value_of = match index {
        "customer" => |o: &Order| o.customer.clone(),
        _ => |o: &Order| o.state.clone(),
    };
    let orders = store
        .collection::<Order>("orders")
        .index(index, value_of)
        .open()
        .expect("collection");
    orders
        .load((0..count).map(|n| (key(n), order(n, customers))))
        .expect("load");
    (store, orders)
}

/// The keys of the `PENDING_PAGE` oldest pending orders: the first of the backlog, which no
/// transaction changes.
static OLDEST: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..PENDING_PAGE as u64).map(key).collect());

/// One committed transaction: it reads the `PENDING_PAGE` oldest pending orders, then inserts
/// the pending order `n`, whose key sorts after every other. `attempts`, if given, counts the
/// runs of its body.
fn queue_order(
    store: &Store,
    orders: &Collection<Order>,
    read: Read,
    n: u64,
    attempts: Option<&AtomicU64>,
) {
    store
        .transaction(|tx| {
            if let Some(attempts) = attempts {
                attempts.fetch_add(1, Ordering::Relaxed);
            }
            let seen = match read {
                Read::Query => {
                    let query = Query::index("state", "pending").limit(PENDING_PAGE);
                    let page = tx.query(orders, &query)?;
                    page.records.len()
                }
                Read::ByKey => {
                    let mut page = Vec::with_capacity(PENDING_PAGE);
                    for key in OLDEST.iter() {
                        let record = tx.get(orders, key)?.expect("backlog order");
                        assert_eq!(record.value.state, "pending");
                        page.push(record);
                    }
                    page.len()
                }
            };
            assert_eq!(seen, PENDING_PAGE);
            tx.insert(orders, &key(n), order(n, CUSTOMERS))?;
            Ok(())
        })
        .expect("transaction");
}

fn serializable_query_txn(c: &mut Criterion) {
    let mut group = c.benchmark_group("serializable_query_txn_8_threads");
    group.throughput(Throughput::Elements(1));
    for read in [Read::Query, Read::ByKey] {
        // `BACKLOG` pending orders, indexed by state.
        let (store, orders) = indexed_orders("state", BACKLOG, CUSTOMERS);
        // Keys of the orders the transactions insert, past the backlog's.
        let next = AtomicU64::new(BACKLOG);
        let fresh = || next.fetch_add(1, Ordering::Relaxed);

        let commits = common::scale(20_000, 400) as u64;
        let attempts = AtomicU64::new(0);
        run_threads(THREADS, commits, |_, _| {
            queue_order(&store, &orders, read, fresh(), Some(&attempts));
        });
        println!(
            "profile serializable_query_txn {}: {:.3} reruns per commit",
            read.name(),
            (attempts.into_inner() - commits) as f64 / commits as f64
        );

        group.bench_function(read.name(), |b| {
            b.iter_custom(|iters| {
                run_threads(THREADS, iters, |_, _| {
                    queue_order(&store, &orders, read, fresh(), None);
                })
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = query_page, insert_one_index, serializable_query_txn
}
criterion_main!(benches);
