//! Non-unique indexes: each write moves its record's entry in the same commit, a delete or an
//! expiry takes it away, a new index is built over the records already there, and `verify`
//! checks the entries exactly.

use std::time::{Duration, SystemTime};

use revkv::{Error, ManualClock, Memory, Problem, Query, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    customer: String,
    state: String,
}

fn order(customer: &str, state: &str) -> Order {
    Order {
        customer: customer.into(),
        state: state.into(),
    }
}

fn open_orders(store: &Store) -> revkv::Result<revkv::Collection<Order>> {
    store
        .collection::<Order>("orders")
        .index("customer", |o: &Order| o.customer.clone())
        .index("state", |o: &Order| o.state.clone())
        .open()
}

/// The keys a query returns, all pages read.
fn keys(orders: &revkv::Collection<Order>, query: &Query) -> revkv::Result<Vec<String>> {
    Ok(orders
        .query(query)?
        .records
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

#[test]
fn an_update_moves_a_record_between_values_and_a_delete_removes_it() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    let v1 = orders.insert("o-1", order("ann", "pending"))?;
    orders.insert("o-2", order("bob", "pending"))?;
    orders.insert("o-3", order("ann", "paid"))?;
    assert_eq!(
        keys(&orders, &Query::index("customer", "ann"))?,
        ["o-1", "o-3"]
    );
    assert_eq!(
        keys(&orders, &Query::index("state", "pending"))?,
        ["o-1", "o-2"]
    );

    let v2 = orders.update("o-1", v1, order("bob", "paid"))?;
    assert_eq!(keys(&orders, &Query::index("customer", "ann"))?, ["o-3"]);
    assert_eq!(
        keys(&orders, &Query::index("customer", "bob"))?,
        ["o-1", "o-2"]
    );
    assert_eq!(keys(&orders, &Query::index("state", "pending"))?, ["o-2"]);
    let page = orders.query(&Query::index("state", "paid"))?;
    assert_eq!(page.records[0].1.version, v2, "the record as it is now");
    assert_eq!(page.records[0].1.value, order("bob", "paid"));

    orders.delete("o-1", v2)?;
    assert_eq!(keys(&orders, &Query::index("customer", "bob"))?, ["o-2"]);
    assert_eq!(keys(&orders, &Query::index("state", "paid"))?, ["o-3"]);
    assert!(keys(&orders, &Query::index("customer", "nobody"))?.is_empty());
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        report.index_entries, 4,
        "two entries for each of two records"
    );
    Ok(())
}

#[test]
fn values_sharing_a_prefix_or_holding_zero_bytes_stay_apart() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    for (key, customer) in [
        ("k1", "a"),
        ("k2", "a\0"),
        ("k3", "a\0b"),
        ("k4", "ab"),
        ("k5", ""),
    ] {
        orders.insert(key, order(customer, "pending"))?;
    }
    assert_eq!(keys(&orders, &Query::index("customer", "a"))?, ["k1"]);
    assert_eq!(keys(&orders, &Query::index("customer", "a\0"))?, ["k2"]);
    assert_eq!(keys(&orders, &Query::index("customer", ""))?, ["k5"]);
    assert_eq!(
        keys(&orders, &Query::index_range("customer", "a", "ab"))?,
        ["k1", "k2", "k3"],
        "by value, half-open"
    );
    Ok(())
}

#[test]
fn an_expired_record_leaves_every_query() -> revkv::Result<()> {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = Store::builder().clock(clock.clone()).open()?;
    let orders = open_orders(&store)?;
    orders.insert_expiring("o-1", order("ann", "pending"), Duration::from_secs(60))?;
    orders.insert("o-2", order("ann", "pending"))?;
    assert_eq!(
        keys(&orders, &Query::index("customer", "ann"))?,
        ["o-1", "o-2"]
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(keys(&orders, &Query::index("customer", "ann"))?, ["o-2"]);
    assert_eq!(keys(&orders, &Query::all())?, ["o-2"]);
    assert_eq!(
        keys(&orders, &Query::index_range("state", "a", "z"))?,
        ["o-2"]
    );
    store.sweep_expired()?;
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        report.index_entries, 2,
        "the sweep took the expired record's entries"
    );
    Ok(())
}

#[test]
fn a_new_index_is_built_over_existing_records_and_a_dropped_one_emptied() -> revkv::Result<()> {
    let memory = Memory::new();
    let store = Store::builder().memory(&memory).open()?;
    let plain = store.collection::<Order>("orders").open()?;
    for i in 0..300 {
        let customer = ["ann", "bob", "cy"][i % 3];
        plain.insert(&format!("o-{i:03}"), order(customer, "pending"))?;
    }
    drop((plain, store));

    let store = Store::builder().memory(&memory).open()?;
    let orders = open_orders(&store)?;
    let ann = keys(&orders, &Query::index("customer", "ann"))?;
    assert_eq!(ann.len(), 100);
    assert!(
        ann.iter()
            .all(|k| k[2..].parse::<usize>().is_ok_and(|i| i % 3 == 0))
    );
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.index_entries, 600);
    drop((orders, store));

    // Declared without the indexes, then with them again: rebuilt, not stale.
    let store = Store::builder().memory(&memory).open()?;
    let plain = store.collection::<Order>("orders").open()?;
    let v = plain.get("o-000")?.expect("stored").version;
    plain.update("o-000", v, order("dan", "paid"))?;
    drop((plain, store));
    let store = Store::builder().memory(&memory).open()?;
    let orders = open_orders(&store)?;
    assert_eq!(keys(&orders, &Query::index("customer", "dan"))?, ["o-000"]);
    assert_eq!(keys(&orders, &Query::index("customer", "ann"))?.len(), 99);
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn verify_reports_missing_and_stale_entries_and_queries_skip_stale_ones() -> revkv::Result<()> {
    let memory = Memory::new();
    let store = Store::builder().memory(&memory).open()?;
    let orders = open_orders(&store)?;
    orders.insert("o-1", order("ann", "pending"))?;
    orders.insert("o-2", order("bob", "pending"))?;
    drop((orders, store));

    // An entry of o-2 under a value it does not hold, and o-1's customer entry gone.
    let entry = |value: &str, key: &str| [value.as_bytes(), &[0], key.as_bytes()].concat();
    memory.plant("i/orders/customer", &entry("ann", "o-2"), b"");
    let damaged = memory.snapshot();
    let store = Store::builder().memory(&damaged).open()?;
    let orders = open_orders(&store)?;
    assert_eq!(
        keys(&orders, &Query::index("customer", "ann"))?,
        ["o-1"],
        "an entry whose record holds another value is not a match"
    );
    let report = store.verify()?;
    assert!(
        report.problems.iter().any(|p| matches!(p,
            Problem::StaleEntry { index, value, holder, .. }
                if index == "customer" && value == "ann" && holder == "o-2")),
        "{report}"
    );
    assert_eq!(report.problems.len(), 1, "{report}");
    drop((orders, store));

    // A record stored past revkv, without its entries: both indexes miss it.
    let bytes = memory.read("c/orders", b"o-1").expect("o-1's bytes");
    memory.plant("c/orders", b"o-9", &bytes);
    let store = Store::builder().memory(&memory).open()?;
    let _orders = open_orders(&store)?;
    let report = store.verify()?;
    let missing: Vec<_> = (report.problems.iter())
        .filter(|p| matches!(p, Problem::MissingEntry { key, .. } if key == "o-9"))
        .collect();
    assert_eq!(missing.len(), 2, "{report}");
    assert_eq!(
        report.problems.len(),
        3,
        "and the stale entry still: {report}"
    );
    Ok(())
}

#[test]
fn undeclared_indexes_and_duplicate_names_are_errors() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    let err = orders.query(&Query::index("nope", "x")).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownIndex { index, .. } if index == "nope"),
        "{err:?}"
    );
    let err = orders.find_unique("customer", "ann").unwrap_err();
    assert!(
        matches!(err, Error::UnknownIndex { .. }),
        "find_unique takes unique indexes"
    );
    let err = store
        .collection::<Order>("twice")
        .unique("customer", |o: &Order| o.customer.clone())
        .index("customer", |o: &Order| o.customer.clone())
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    Ok(())
}
