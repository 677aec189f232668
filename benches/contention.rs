//! Contention: `update_with` from 1, 2 and 8 threads, on one hot key and on 10,000 keys
//! (uniform), against a raw sled compare-and-swap loop and an in-memory map doing the same
//! read-modify-write. Before the timed runs, each configuration is profiled once for retries
//! per successful update and p99 latency, which criterion does not report.

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Payload, keys, p99, run_threads};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::{Mutex, RwLock};

const KEYS: usize = 10_000;
const THREADS: [usize; 3] = [1, 2, 8];

/// Which key the i-th operation of a thread touches.
#[derive(Clone, Copy)]
enum Pattern {
    HotKey,
    Uniform,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Self::HotKey => "hot_key",
            Self::Uniform => "uniform",
        }
    }

    fn key(self, thread: usize, i: u64) -> usize {
        match self {
            Self::HotKey => 0,
            // A cheap scatter over the keys, different per thread.
            Self::Uniform => ((i * 7919 + thread as u64 * 104_729) % KEYS as u64) as usize,
        }
    }
}

fn bump(p: &Payload) -> Payload {
    Payload::new(p.counter + 1)
}

/// One untimed run per configuration: retries per success and p99 latency of `update_with`.
fn profile(docs: &revkv::Collection<Payload>, keys: &[String], pattern: Pattern, threads: usize) {
    let ops = common::scale(20_000, 2_000) as u64;
    let attempts = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::with_capacity(ops as usize));
    run_threads(threads, ops, |t, i| {
        let start = Instant::now();
        docs.update_with(&keys[pattern.key(t, i)], |p| {
            attempts.fetch_add(1, Ordering::Relaxed);
            bump(p)
        })
        .expect("update_with");
        let took = start.elapsed();
        latencies.lock().push(took);
    });
    let mut latencies: Vec<Duration> = latencies.into_inner();
    let successes = latencies.len() as f64;
    println!(
        "profile {} threads={threads}: {:.3} retries per success, p99 {:?}",
        pattern.name(),
        (attempts.into_inner() as f64 - successes) / successes,
        p99(&mut latencies)
    );
}

fn contention(c: &mut Criterion) {
    let keys = keys(KEYS);
    let store = revkv::Store::temporary().expect("store");
    let docs = store
        .collection::<Payload>("bench")
        .open()
        .expect("collection");
    docs.load(keys.iter().map(|k| (k, Payload::new(0))))
        .expect("load");
    let (_dir, tree) = common::sled_baseline(&keys);
    let map: RwLock<HashMap<String, (u64, Payload)>> = RwLock::new(
        keys.iter()
            .map(|k| (k.clone(), (0, Payload::new(0))))
            .collect(),
    );

    for pattern in [Pattern::HotKey, Pattern::Uniform] {
        let mut group = c.benchmark_group(format!("contention_{}", pattern.name()));
        group.throughput(Throughput::Elements(1));
        for threads in THREADS {
            profile(&docs, &keys, pattern, threads);
            group.bench_function(BenchmarkId::new("revkv_update_with", threads), |b| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, |t, i| {
                        docs.update_with(&keys[pattern.key(t, i)], bump)
                            .expect("update_with");
                    })
                });
            });
            group.bench_function(BenchmarkId::new("sled_cas_loop", threads), |b| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, |t, i| {
                        common::sled_cas_update(&tree, &keys[pattern.key(t, i)], |current| {
                            let counter = u64::from_le_bytes(current[..8].try_into().expect("8"));
                            Payload::raw(counter + 1)
                        });
                    })
                });
            });
            group.bench_function(BenchmarkId::new("in_memory_map", threads), |b| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, |t, i| {
                        let mut map = map.write();
                        let entry = map.get_mut(&keys[pattern.key(t, i)]).expect("present");
                        *entry = (entry.0 + 1, bump(&entry.1));
                    })
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = contention
}
criterion_main!(benches);
