//! Bulk load of 1,000,000 records (16-byte keys, 100-byte values, in key order) into a fresh
//! store: revkv's `Collection::load` against raw per-operation sled inserts of the same data
//! (sled's own floor), with fjall and redb (one transaction) for reference. Quick mode loads
//! 20,000 records.

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use common::Payload;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use redb::TableDefinition;

const REDB_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

fn bulk_load(c: &mut Criterion) {
    let records = common::scale(1_000_000, 20_000);
    let keys: Vec<String> = (0..records).map(|i| format!("key-{i:012}")).collect();
    let mut group = c.benchmark_group("bulk_load");
    group.throughput(Throughput::Elements(records as u64));
    group.sample_size(10);
    let fresh = || tempfile::tempdir().expect("dir");

    group.bench_function(BenchmarkId::new("revkv_load", records), |b| {
        b.iter_batched(
            fresh,
            |dir| {
                common::load_payloads(dir.path(), &keys);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(BenchmarkId::new("sled_insert_per_op", records), |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let db = sled::open(dir.path()).expect("sled");
                let tree = db.open_tree("bench").expect("tree");
                for (key, n) in keys.iter().zip(0..) {
                    tree.insert(key, Payload::raw(n)).expect("insert");
                }
                db.flush().expect("flush");
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(BenchmarkId::new("fjall_insert", records), |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let db = fjall::Database::builder(dir.path()).open().expect("fjall");
                let keyspace = db
                    .keyspace("bench", fjall::KeyspaceCreateOptions::default)
                    .expect("keyspace");
                for (key, n) in keys.iter().zip(0..) {
                    keyspace.insert(key, Payload::raw(n)).expect("insert");
                }
                db.persist(fjall::PersistMode::SyncData).expect("persist");
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(BenchmarkId::new("redb_one_transaction", records), |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let db = redb::Database::create(dir.path().join("redb")).expect("redb");
                let txn = db.begin_write().expect("begin");
                {
                    let mut table = txn.open_table(REDB_TABLE).expect("table");
                    for (key, n) in keys.iter().zip(0..) {
                        table
                            .insert(key.as_bytes(), Payload::raw(n).as_slice())
                            .expect("insert");
                    }
                }
                txn.commit().expect("commit");
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bulk_load
}
criterion_main!(benches);
