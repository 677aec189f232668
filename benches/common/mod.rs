//! Shared set-up for the benchmarks.
//!
//! The full run is `cargo bench`. `REVKV_BENCH_QUICK=1 cargo bench` runs every benchmark
//! briefly, and so does `cargo test --benches` (criterion's test mode, which CI runs so that
//! the benchmarks never rot).

#![allow(dead_code)] // each bench file uses part of this module

use std::future::Future;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde::{Deserialize, Serialize};

/// Whether to run briefly: asked for with `REVKV_BENCH_QUICK`, or run by `cargo test`, which
/// (unlike `cargo bench`) does not pass `--bench`.
pub fn quick() -> bool {
    std::env::var_os("REVKV_BENCH_QUICK").is_some() || !std::env::args().any(|a| a == "--bench")
}

/// `full` normally, `small` in quick mode.
pub fn scale(full: usize, small: usize) -> usize {
    if quick() { small } else { full }
}

/// Criterion settings: full by default, a few milliseconds per benchmark in quick mode.
pub fn criterion() -> Criterion {
    let c = Criterion::default().configure_from_args();
    if quick() {
        c.sample_size(10)
            .warm_up_time(Duration::from_millis(10))
            .measurement_time(Duration::from_millis(50))
            .without_plots()
    } else {
        c.measurement_time(Duration::from_secs(5))
    }
}

/// The value the benchmarks write: 100 bytes once encoded, never equal to the previous one
/// (sled skips an insert of the bytes already stored, which would measure nothing).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Payload {
    pub counter: u64,
    pub body: String,
}

impl Payload {
    pub fn new(counter: u64) -> Self {
        Self {
            counter,
            body: "x".repeat(90),
        }
    }

    /// The same value as raw bytes, for the raw baselines: 100 bytes that differ per counter.
    pub fn raw(counter: u64) -> Vec<u8> {
        let mut bytes = vec![b'x'; 100];
        bytes[..8].copy_from_slice(&counter.to_le_bytes());
        bytes
    }
}

/// Loads `keys` with [`Payload`]s into the collection `bench` of a new store in `dir`, with
/// `Collection::load`, and flushes: revkv's bulk load, as the bulk-load and import benchmarks
/// measure it. Returns the store, still open.
pub fn load_payloads(dir: &std::path::Path, keys: &[String]) -> revkv::Store {
    let store = revkv::Store::open(dir).expect("store");
    let docs = store
        .collection::<Payload>("bench")
        .open()
        .expect("collection");
    docs.load(keys.iter().zip(0..).map(|(k, n)| (k, Payload::new(n))))
        .expect("load");
    store.flush().expect("flush");
    store
}

/// The CAS update workload: records under `keys`, each at the version last written, updated
/// in turn with a value that differs every time.
pub struct Updates<'c> {
    docs: &'c revkv::Collection<Payload>,
    keys: &'c [String],
    versions: Vec<revkv::Version>,
    made: usize,
}

impl<'c> Updates<'c> {
    /// The records of `keys` in `docs`, created where they do not exist yet.
    pub fn new(docs: &'c revkv::Collection<Payload>, keys: &'c [String]) -> Self {
        let versions = keys
            .iter()
            .map(|k| match docs.get(k).expect("read") {
                Some(record) => record.version,
                None => docs.insert(k, Payload::new(0)).expect("insert"),
            })
            .collect();
        Self {
            docs,
            keys,
            versions,
            made: 0,
        }
    }

    /// The next update: the `n`-th is of key `n` modulo the number of keys, with the value `n`.
    pub fn next(&mut self) {
        self.made += 1;
        let (n, i) = (self.made, self.made % self.keys.len());
        self.versions[i] = self
            .docs
            .update(&self.keys[i], self.versions[i], Payload::new(n as u64))
            .expect("update");
    }
}

/// `n` keys `k0000000`..: 8 bytes like typical short ids.
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i:07}")).collect()
}

/// A raw sled tree in a fresh directory holding `keys`, each with `Payload::raw(0)`: the
/// baseline the versioned benchmarks compare with. Keep the directory alive while using it.
pub fn sled_baseline(keys: &[String]) -> (tempfile::TempDir, sled::Tree) {
    let dir = tempfile::tempdir().expect("dir");
    let tree = sled::open(dir.path())
        .expect("sled")
        .open_tree("baseline")
        .expect("tree");
    for key in keys {
        tree.insert(key, Payload::raw(0)).expect("insert");
    }
    (dir, tree)
}

/// The raw versioned update revkv is measured against: read the value, then
/// `compare_and_swap` it for `next(current)`, again until no one else got there first.
pub fn sled_cas_update(tree: &sled::Tree, key: &str, next: impl Fn(&[u8]) -> Vec<u8>) {
    loop {
        let current = tree.get(key).expect("get").expect("present");
        let swapped = tree
            .compare_and_swap(key, Some(&current), Some(next(&current)))
            .expect("cas");
        if swapped.is_ok() {
            return;
        }
    }
}

/// Runs exactly `total` operations split over `threads` threads started together and returns
/// the wall time; `op(thread, i)` is the i-th operation of a thread. For `iter_custom`, which
/// divides the time by `total`.
pub fn run_threads(threads: usize, total: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, op) = (&barrier, &op);
            let share = share(total, threads, t);
            s.spawn(move || {
                barrier.wait();
                for i in 0..share {
                    op(t, i);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scoped threads are joined when the scope ends.
        start
    })
    .elapsed()
}

/// Part `index` of `total` operations split over `parts`: the first `total % parts` parts take
/// one more.
pub fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

/// Runs `callers` as tasks of `runtime` at once; how long they took, and how many threads the
/// process held while all of them were in flight.
pub fn run_tasks(
    runtime: &tokio::runtime::Runtime,
    callers: impl Iterator<Item = impl Future<Output = ()> + Send + 'static>,
) -> (Duration, usize) {
    let start = Instant::now();
    let threads = runtime.block_on(async {
        let running: Vec<_> = callers.map(tokio::spawn).collect();
        let threads = threads_now();
        for task in running {
            task.await.expect("task");
        }
        threads
    });
    (start.elapsed(), threads)
}

/// The threads of this process now, from `/proc/self/status`.
fn threads_now() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

/// The 99th percentile of `latencies`.
pub fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort_unstable();
    latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default()
}
