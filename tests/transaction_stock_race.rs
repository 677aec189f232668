//! The last items in stock: 8 threads buy at once; a transaction reserves stock and creates the
//! order together, or neither.

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};

use revkv::{Conflict, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    stock: u32,
    reserved_by: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    sku: String,
    status: String,
}

const THREADS: usize = 8;
const ATTEMPTS: usize = 400;
const STOCK: u32 = 50;

#[test]
fn fifty_items_make_exactly_fifty_orders() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let items = store.collection::<Item>("items").open()?;
    let orders = store
        .collection::<Order>("orders")
        .states(|o: &Order| o.status.clone(), [("pending", "paid")])
        .initial_states(["pending"])
        .open()?;
    items.insert(
        "sku-1",
        Item {
            stock: STOCK,
            reserved_by: Vec::new(),
        },
    )?;

    let next_attempt = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    let outcomes: Vec<(String, revkv::Result<()>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut mine = Vec::new();
                    loop {
                        let n = next_attempt.fetch_add(1, Ordering::Relaxed);
                        if n >= ATTEMPTS {
                            return mine;
                        }
                        let order_id = format!("o-{n}");
                        let result = store.transaction(|tx| {
                            let item = tx.get(&items, "sku-1")?.expect("exists");
                            if item.value.stock == 0 {
                                return Err(Conflict::rule(
                                    "out_of_stock",
                                    "sku-1 has no stock left",
                                )
                                .at("items", "sku-1")
                                .into());
                            }
                            let mut reserved = item.value.clone();
                            reserved.stock -= 1;
                            reserved.reserved_by.push(order_id.clone());
                            tx.update(&items, "sku-1", item.version, reserved)?;
                            tx.insert(
                                &orders,
                                &order_id,
                                Order {
                                    sku: "sku-1".into(),
                                    status: "pending".into(),
                                },
                            )?;
                            Ok(())
                        });
                        mine.push((order_id, result));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker panicked"))
            .collect()
    });

    assert_eq!(outcomes.len(), ATTEMPTS);
    let bought: Vec<&String> = outcomes
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(bought.len(), STOCK as usize);
    for (id, result) in outcomes.iter().filter(|(_, r)| r.is_err()) {
        assert!(
            matches!(result, Err(Error::Conflict(Conflict::Rule { code, .. })) if code == "out_of_stock"),
            "{id}: {result:?}"
        );
    }

    let item = items.get("sku-1")?.expect("exists").value;
    assert_eq!(item.stock, 0);
    // Record by record: every order has its reservation, and every reservation its order.
    let mut stored: Vec<String> = orders
        .iter()
        .map(|r| r.map(|(k, _)| k))
        .collect::<revkv::Result<_>>()?;
    let mut reserved = item.reserved_by.clone();
    stored.sort();
    reserved.sort();
    assert_eq!(stored, reserved);
    let mut acknowledged: Vec<String> = bought.into_iter().cloned().collect();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
    assert!(store.verify()?.is_clean());
    Ok(())
}
