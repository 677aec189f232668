//! Expiry: with a controllable clock, expired records read as absent, free their unique values,
//! and are swept together with what their expiry handler releases, atomically.

use std::path::Path;
use std::time::{Duration, SystemTime};

use revkv::{Collection, Conflict, Error, ManualClock, Store};
use serde::{Deserialize, Serialize};

const HOLD: Duration = Duration::from_secs(15 * 60);

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    stock: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    sku: String,
    status: String,
    /// Unique: one open order per customer.
    customer: String,
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

struct Shop {
    store: Store,
    items: Collection<Item>,
    orders: Collection<Order>,
}

fn shop(store: Store) -> revkv::Result<Shop> {
    let items = store.collection::<Item>("items").open()?;
    let returns_stock = items.clone();
    let orders = store
        .collection::<Order>("orders")
        .unique("customer", |o: &Order| o.customer.clone())
        // An unpaid order's hold lapses: its stock goes back in the same transaction.
        .on_expiry(move |tx, _key, order: &Order| {
            let item = tx.get(&returns_stock, &order.sku)?.expect("item");
            tx.update(
                &returns_stock,
                &order.sku,
                item.version,
                Item {
                    stock: item.value.stock + 1,
                },
            )?;
            Ok(())
        })
        .open()?;
    Ok(Shop {
        store,
        items,
        orders,
    })
}

impl Shop {
    /// Reserves one unit of `sku` for `customer` for `HOLD`.
    fn reserve(&self, order_id: &str, customer: &str) -> revkv::Result<()> {
        self.store.transaction(|tx| {
            let item = tx.get(&self.items, "sku-1")?.expect("item");
            if item.value.stock == 0 {
                return Err(Conflict::rule("out_of_stock", "none left").into());
            }
            tx.update(
                &self.items,
                "sku-1",
                item.version,
                Item {
                    stock: item.value.stock - 1,
                },
            )?;
            let order = Order {
                sku: "sku-1".into(),
                status: "pending".into(),
                customer: customer.into(),
            };
            tx.insert_expiring(&self.orders, order_id, order, HOLD)?;
            Ok(())
        })
    }

    fn stock(&self) -> u32 {
        self.items
            .get("sku-1")
            .expect("read")
            .expect("item")
            .value
            .stock
    }
}

#[test]
fn expired_reservations_return_their_stock_and_free_their_unique_values() -> revkv::Result<()> {
    let clock = clock();
    let shop = shop(Store::builder().clock(clock.clone()).open()?)?;
    shop.items.insert("sku-1", Item { stock: 5 })?;
    for (order, customer) in [("o1", "ann"), ("o2", "bob"), ("o3", "cy")] {
        shop.reserve(order, customer)?;
    }
    // Bob pays: the order no longer expires.
    let bobs = shop.orders.get("o2")?.expect("order");
    assert!(bobs.expires.is_some());
    let paid = Order {
        status: "paid".into(),
        ..bobs.value
    };
    shop.orders.update("o2", bobs.version, paid)?;
    assert_eq!(shop.stock(), 2);

    clock.advance(HOLD.saturating_sub(Duration::from_secs(1)));
    assert!(shop.orders.get("o1")?.is_some(), "not yet");
    clock.advance(Duration::from_secs(1));

    // Expired: absent to readers and their unique values free, even before the sweep.
    assert_eq!(shop.orders.get("o1")?, None);
    assert_eq!(shop.orders.find_unique("customer", "ann")?, None);
    assert_eq!(shop.orders.iter().count(), 1);
    assert!(shop.store.verify()?.is_clean());
    // Ann orders again at once: her value is free.
    shop.reserve("o4", "ann")?;
    assert_eq!(shop.stock(), 1);

    // The sweep returns the stock of the two lapsed orders, atomically with removing them.
    assert_eq!(shop.store.sweep_expired()?, 2);
    assert_eq!(shop.stock(), 3);
    assert_eq!(shop.store.sweep_expired()?, 0, "nothing is swept twice");
    assert_eq!(shop.stock(), 3);
    // Ann's new order kept her unique value.
    assert_eq!(
        shop.orders
            .find_unique("customer", "ann")?
            .map(|r| r.value.sku),
        Some("sku-1".into())
    );
    let report = shop.store.verify()?;
    assert!(report.is_clean(), "{report}");
    Ok(())
}

#[test]
fn writing_over_an_expired_record_sweeps_it_first() -> revkv::Result<()> {
    let clock = clock();
    let shop = shop(Store::builder().clock(clock.clone()).open()?)?;
    shop.items.insert("sku-1", Item { stock: 1 })?;
    shop.reserve("o1", "ann")?;
    let held = shop.orders.get("o1")?.expect("order").version;
    clock.advance(HOLD);
    // An update of the lapsed order finds nothing to update...
    let err = shop
        .orders
        .update(
            "o1",
            held,
            Order {
                sku: "sku-1".into(),
                status: "paid".into(),
                customer: "ann".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict(Conflict::VersionMismatch { current: None, .. })
        ),
        "{err:?}"
    );
    // ...and the handler already gave the stock back, exactly once.
    assert_eq!(shop.stock(), 1);
    shop.orders.insert(
        "o1",
        Order {
            sku: "sku-1".into(),
            status: "pending".into(),
            customer: "zoe".into(),
        },
    )?;
    assert_eq!(shop.store.sweep_expired()?, 0);
    assert_eq!(shop.stock(), 1);
    Ok(())
}

fn reserved_then_expired(dir: &Path, clock: &ManualClock) -> revkv::Result<()> {
    let shop = shop(Store::builder().path(dir).clock(clock.clone()).open()?)?;
    shop.items.insert("sku-1", Item { stock: 3 })?;
    shop.reserve("o1", "ann")?;
    shop.reserve("o2", "bob")?;
    shop.store.flush()?;
    clock.advance(HOLD);
    Ok(())
}

#[test]
fn a_restart_between_expiry_and_sweep_loses_nothing() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock = clock();
    reserved_then_expired(dir.path(), &clock)?;
    // The store closed with both orders expired and unswept; the stock is still held.
    let shop = shop(
        Store::builder()
            .path(dir.path())
            .clock(clock.clone())
            .open()?,
    )?;
    assert_eq!(shop.stock(), 1);
    assert_eq!(shop.store.sweep_expired()?, 2);
    assert_eq!(shop.stock(), 3);
    Ok(())
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_crash_at_any_point_of_a_sweep_returns_the_stock_exactly_once() -> revkv::Result<()> {
    for crash_point in 0.. {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        reserved_then_expired(dir.path(), &clock)?;
        let finished = {
            let store = Store::builder()
                .path(dir.path())
                .clock(clock.clone())
                .crash_after_writes(crash_point)
                .open();
            store
                .and_then(shop)
                .and_then(|shop| shop.store.sweep_expired())
                .is_ok()
        };
        let shop = shop(
            Store::builder()
                .path(dir.path())
                .clock(clock.clone())
                .open()?,
        )?;
        shop.store.sweep_expired()?;
        assert_eq!(shop.stock(), 3, "crash point {crash_point}");
        assert_eq!(shop.orders.iter().count(), 0);
        let report = shop.store.verify()?;
        assert!(report.is_clean(), "crash point {crash_point}: {report}");
        if finished {
            assert!(crash_point > 5);
            return Ok(());
        }
    }
    unreachable!()
}

#[test]
fn a_background_sweeper_sweeps_without_being_asked() -> revkv::Result<()> {
    let clock = clock();
    let shop = shop(
        Store::builder()
            .clock(clock.clone())
            .sweep_every(Duration::from_millis(5))
            .open()?,
    )?;
    shop.items.insert("sku-1", Item { stock: 1 })?;
    shop.reserve("o1", "ann")?;
    clock.advance(HOLD);
    // Wait for the sweeper's effect, not for a fixed time: the stock comes back.
    let watch = shop.items.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while watch.get("sku-1")?.expect("item").value.stock == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never ran"
        );
        std::thread::yield_now();
    }
    assert_eq!(shop.store.sweep_expired()?, 0);
    Ok(())
}

#[test]
fn a_transaction_can_extend_a_hold() -> revkv::Result<()> {
    let clock = clock();
    let shop = shop(Store::builder().clock(clock.clone()).open()?)?;
    shop.items.insert("sku-1", Item { stock: 1 })?;
    shop.reserve("o1", "ann")?;
    clock.advance(HOLD / 2);
    shop.store.transaction(|tx| {
        let order = tx.get(&shop.orders, "o1")?.expect("held");
        tx.update_expiring(&shop.orders, "o1", order.version, order.value, HOLD)
    })?;
    clock.advance(HOLD / 2 + Duration::from_secs(1));
    assert!(shop.orders.get("o1")?.is_some(), "the hold was extended");
    clock.advance(HOLD);
    assert_eq!(shop.store.sweep_expired()?, 1);
    assert_eq!(shop.stock(), 1);
    Ok(())
}
