//! Stock reservation: one transaction decrements an item's stock and creates the order, or
//! neither. revkv's transaction (intent protocol over single-key writes) against the same
//! transaction in sled over two trees, and an in-memory map pair; one thread, 1,000 items.

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

const ITEMS: usize = 1_000;

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    stock: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct Order {
    sku: String,
    payload: Payload,
}

fn transactions(c: &mut Criterion) {
    let skus: Vec<String> = (0..ITEMS).map(|i| format!("sku-{i:05}")).collect();
    let mut group = c.benchmark_group("stock_reservation_1_thread");
    group.throughput(Throughput::Elements(1));

    let store = revkv::Store::temporary().expect("store");
    let items = store
        .collection::<Item>("items")
        .open()
        .expect("collection");
    let orders = store
        .collection::<Order>("orders")
        .open()
        .expect("collection");
    items
        .load(skus.iter().map(|s| (s, Item { stock: u64::MAX })))
        .expect("load");
    let mut n = 0_usize;
    group.bench_function("revkv_transaction", |b| {
        b.iter(|| {
            n += 1;
            let sku = &skus[n % ITEMS];
            store
                .transaction(|tx| {
                    let item = tx.get(&items, sku)?.expect("item");
                    tx.update(
                        &items,
                        sku,
                        item.version,
                        Item {
                            stock: item.value.stock - 1,
                        },
                    )?;
                    tx.insert(
                        &orders,
                        &format!("o{n:012}"),
                        Order {
                            sku: sku.clone(),
                            payload: Payload::new(n as u64),
                        },
                    )?;
                    Ok(())
                })
                .expect("transaction");
        });
    });

    let dir = tempfile::tempdir().expect("dir");
    let db = sled::open(dir.path()).expect("sled");
    let (stock, placed) = (
        db.open_tree("items").expect("tree"),
        db.open_tree("orders").expect("tree"),
    );
    for sku in &skus {
        stock.insert(sku, &u64::MAX.to_be_bytes()).expect("insert");
    }
    group.bench_function("sled_transaction_2_trees", |b| {
        b.iter(|| {
            n += 1;
            let sku = &skus[n % ITEMS];
            let order = (format!("o{n:012}"), Payload::raw(n as u64));
            (&stock, &placed)
                .transaction(|(stock, placed)| {
                    let left = stock.get(sku)?.expect("item");
                    let left = u64::from_be_bytes(left.as_ref().try_into().expect("8 bytes"));
                    if left == 0 {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                    stock.insert(sku.as_bytes(), &(left - 1).to_be_bytes())?;
                    placed.insert(order.0.as_bytes(), order.1.as_slice())?;
                    Ok(())
                })
                .expect("transaction");
        });
    });

    let maps: RwLock<(HashMap<String, u64>, HashMap<String, Order>)> = RwLock::new((
        skus.iter().map(|s| (s.clone(), u64::MAX)).collect(),
        HashMap::new(),
    ));
    group.bench_function("in_memory_maps", |b| {
        b.iter(|| {
            n += 1;
            let sku = &skus[n % ITEMS];
            let mut maps = maps.write();
            let left = maps.0.get_mut(sku).expect("item");
            if *left > 0 {
                *left -= 1;
                maps.1.insert(
                    format!("o{n:012}"),
                    Order {
                        sku: sku.clone(),
                        payload: Payload::new(n as u64),
                    },
                );
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = transactions
}
criterion_main!(benches);
