//! Export and import of 1,000,000 records (16-byte keys, 100-byte values): `Store::export`
//! against a raw sled scan of the same number of records of the same size (the floor of
//! reading them) and against that scan writing the export's lines by hand (the same output,
//! without snapshot or record decoding), and `Store::import` of that export into a fresh store
//! against revkv's own bulk `Collection::load` of the same records. Quick mode moves 20,000
//! records.

mod common;

use std::io::{Cursor, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::Payload;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;

/// An export's record line, as the hand-written baseline writes it.
#[derive(Serialize)]
struct Line<'a> {
    record: Record<'a>,
}

#[derive(Serialize)]
struct Record<'a> {
    collection: &'a str,
    key: &'a str,
    version: u64,
    modified_us: u64,
    expires_us: Option<u64>,
    value: &'a str,
}

fn transfer(c: &mut Criterion) {
    let records = common::scale(1_000_000, 20_000);
    let keys: Vec<String> = (0..records).map(|i| format!("key-{i:012}")).collect();
    let dirs = tempfile::tempdir().expect("dir");
    let store = common::load_payloads(&dirs.path().join("revkv"), &keys);
    let raw = sled::open(dirs.path().join("sled")).expect("sled");
    let tree = raw.open_tree("bench").expect("tree");
    for (key, n) in keys.iter().zip(0..) {
        tree.insert(key, Payload::raw(n)).expect("insert");
    }
    let mut export = Vec::new();
    store.export(&mut export).expect("export");

    let mut group = c.benchmark_group("export");
    group.throughput(Throughput::Elements(records as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("revkv_export", records), |b| {
        b.iter(|| store.export(std::io::sink()).expect("export"));
    });
    group.bench_function(BenchmarkId::new("sled_scan", records), |b| {
        b.iter(|| {
            let mut out = std::io::sink();
            for entry in &tree {
                let (key, value) = entry.expect("entry");
                out.write_all(&key).expect("sink");
                out.write_all(&value).expect("sink");
            }
        });
    });
    group.bench_function(BenchmarkId::new("sled_scan_json_lines", records), |b| {
        b.iter(|| {
            let mut out = std::io::BufWriter::new(std::io::sink());
            let mut value = String::new();
            for entry in &tree {
                let (key, bytes) = entry.expect("entry");
                value.clear();
                STANDARD.encode_string(&bytes, &mut value);
                let line = Line {
                    record: Record {
                        collection: "bench",
                        key: std::str::from_utf8(&key).expect("a key"),
                        version: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
                        modified_us: 0,
                        expires_us: None,
                        value: &value,
                    },
                };
                serde_json::to_writer(&mut out, &line).expect("sink");
                out.write_all(b"\n").expect("sink");
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(records as u64));
    group.sample_size(10);
    let fresh = || tempfile::tempdir().expect("dir");
    group.bench_function(BenchmarkId::new("revkv_import", records), |b| {
        b.iter_batched(
            fresh,
            |dir| {
                let store = revkv::Store::open(dir.path()).expect("store");
                store.import(Cursor::new(&export)).expect("import");
                dir
            },
            BatchSize::PerIteration,
        );
    });
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
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = transfer
}
criterion_main!(benches);
