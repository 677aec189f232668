//! Transactions: all-or-nothing across collections, serializable, with the conflicts of the
//! collections they touch.

use std::cell::Cell;
use std::sync::Barrier;

use revkv::{Collection, Conflict, Error, Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    username: String,
    email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Account {
    balance: i64,
}

fn user(username: &str, email: &str) -> User {
    User {
        username: username.into(),
        email: email.into(),
    }
}

fn users(store: &Store) -> revkv::Result<Collection<User>> {
    store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .unique("username", |u: &User| u.username.clone())
        .open()
}

#[test]
fn an_error_aborts_everything_the_transaction_wrote() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    let accounts = store.collection::<Account>("accounts").open()?;
    let err = store
        .transaction(|tx| {
            tx.insert(&users, "u1", user("ann", "ann@example.com"))?;
            tx.insert(&accounts, "u1", Account { balance: 10 })?;
            Err::<(), _>(Conflict::rule("kyc_missing", "identity not verified").into())
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::Rule { ref code, .. }) if code == "kyc_missing")
    );
    assert_eq!(users.get("u1")?, None);
    assert_eq!(accounts.get("u1")?, None);
    assert_eq!(users.find_unique("email", "ann@example.com")?, None);
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn writes_across_collections_commit_together_and_read_their_own_writes() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    let accounts = store.collection::<Account>("accounts").open()?;
    let (user_version, seen) = store.transaction(|tx| {
        let version = tx.insert(&users, "u1", user("ann", "ann@example.com"))?;
        tx.insert(&accounts, "u1", Account { balance: 10 })?;
        let seen = tx.get(&users, "u1")?.map(|r| r.version);
        let by_email = tx.find_unique(&users, "email", "ann@example.com")?;
        assert_eq!(by_email.map(|r| r.version), Some(version));
        Ok((version, seen))
    })?;
    assert_eq!(seen, Some(user_version));
    assert_eq!(users.get("u1")?.map(|r| r.version), Some(user_version));
    assert_eq!(accounts.get("u1")?.map(|r| r.value.balance), Some(10));
    assert!(store.verify()?.is_clean());
    Ok(())
}

#[test]
fn unique_values_are_checked_against_the_transactions_own_writes() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    let err = store
        .transaction(|tx| {
            tx.insert(&users, "u1", user("ann", "same@example.com"))?;
            tx.insert(&users, "u2", user("bob", "same@example.com"))?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::Unique { ref holder, ref index, .. }) if holder == "u1" && index == "email"
    ));
    assert_eq!(users.iter().count(), 0);
    Ok(())
}

#[test]
fn two_records_can_swap_unique_values_in_one_transaction() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    let a = users.insert("a", user("alpha", "a@example.com"))?;
    let b = users.insert("b", user("beta", "b@example.com"))?;
    store.transaction(|tx| {
        let a = tx.update(&users, "a", a, user("temp", "a@example.com"))?;
        tx.update(&users, "b", b, user("alpha", "b@example.com"))?;
        tx.update(&users, "a", a, user("beta", "a@example.com"))?;
        Ok(())
    })?;
    assert_eq!(
        users
            .find_unique("username", "alpha")?
            .map(|r| r.value.email),
        Some("b@example.com".into())
    );
    assert_eq!(
        users
            .find_unique("username", "beta")?
            .map(|r| r.value.email),
        Some("a@example.com".into())
    );
    assert_eq!(users.find_unique("username", "temp")?, None);
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    Ok(())
}

#[test]
fn a_callers_own_conflict_is_returned_without_rerunning() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let accounts = store.collection::<Account>("accounts").open()?;
    let v1 = accounts.insert("acc", Account { balance: 1 })?;
    accounts.update("acc", v1, Account { balance: 2 })?;
    let runs = Cell::new(0);
    let err = store
        .transaction(|tx| {
            runs.set(runs.get() + 1);
            // A version the caller brought from outside (say an If-Match header) is stale.
            tx.update(&accounts, "acc", v1, Account { balance: 3 })
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::VersionMismatch { expected, .. }) if expected == v1)
    );
    assert_eq!(runs.get(), 1);
    Ok(())
}

#[test]
fn collections_of_another_store_are_refused() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let other = Store::temporary()?;
    let foreign = other.collection::<Account>("accounts").open()?;
    let err = store.transaction(|tx| tx.get(&foreign, "x")).unwrap_err();
    assert!(matches!(err, Error::ForeignCollection { .. }));
    Ok(())
}

#[test]
fn concurrent_transfers_conserve_the_total() -> revkv::Result<()> {
    const ACCOUNTS: usize = 20;
    let store = Store::temporary()?;
    let accounts = store.collection::<Account>("accounts").open()?;
    for i in 0..ACCOUNTS {
        accounts.insert(&format!("a{i}"), Account { balance: 100 })?;
    }
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for t in 0..8_usize {
            let (store, accounts, barrier) = (&store, &accounts, &barrier);
            s.spawn(move || {
                barrier.wait();
                let mut rng = fastrand::Rng::with_seed(t as u64);
                for _ in 0..300 {
                    let from = format!("a{}", rng.usize(..ACCOUNTS));
                    let to = format!("a{}", rng.usize(..ACCOUNTS));
                    let amount = rng.i64(1..=30);
                    let result = store.transaction(|tx| {
                        let src = tx.get(accounts, &from)?.expect("exists");
                        if src.value.balance < amount {
                            return Err(Conflict::rule("insufficient_funds", "not enough").into());
                        }
                        if from == to {
                            return Ok(());
                        }
                        let dst = tx.get(accounts, &to)?.expect("exists");
                        tx.update(
                            accounts,
                            &from,
                            src.version,
                            Account {
                                balance: src.value.balance - amount,
                            },
                        )?;
                        tx.update(
                            accounts,
                            &to,
                            dst.version,
                            Account {
                                balance: dst.value.balance + amount,
                            },
                        )?;
                        Ok(())
                    });
                    match result {
                        Ok(()) | Err(Error::Conflict(Conflict::Rule { .. })) => {}
                        Err(other) => panic!("transfer failed: {other}"),
                    }
                }
            });
        }
    });
    let balances: Vec<i64> = accounts
        .iter()
        .map(|r| r.map(|(_, a)| a.value.balance))
        .collect::<revkv::Result<_>>()?;
    assert_eq!(
        balances.iter().sum::<i64>(),
        100 * i64::try_from(ACCOUNTS).expect("small")
    );
    assert!(balances.iter().all(|b| *b >= 0), "{balances:?}");
    Ok(())
}

#[test]
fn read_only_transactions_see_a_consistent_state() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let accounts = store.collection::<Account>("accounts").open()?;
    accounts.insert("x", Account { balance: 50 })?;
    accounts.insert("y", Account { balance: 50 })?;
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            for _ in 0..500 {
                store
                    .transaction(|tx| {
                        let x = tx.get(&accounts, "x")?.expect("x");
                        let y = tx.get(&accounts, "y")?.expect("y");
                        tx.update(
                            &accounts,
                            "x",
                            x.version,
                            Account {
                                balance: x.value.balance - 1,
                            },
                        )?;
                        tx.update(
                            &accounts,
                            "y",
                            y.version,
                            Account {
                                balance: y.value.balance + 1,
                            },
                        )?;
                        Ok(())
                    })
                    .expect("transfer");
            }
        });
        s.spawn(|| {
            barrier.wait();
            for _ in 0..500 {
                let total = store
                    .transaction(|tx| {
                        let x = tx.get(&accounts, "x")?.expect("x").value.balance;
                        let y = tx.get(&accounts, "y")?.expect("y").value.balance;
                        Ok(x + y)
                    })
                    .expect("read");
                assert_eq!(total, 100, "a transaction saw half of a transfer");
            }
        });
    });
    Ok(())
}

#[test]
fn returned_versions_are_the_committed_ones() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let accounts = store.collection::<Account>("accounts").open()?;
    let versions: Vec<Version> = store.transaction(|tx| {
        Ok(vec![
            tx.insert(&accounts, "p", Account { balance: 1 })?,
            tx.insert(&accounts, "q", Account { balance: 2 })?,
        ])
    })?;
    assert_eq!(accounts.get("p")?.map(|r| r.version), Some(versions[0]));
    assert_eq!(accounts.get("q")?.map(|r| r.version), Some(versions[1]));
    Ok(())
}
