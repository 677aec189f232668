//! Queries in transactions are serializable: a transaction commits only if no other commit
//! changed what its queries returned, a record entering the range included (no phantoms).

use std::cell::Cell;
use std::sync::Barrier;

use revkv::{Collection, Query, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    customer: String,
    open: bool,
}

fn open_orders(store: &Store) -> revkv::Result<Collection<Order>> {
    store
        .collection::<Order>("orders")
        .index("customer", |o: &Order| o.customer.clone())
        .open()
}

fn order(customer: &str, open: bool) -> Order {
    Order {
        customer: customer.into(),
        open,
    }
}

#[test]
fn eight_racing_transactions_that_insert_only_if_a_query_finds_none_leave_one() -> revkv::Result<()>
{
    for round in 0..20 {
        let store = Store::temporary()?;
        let orders = open_orders(&store)?;
        // No record of ann's to read: the transactions share no key, only the range.
        orders.insert("other-1", order("bob", true))?;
        let start = Barrier::new(8);
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (store, orders, start) = (&store, &orders, &start);
                scope.spawn(move || {
                    start.wait();
                    store
                        .transaction(|tx| {
                            let mine = tx.query(orders, &Query::index("customer", "ann"))?;
                            if mine.records.iter().any(|(_, o)| o.value.open) {
                                return Ok(());
                            }
                            tx.insert(orders, &format!("o-{round}-{t}"), order("ann", true))?;
                            Ok(())
                        })
                        .expect("the transaction");
                });
            }
        });
        let open: Vec<String> = (orders.query(&Query::index("customer", "ann"))?.records)
            .into_iter()
            .filter(|(_, o)| o.value.open)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(open.len(), 1, "round {round}: {open:?}");
        assert!(store.verify()?.is_clean());
    }
    Ok(())
}

#[test]
fn a_record_entering_the_range_after_the_query_reruns_the_transaction() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    orders.insert("o-1", order("ann", true))?;
    let runs = Cell::new(0);
    let counted = store.transaction(|tx| {
        runs.set(runs.get() + 1);
        let page = tx.query(&orders, &Query::index("customer", "ann"))?;
        if runs.get() == 1 {
            // Another writer's record enters the range between the query and the commit.
            orders.insert("o-2", order("ann", true))?;
        }
        tx.insert(&orders, "summary", order("summary", false))?;
        Ok(page.records.len())
    })?;
    assert_eq!(runs.get(), 2, "the first run saw a result that changed");
    assert_eq!(counted, 2);
    Ok(())
}

#[test]
fn a_record_leaving_the_range_or_a_page_beyond_it_behave_as_read() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    let v1 = orders.insert("o-1", order("ann", true))?;
    for i in 2..6 {
        orders.insert(&format!("o-{i}"), order("ann", true))?;
    }
    // A record the query returned leaves the range: the transaction runs again.
    let runs = Cell::new(0);
    store.transaction(|tx| {
        runs.set(runs.get() + 1);
        tx.query(&orders, &Query::index("customer", "ann"))?;
        if runs.get() == 1 {
            orders.update("o-1", v1, order("bob", true))?;
        }
        tx.insert(&orders, "summary", order("summary", false))
    })?;
    assert_eq!(runs.get(), 2);

    // A record entering past the last record of a page that has more is not a phantom of
    // that page: the transaction commits at once.
    let runs = Cell::new(0);
    store.transaction(|tx| {
        runs.set(runs.get() + 1);
        let page = tx.query(&orders, &Query::index("customer", "ann").limit(2))?;
        assert!(page.next.is_some());
        if runs.get() == 1 {
            orders.insert("o-9", order("ann", true))?;
        }
        let summary = tx.get(&orders, "summary")?.expect("the summary");
        tx.update(&orders, "summary", summary.version, order("summary", true))
    })?;
    assert_eq!(runs.get(), 1);
    Ok(())
}

#[test]
fn a_transaction_sees_its_own_writes_in_its_queries() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    let v1 = orders.insert("o-1", order("ann", true))?;
    orders.insert("o-2", order("ann", true))?;
    let seen = store.transaction(|tx| {
        tx.insert(&orders, "o-0", order("ann", true))?;
        tx.update(&orders, "o-1", v1, order("bob", true))?;
        let page = tx.query(&orders, &Query::index("customer", "ann"))?;
        let keys: Vec<String> = page.records.into_iter().map(|(k, _)| k).collect();
        let all = tx.query(&orders, &Query::all().reverse())?;
        Ok((keys, all.records.len()))
    })?;
    assert_eq!(seen, (vec!["o-0".to_owned(), "o-2".to_owned()], 3));
    Ok(())
}

#[test]
fn async_transactions_query_alike() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?.to_async();
    orders.blocking().insert("o-1", order("ann", true))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = store.to_async();
    let found = runtime.block_on(async {
        let orders = orders.clone();
        store
            .transaction(|tx| {
                let orders = orders.clone();
                Box::pin(async move {
                    let page = tx.query(&orders, &Query::index("customer", "ann")).await?;
                    Ok(page.records.len())
                })
            })
            .await
    })?;
    assert_eq!(found, 1);
    Ok(())
}
