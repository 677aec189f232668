//! Guarded updates: an update checked against a state machine, against the same update on a
//! collection without one and the raw sled compare-and-swap loop; one thread, 10,000 records
//! that cycle through `open -> held -> open`.

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::collections::HashMap;

use common::{Payload, keys};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

const KEYS: usize = 10_000;

#[derive(Serialize, Deserialize, Clone)]
struct Slot {
    state: String,
    payload: Payload,
}

fn slot(n: u64) -> Slot {
    Slot {
        state: if n.is_multiple_of(2) { "open" } else { "held" }.to_owned(),
        payload: Payload::new(n),
    }
}

fn state_transition(c: &mut Criterion) {
    let keys = keys(KEYS);
    let mut group = c.benchmark_group("state_transition_1_thread");
    group.throughput(Throughput::Elements(1));

    let store = revkv::Store::temporary().expect("store");
    let guarded = store
        .collection::<Slot>("guarded")
        .states(
            |s: &Slot| s.state.clone(),
            [("open", "held"), ("held", "open")],
        )
        .open()
        .expect("collection");
    let plain = store
        .collection::<Slot>("plain")
        .open()
        .expect("collection");
    for (name, collection) in [
        ("revkv_guarded_update", &guarded),
        ("revkv_plain_update", &plain),
    ] {
        let mut versions = collection
            .load(keys.iter().map(|k| (k, slot(0))))
            .expect("load");
        let mut n = 0_usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let i = n % KEYS;
                // Every KEYS updates each record moves one step along its cycle.
                let next = slot((n / KEYS + 1) as u64);
                versions[i] = collection
                    .update(&keys[i], versions[i], next)
                    .expect("update");
            });
        });
    }

    let (_dir, tree) = common::sled_baseline(&keys);
    let mut n = 0_usize;
    group.bench_function("sled_cas_loop", |b| {
        b.iter(|| {
            n += 1;
            common::sled_cas_update(&tree, &keys[n % KEYS], |_| Payload::raw(n as u64));
        });
    });

    let map: RwLock<HashMap<String, Slot>> =
        RwLock::new(keys.iter().map(|k| (k.clone(), slot(0))).collect());
    group.bench_function("in_memory_map", |b| {
        b.iter(|| {
            n += 1;
            let mut map = map.write();
            let entry = map.get_mut(&keys[n % KEYS]).expect("present");
            let next = slot((n / KEYS + 1) as u64);
            if entry.state != next.state {
                *entry = next;
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = state_transition
}
criterion_main!(benches);
