//! revkv on etcd, on a private 3-member cluster on 127.0.0.1 (started by the bench, as the
//! tests start theirs): a CAS update (also with the change feed) and a unique insert against
//! raw `etcd-client` transactions that make the same compares and writes, each in one
//! criterion group; get then update from 1, 16 and 64 callers at once, on revkv's async and
//! blocking APIs and on raw `etcd-client`; then CAS updates from 4 processes against 1.
//!
//! A CAS update comes two ways, each against the raw client doing the same user-visible work:
//! a get then an update of the version read (two round trips: raw reads the key, then swaps
//! its value on condition that it is still the one read), and an update of the version this
//! process wrote last (one round trip: raw swaps on condition that the key still holds the
//! value it wrote).

// Benchmark arithmetic on small counters: the casts cannot lose anything here.
#![allow(clippy::cast_possible_truncation)]

mod common;
#[path = "../tests/etcd/mod.rs"]
mod etcd;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Payload, keys, run_tasks};
use criterion::{BenchmarkId, Criterion, Throughput};
use etcd_client::{Compare, CompareOp, KvClient, Txn, TxnOp};
use revkv::AsyncCollection;
use serde::{Deserialize, Serialize};

const KEYS: usize = 100;
/// How a worker process learns its cluster, namespace and index (`etcd::Cluster::part`).
const WORKER: &str = "REVKV_ETCD_BENCH_WORKER";

#[derive(Serialize, Deserialize, Clone)]
struct User {
    email: String,
}

/// etcd-client on a runtime of its own, called from the benchmark's thread.
struct Raw {
    runtime: tokio::runtime::Runtime,
    kv: KvClient,
}

impl Raw {
    fn connect(endpoints: &[String]) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime
            .block_on(etcd_client::Client::connect(endpoints, None))
            .expect("connect");
        Self {
            kv: client.kv_client(),
            runtime,
        }
    }

    fn txn(&mut self, txn: Txn) -> bool {
        let kv = &mut self.kv;
        self.runtime.block_on(kv.txn(txn)).expect("txn").succeeded()
    }

    fn get(&mut self, key: &[u8]) -> Vec<u8> {
        let kv = &mut self.kv;
        let response = self.runtime.block_on(kv.get(key, None)).expect("get");
        response.kvs()[0].value().to_vec()
    }
}

fn cas_update(c: &mut Criterion, cluster: &etcd::Cluster) {
    let keys = keys(KEYS);
    let mut group = c.benchmark_group("etcd_cas_update_1_thread");
    group.throughput(Throughput::Elements(1));

    let store = cluster.store("bench-cas");
    let docs = store.collection::<Payload>("docs").open().expect("docs");
    let mut updates = common::Updates::new(&docs, &keys);
    group.bench_function("revkv_update", |b| b.iter(|| updates.next()));

    let mut m = 0_usize;
    group.bench_function("revkv_get_then_update", |b| {
        b.iter(|| {
            m += 1;
            let key = &keys[m % KEYS];
            let read = docs.get(key).expect("get").expect("exists");
            docs.update(key, read.version, Payload::new(m as u64))
                .expect("update");
        });
    });

    // Each commit also puts its changes at the feed's key: the record's bytes again.
    let fed = cluster.store_with_feed("bench-cas-feed");
    let fed_docs = fed.collection::<Payload>("docs").open().expect("docs");
    let mut fed_updates = common::Updates::new(&fed_docs, &keys);
    group.bench_function("revkv_update_with_change_feed", |b| {
        b.iter(|| fed_updates.next());
    });

    let mut n = 0_usize;
    let mut raw = Raw::connect(&cluster.endpoints());
    let raw_key = |k: &str| format!("raw-cas/{k}").into_bytes();
    for key in &keys {
        raw.txn(Txn::new().and_then([TxnOp::put(raw_key(key), Payload::raw(0), None)]));
    }
    group.bench_function("etcd_client_get_then_txn", |b| {
        b.iter(|| {
            n += 1;
            let key = raw_key(&keys[n % KEYS]);
            let read = raw.get(&key);
            let swapped = raw.txn(
                Txn::new()
                    .when([Compare::value(key.clone(), CompareOp::Equal, read)])
                    .and_then([TxnOp::put(key, Payload::raw(n as u64), None)]),
            );
            assert!(swapped);
        });
    });

    // The value each raw key holds, as this process last wrote it.
    let mut written: Vec<Vec<u8>> = keys.iter().map(|_| Payload::raw(0)).collect();
    for (key, value) in keys.iter().zip(&written) {
        raw.txn(Txn::new().and_then([TxnOp::put(raw_key(key), value.clone(), None)]));
    }
    group.bench_function("etcd_client_txn_on_value_written", |b| {
        b.iter(|| {
            n += 1;
            let i = n % KEYS;
            let key = raw_key(&keys[i]);
            let value = Payload::raw(n as u64);
            let swapped = raw.txn(
                Txn::new()
                    .when([Compare::value(
                        key.clone(),
                        CompareOp::Equal,
                        written[i].clone(),
                    )])
                    .and_then([TxnOp::put(key, value.clone(), None)]),
            );
            assert!(swapped);
            written[i] = value;
        });
    });
    group.finish();
}

fn unique_insert(c: &mut Criterion, cluster: &etcd::Cluster) {
    let mut group = c.benchmark_group("etcd_unique_insert_1_thread");
    group.throughput(Throughput::Elements(1));

    let store = cluster.store("bench-unique");
    let users = store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()
        .expect("users");
    let mut n = 0_usize;
    group.bench_function("revkv_unique_insert", |b| {
        b.iter(|| {
            n += 1;
            let user = User {
                email: format!("user-{n}@example.com"),
            };
            users.insert(&format!("u{n}"), &user).expect("insert");
        });
    });

    let mut raw = Raw::connect(&cluster.endpoints());
    group.bench_function("etcd_client_txn_2_keys", |b| {
        b.iter(|| {
            n += 1;
            let record = format!("raw-unique/records/u{n}").into_bytes();
            let entry = format!("raw-unique/email/user-{n}@example.com").into_bytes();
            let inserted = raw.txn(
                Txn::new()
                    .when([
                        Compare::version(record.clone(), CompareOp::Equal, 0),
                        Compare::version(entry.clone(), CompareOp::Equal, 0),
                    ])
                    .and_then([
                        TxnOp::put(entry, format!("u{n}"), None),
                        TxnOp::put(record, Payload::raw(n as u64), None),
                    ]),
            );
            assert!(inserted);
        });
    });
    group.finish();
}

/// T callers at once in one process, each doing get then update of a key of its own, for
/// T = 1, 16 and 64: revkv's async API (T tasks), its blocking API (T threads), and raw
/// `etcd-client` (T tasks: a get, then a `Txn` comparing the `mod_revision` read). The tasks
/// run on a multi-thread runtime of two workers, one per core of this machine.
fn concurrent(c: &mut Criterion, cluster: &etcd::Cluster) {
    let mut group = c.benchmark_group("etcd_get_then_update_concurrent");
    group.throughput(Throughput::Elements(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = cluster.store("bench-concurrent");
    let docs = store.collection::<Payload>("docs").open().expect("docs");
    let tasks = docs.to_async();
    let client = runtime
        .block_on(etcd_client::Client::connect(cluster.endpoints(), None))
        .expect("connect");
    let kv = client.kv_client();
    let mut most_threads = 0;
    for callers in [1_usize, 16, 64] {
        let keys: Vec<String> = (0..callers).map(|i| format!("t{callers}-{i}")).collect();
        let raw_keys: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| format!("raw-t/{k}").into_bytes())
            .collect();
        for (key, raw_key) in keys.iter().zip(&raw_keys) {
            docs.insert(key, Payload::new(0)).expect("insert");
            let mut kv = kv.clone();
            runtime
                .block_on(kv.put(raw_key.clone(), Payload::raw(0), None))
                .expect("put");
        }
        let per_caller = move |iters: u64| iters.div_ceil(callers as u64);

        group.bench_with_input(
            BenchmarkId::new("revkv_async", callers),
            &callers,
            |b, _| {
                b.iter_custom(|iters| {
                    let rounds = per_caller(iters);
                    let callers = keys
                        .iter()
                        .map(|key| revkv_rounds(tasks.clone(), key.clone(), rounds));
                    let (elapsed, threads) = run_tasks(&runtime, callers);
                    most_threads = most_threads.max(threads);
                    elapsed
                });
            },
        );

        group.bench_with_input(
            BenchmarkId::new("revkv_blocking", callers),
            &callers,
            |b, _| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for key in &keys {
                            let docs = &docs;
                            s.spawn(move || {
                                for n in 0..per_caller(iters) {
                                    let read = docs.get(key).expect("get").expect("there");
                                    docs.update(key, read.version, Payload::new(n))
                                        .expect("update");
                                }
                            });
                        }
                    });
                    start.elapsed()
                });
            },
        );

        group.bench_with_input(
            BenchmarkId::new("etcd_client_async", callers),
            &callers,
            |b, _| {
                b.iter_custom(|iters| {
                    let rounds = per_caller(iters);
                    let callers = raw_keys
                        .iter()
                        .map(|key| raw_rounds(kv.clone(), key.clone(), rounds));
                    run_tasks(&runtime, callers).0
                });
            },
        );
    }
    group.finish();
    println!("threads of this process with 64 async callers in flight: {most_threads}");
}

/// `rounds` of get, then update of the version read, on revkv's async API.
async fn revkv_rounds(docs: AsyncCollection<Payload>, key: String, rounds: u64) {
    for n in 0..rounds {
        let read = docs.get(&key).await.expect("get").expect("there");
        let next = Payload::new(n);
        docs.update(&key, read.version, next).await.expect("update");
    }
}

/// `rounds` of get, then a `Txn` comparing the `mod_revision` read, on raw `etcd-client`.
async fn raw_rounds(mut kv: KvClient, key: Vec<u8>, rounds: u64) {
    for n in 0..rounds {
        let read = kv.get(key.clone(), None).await.expect("get");
        let revision = read.kvs()[0].mod_revision();
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                revision,
            )])
            .and_then([TxnOp::put(key.clone(), Payload::raw(n), None)]);
        assert!(kv.txn(txn).await.expect("txn").succeeded());
    }
}

/// CAS updates from `processes` worker processes at once, each on keys of its own.
fn processes(c: &mut Criterion, cluster: &etcd::Cluster) {
    let mut group = c.benchmark_group("etcd_cas_update_processes");
    group.throughput(Throughput::Elements(1));
    for processes in [1, 4] {
        group.bench_function(format!("{processes}_processes"), |b| {
            b.iter_custom(|iters| run_workers(cluster, processes, iters));
        });
    }
    group.finish();
}

/// Starts `count` workers, lets them make `total` updates between them once all are ready,
/// and returns how long that took.
fn run_workers(cluster: &etcd::Cluster, count: usize, total: u64) -> Duration {
    let mut workers: Vec<_> = (0..count)
        .map(|i| {
            Command::new(std::env::current_exe().expect("this bench"))
                .env(WORKER, cluster.part("bench-processes", i))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker")
        })
        .collect();
    let mut outputs: Vec<_> = workers
        .iter_mut()
        .map(|w| BufReader::new(w.stdout.take().expect("stdout")))
        .collect();
    let mut line = String::new();
    for output in &mut outputs {
        line.clear();
        output.read_line(&mut line).expect("ready");
        assert_eq!(line.trim(), "ready");
    }
    let share = total.div_ceil(count as u64);
    let start = Instant::now();
    for worker in &mut workers {
        let stdin = worker.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{share}").expect("go");
    }
    for worker in workers {
        assert!(worker.wait_with_output().expect("done").status.success());
    }
    start.elapsed()
}

/// A worker process: opens the store, makes its keys, says it is ready, then makes as many
/// updates as it is told.
fn worker(part: &str) {
    let (store, index) = etcd::open_part(part);
    let docs = store.collection::<Payload>("docs").open().expect("docs");
    let keys: Vec<String> = (0..16).map(|k| format!("w{index}-{k}")).collect();
    let mut updates = common::Updates::new(&docs, &keys);
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("go");
    let count: usize = line.trim().parse().expect("a count");
    for _ in 0..count {
        updates.next();
    }
}

fn main() {
    if let Ok(part) = std::env::var(WORKER) {
        worker(&part);
        return;
    }
    let cluster = etcd::Cluster::start();
    let mut c = common::criterion();
    cas_update(&mut c, &cluster);
    unique_insert(&mut c, &cluster);
    concurrent(&mut c, &cluster);
    processes(&mut c, &cluster);
    c.final_summary();
}
