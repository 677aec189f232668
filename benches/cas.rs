//! Versioned compare-and-swap update, one thread, 10,000 keys, 100-byte values: revkv against
//! a raw sled `compare_and_swap` loop and an in-memory map, in one criterion group so that the
//! ratios come from one run.

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::collections::HashMap;
use std::hint::black_box;

use common::{Payload, keys};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::RwLock;

const KEYS: usize = 10_000;

fn update_one_thread(c: &mut Criterion) {
    let keys = keys(KEYS);
    let mut group = c.benchmark_group("cas_update_1_thread");
    group.throughput(Throughput::Elements(1));

    let store = revkv::Store::temporary().expect("store");
    let docs = store
        .collection::<Payload>("bench")
        .open()
        .expect("collection");
    let mut updates = common::Updates::new(&docs, &keys);
    group.bench_function("revkv_update", |b| b.iter(|| updates.next()));

    let mut n = 0_usize;
    let (_dir, tree) = common::sled_baseline(&keys);
    group.bench_function("sled_cas_loop", |b| {
        b.iter(|| {
            n += 1;
            common::sled_cas_update(&tree, &keys[n % KEYS], |_| Payload::raw(n as u64));
        });
    });

    let map: RwLock<HashMap<String, (u64, Payload)>> = RwLock::new(
        keys.iter()
            .map(|k| (k.clone(), (0, Payload::new(0))))
            .collect(),
    );
    group.bench_function("in_memory_map", |b| {
        b.iter(|| {
            n += 1;
            let mut map = map.write();
            let entry = map.get_mut(&keys[n % KEYS]).expect("present");
            let expected = black_box(entry.0);
            if entry.0 == expected {
                *entry = (expected + 1, Payload::new(n as u64));
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = update_one_thread
}
criterion_main!(benches);
