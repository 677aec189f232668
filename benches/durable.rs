//! Durable writes: every acknowledged write survives a power loss. revkv in
//! `Durability::Immediate` mode (group commit) with 1 and 8 writers doing `update_with`,
//! against redb with `Durability::Immediate` and fjall with `PersistMode::SyncData` doing a
//! read and then a write per commit, and a raw append with `fdatasync` (the disk's floor).
//! Two more one-writer floors show where a commit's time goes: raw sled's `flush` followed by
//! `fdatasync` of its log (the commit revkv made before its journal), and a write into a
//! preallocated file with `fdatasync` (what a commit to revkv's journal costs at the least).
//! revkv's async API makes the same updates from 1 and 8 tasks of a current-thread runtime.

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{Payload, run_tasks, run_threads, share};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use parking_lot::Mutex;
use redb::{ReadableTable, TableDefinition};

const WRITERS: [usize; 2] = [1, 8];
const REDB_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("bench");

fn durable(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_writes");
    group.throughput(Throughput::Elements(1));
    let keys: Vec<String> = (0..8).map(|t| format!("writer-{t}")).collect();

    let dir = tempfile::tempdir().expect("dir");
    let store = revkv::Store::builder()
        .path(dir.path().join("revkv"))
        .durability(revkv::Durability::Immediate)
        .open()
        .expect("store");
    let docs = store
        .collection::<Payload>("bench")
        .open()
        .expect("collection");
    docs.load(keys.iter().map(|k| (k, Payload::new(0))))
        .expect("load");
    for writers in WRITERS {
        group.bench_function(BenchmarkId::new("revkv_immediate", writers), |b| {
            b.iter_custom(|iters| {
                run_threads(writers, iters, |t, _| {
                    docs.update_with(&keys[t], |p| Payload::new(p.counter + 1))
                        .expect("update");
                })
            });
        });
    }

    async_tasks(&mut group, &docs, &keys);

    let log = Mutex::new(File::create(dir.path().join("raw.log")).expect("file"));
    group.bench_function(BenchmarkId::new("raw_write_fdatasync", 1), |b| {
        b.iter_custom(|iters| {
            run_threads(1, iters, |_, i| {
                let mut log = log.lock();
                log.write_all(&Payload::raw(i)).expect("write");
                log.sync_data().expect("fdatasync");
            })
        });
    });

    commit_floors(&mut group, dir.path(), &keys[0]);

    let redb = redb::Database::create(dir.path().join("redb")).expect("redb");
    for writers in WRITERS {
        group.bench_function(BenchmarkId::new("redb_immediate", writers), |b| {
            b.iter_custom(|iters| {
                run_threads(writers, iters, |t, i| {
                    let mut txn = redb.begin_write().expect("begin");
                    txn.set_durability(redb::Durability::Immediate)
                        .expect("durability");
                    {
                        let mut table = txn.open_table(REDB_TABLE).expect("table");
                        let _current = table
                            .get(keys[t].as_str())
                            .expect("get")
                            .map(|v| v.value().len());
                        table
                            .insert(keys[t].as_str(), Payload::raw(i).as_slice())
                            .expect("insert");
                    }
                    txn.commit().expect("commit");
                })
            });
        });
    }

    let fjall = fjall::Database::builder(dir.path().join("fjall"))
        .open()
        .expect("fjall");
    let keyspace = fjall
        .keyspace("bench", fjall::KeyspaceCreateOptions::default)
        .expect("keyspace");
    for writers in WRITERS {
        group.bench_function(BenchmarkId::new("fjall_sync_data", writers), |b| {
            b.iter_custom(|iters| {
                run_threads(writers, iters, |t, i| {
                    let _current = keyspace.get(&keys[t]).expect("get");
                    keyspace.insert(&keys[t], Payload::raw(i)).expect("insert");
                    fjall
                        .persist(fjall::PersistMode::SyncData)
                        .expect("persist");
                })
            });
        });
    }
    group.finish();
}

/// The same updates from tasks of one current-thread runtime through the async API: each waits
/// for its group commit on a thread of revkv's, the runtime's thread never. The baseline is
/// what a service does without it: the blocking API inside `spawn_blocking`.
fn async_tasks(
    group: &mut BenchmarkGroup<'_, WallTime>,
    docs: &revkv::Collection<Payload>,
    keys: &[String],
) {
    let tasks = docs.to_async();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for writers in WRITERS {
        group.bench_function(
            BenchmarkId::new("revkv_immediate_async_tasks", writers),
            |b| {
                b.iter_custom(|iters| {
                    let callers = (0..writers).map(|t| {
                        let (docs, key) = (tasks.clone(), keys[t].clone());
                        let rounds = share(iters, writers, t);
                        async move {
                            for _ in 0..rounds {
                                docs.update_with(&key, |p| Payload::new(p.counter + 1))
                                    .await
                                    .expect("update");
                            }
                        }
                    });
                    run_tasks(&runtime, callers).0
                });
            },
        );
        group.bench_function(
            BenchmarkId::new("revkv_immediate_spawn_blocking", writers),
            |b| {
                b.iter_custom(|iters| {
                    let callers = (0..writers).map(|t| {
                        let (docs, key) = (docs.clone(), keys[t].clone());
                        let rounds = share(iters, writers, t);
                        async move {
                            for _ in 0..rounds {
                                let docs = docs.clone();
                                let key = key.clone();
                                tokio::task::spawn_blocking(move || {
                                    docs.update_with(&key, |p| Payload::new(p.counter + 1))
                                })
                                .await
                                .expect("task")
                                .expect("update");
                            }
                        }
                    });
                    run_tasks(&runtime, callers).0
                });
            },
        );
    }
}

/// What one commit costs at the least, one writer: raw sled's `flush` followed by `fdatasync`
/// of its log, and a write into a preallocated file with `fdatasync`.
fn commit_floors(group: &mut BenchmarkGroup<'_, WallTime>, dir: &Path, key: &str) {
    let preallocated_len = common::scale(64 << 20, 1 << 20) as u64;
    let db = sled::open(dir.join("sled")).expect("sled");
    let sled_log = File::open(dir.join("sled").join("db")).expect("sled's log");
    group.bench_function(BenchmarkId::new("sled_flush_fdatasync", 1), |b| {
        b.iter_custom(|iters| {
            run_threads(1, iters, |_, i| {
                let _current = db.get(key).expect("get");
                db.insert(key, Payload::raw(i)).expect("insert");
                db.flush().expect("flush");
                sled_log.sync_data().expect("fdatasync");
            })
        });
    });

    // Written in full and synced first, so that later writes change no file metadata.
    let preallocated = File::create(dir.join("preallocated")).expect("file");
    preallocated
        .write_all_at(&vec![0; preallocated_len as usize], 0)
        .expect("fill");
    preallocated.sync_all().expect("fsync");
    group.bench_function(BenchmarkId::new("preallocated_write_fdatasync", 1), |b| {
        b.iter_custom(|iters| {
            run_threads(1, iters, |_, i| {
                let record = Payload::raw(i);
                let offset = (i * record.len() as u64) % (preallocated_len - record.len() as u64);
                preallocated.write_all_at(&record, offset).expect("write");
                preallocated.sync_data().expect("fdatasync");
            })
        });
    });
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = durable
}
criterion_main!(benches);
