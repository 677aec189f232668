//! Unique insert into a collection with one unique index (crash-atomic), against the naive
//! sled transaction over two trees (check the index, write index entry and record) and an
//! in-memory map pair; one thread, fresh keys every time. Two more baselines are floors: of
//! any design that keeps the index on disk (the same two writes to two trees, unchecked), and
//! of one that keeps it only in memory (the record's read, to find its key free, and write).

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::collections::HashMap;

use common::Payload;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

#[derive(Serialize, Deserialize, Clone)]
struct User {
    email: String,
    payload: Payload,
}

/// The key and the e-mail address of the `n`-th insert, the same for every benchmark here.
fn key(n: u64) -> String {
    format!("u{n:010}")
}

fn email(n: u64) -> String {
    format!("user{n}@example.com")
}

fn user(n: u64) -> User {
    User {
        email: email(n),
        payload: Payload::new(n),
    }
}

/// A fresh sled database and its record and index trees, for the raw baselines. Keep the
/// directory alive while using them.
fn sled_trees() -> (tempfile::TempDir, sled::Tree, sled::Tree) {
    let dir = tempfile::tempdir().expect("dir");
    let db = sled::open(dir.path()).expect("sled");
    let records = db.open_tree("users").expect("tree");
    let index = db.open_tree("email").expect("tree");
    (dir, records, index)
}

fn unique_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("unique_insert_1_thread");
    group.throughput(Throughput::Elements(1));

    let store = revkv::Store::temporary().expect("store");
    let users = store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()
        .expect("collection");
    let mut n = 0_u64;
    group.bench_function("revkv_unique_insert", |b| {
        b.iter(|| {
            n += 1;
            users.insert(&key(n), user(n)).expect("insert");
        });
    });

    // Before any transaction: the first one in a process slows every later sled operation.
    let (_floor_dir, floor_records, floor_index) = sled_trees();
    group.bench_function("sled_2_inserts_unchecked", |b| {
        b.iter(|| {
            n += 1;
            let key = key(n);
            floor_index
                .insert(email(n), key.as_bytes())
                .expect("insert");
            floor_records.insert(key, Payload::raw(n)).expect("insert");
        });
    });

    let (_memory_floor_dir, memory_floor_records, _) = sled_trees();
    group.bench_function("sled_1_insert_checked", |b| {
        b.iter(|| {
            n += 1;
            let key = key(n);
            assert!(memory_floor_records.get(&key).expect("get").is_none());
            memory_floor_records
                .insert(key, Payload::raw(n))
                .expect("insert");
        });
    });

    let (_dir, records, index) = sled_trees();
    group.bench_function("sled_transaction_2_trees", |b| {
        b.iter(|| {
            n += 1;
            let (key, email, value) = (key(n), email(n), Payload::raw(n));
            (&records, &index)
                .transaction(|(records, index)| {
                    if index.get(email.as_bytes())?.is_some() {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                    index.insert(email.as_bytes(), key.as_bytes())?;
                    records.insert(key.as_bytes(), value.as_slice())?;
                    Ok(())
                })
                .expect("transaction");
        });
    });

    let map: RwLock<(HashMap<String, User>, HashMap<String, String>)> = RwLock::default();
    group.bench_function("in_memory_maps", |b| {
        b.iter(|| {
            n += 1;
            let (key, value) = (key(n), user(n));
            let mut maps = map.write();
            if !maps.1.contains_key(&value.email) {
                maps.1.insert(value.email.clone(), key.clone());
                maps.0.insert(key, value);
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = unique_insert
}
criterion_main!(benches);
