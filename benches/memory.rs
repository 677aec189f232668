//! Memory: resident memory after loading 1,000,000 records, then during 60 seconds of
//! steady-state updates (sampled every 5 s), to show whether it grows with the writes
//! (BENCHMARKS.md has the figures). Not a criterion benchmark: it prints what it measures.
//! Quick mode: 50,000 records and 3 seconds. `REVKV_MEMORY_SECONDS` sets another length for
//! the update loop (a soak: `REVKV_MEMORY_SECONDS=600 cargo bench --bench memory`).

// Benchmark arithmetic on small counters and ratios: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod common;

use std::time::{Duration, Instant};

use common::Payload;

/// Resident set size of this process, from `/proc/self/statm` (Linux).
fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn main() {
    let records = common::scale(1_000_000, 50_000);
    let seconds = std::env::var("REVKV_MEMORY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if common::quick() { 3 } else { 60 });
    let steady = Duration::from_secs(seconds);
    let sample_every = Duration::from_secs(if common::quick() { 1 } else { 5 });

    let dir = tempfile::tempdir().expect("dir");
    let store = revkv::Store::open(dir.path()).expect("store");
    let docs = store
        .collection::<Payload>("bench")
        .open()
        .expect("collection");
    let keys: Vec<String> = (0..records).map(|i| format!("key-{i:012}")).collect();
    let before = resident_mib();
    let mut versions = docs
        .load(keys.iter().zip(0..).map(|(k, n)| (k, Payload::new(n))))
        .expect("load");
    store.flush().expect("flush");
    let loaded = resident_mib();
    println!("memory: {records} records loaded: resident {loaded:.1} MiB ({before:.1} MiB before)");

    let start = Instant::now();
    let mut next_sample = start + sample_every;
    let mut samples = Vec::new();
    let mut updates = 0_u64;
    let mut rng = fastrand::Rng::with_seed(1);
    while start.elapsed() < steady {
        let i = rng.usize(..records);
        versions[i] = docs
            .update(&keys[i], versions[i], Payload::new(updates))
            .expect("update");
        updates += 1;
        if Instant::now() >= next_sample {
            samples.push(resident_mib());
            next_sample += sample_every;
        }
    }
    let first = samples.first().copied().unwrap_or(loaded);
    let last = samples.last().copied().unwrap_or(loaded);
    println!(
        "memory: {updates} updates over {steady:?}: resident {first:.1} -> {last:.1} MiB (samples {samples:.1?})"
    );
}
