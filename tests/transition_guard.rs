//! State machines: declared transitions pass, others are conflicts naming from, to and allowed.

use std::sync::Barrier;

use revkv::{Collection, Conflict, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    status: String,
    note: String,
}

fn order(status: &str) -> Order {
    Order {
        status: status.into(),
        note: String::new(),
    }
}

fn orders(store: &Store) -> revkv::Result<Collection<Order>> {
    store
        .collection::<Order>("orders")
        .states(
            |o: &Order| o.status.clone(),
            [
                ("pending", "paid"),
                ("paid", "shipped"),
                ("pending", "cancelled"),
            ],
        )
        .initial_states(["pending"])
        .open()
}

#[test]
fn shipping_a_pending_order_is_refused_with_from_to_and_allowed() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = orders(&store)?;
    let v1 = orders.insert("o1", order("pending"))?;
    let err = orders.update("o1", v1, order("shipped")).unwrap_err();
    let Error::Conflict(
        conflict @ Conflict::Transition {
            from,
            to,
            allowed,
            current,
            ..
        },
    ) = &err
    else {
        panic!("expected a transition conflict, got {err:?}")
    };
    assert_eq!((from.as_str(), to.as_str()), ("pending", "shipped"));
    assert_eq!(allowed, &["cancelled", "paid"]);
    assert_eq!(*current, v1);
    assert_eq!(
        conflict.current_record::<Order>()?.map(|r| r.value),
        Some(order("pending"))
    );
    let message = err.to_string();
    assert!(
        message.contains("\"pending\"") && message.contains("\"paid\""),
        "{message}"
    );
    assert_eq!(orders.get("o1")?.expect("kept").value, order("pending"));
    Ok(())
}

#[test]
fn the_declared_path_works_and_updates_within_a_state_are_free() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = orders(&store)?;
    let v = orders.insert("o1", order("pending"))?;
    let v = orders.update("o1", v, order("paid"))?;
    let v = orders.update(
        "o1",
        v,
        Order {
            status: "paid".into(),
            note: "gift wrap".into(),
        },
    )?;
    let v = orders.update("o1", v, order("shipped"))?;
    let err = orders.update("o1", v, order("pending")).unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::Transition { ref allowed, .. }) if allowed.is_empty()
    ));
    // Deletes are allowed in any state.
    orders.delete("o1", v)?;
    Ok(())
}

#[test]
fn records_start_only_in_initial_states() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = orders(&store)?;
    let err = orders.insert("o1", order("paid")).unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::InitialState { ref state, ref allowed, .. })
            if state == "paid" && allowed == &["pending"]
    ));
    assert_eq!(orders.get("o1")?, None);
    Ok(())
}

#[test]
fn concurrent_paid_and_cancelled_on_one_order_exactly_one_wins() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = orders(&store)?;
    for round in 0..200 {
        let key = format!("o{round}");
        let v1 = orders.insert(&key, order("pending"))?;
        let barrier = Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|s| {
            let moves = ["paid", "cancelled"].map(|to| {
                let (barrier, orders, key) = (&barrier, &orders, &key);
                s.spawn(move || {
                    barrier.wait();
                    // Each client read version 1 and tries its move.
                    orders.update(key, v1, order(to)).map(|_| to)
                })
            });
            moves.map(|m| m.join().expect("thread panicked")).into()
        });
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        assert_eq!(&orders.get(&key)?.expect("exists").value.status, won[0]);
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Conflict(Conflict::VersionMismatch { .. })))),
            "the loser saw the winner's version"
        );
    }
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn update_with_stops_at_an_illegal_transition() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = orders(&store)?;
    orders.insert("o1", order("pending"))?;
    let err = orders.update_with("o1", |_| order("shipped")).unwrap_err();
    assert!(matches!(err, Error::Conflict(Conflict::Transition { .. })));
    Ok(())
}

#[test]
fn concurrent_paid_and_cancelled_through_update_with_exactly_one_wins() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = orders(&store)?;
    for round in 0..200 {
        let key = format!("o{round}");
        orders.insert(&key, order("pending"))?;
        let barrier = Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|s| {
            let moves = ["paid", "cancelled"].map(|to| {
                let (barrier, orders, key) = (&barrier, &orders, &key);
                s.spawn(move || {
                    barrier.wait();
                    // Re-reads on conflict; the second move then meets the first one's state.
                    orders.update_with(key, |_| order(to)).map(|_| to)
                })
            });
            moves.map(|m| m.join().expect("thread panicked")).into()
        });
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        let lost = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("one lost");
        assert!(
            matches!(lost, Error::Conflict(Conflict::Transition { from, .. }) if from == *won[0]),
            "round {round}: {lost:?}"
        );
    }
    Ok(())
}
