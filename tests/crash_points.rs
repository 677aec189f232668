//! Crashes at every single-key write of a workload: after each, the reopened store must hold
//! every acknowledged write and no half of the write in flight.
//!
//! The crash is simulated exactly (`StoreBuilder::crash_after_writes`): the engine keeps every
//! write before the crash point and none after, the worst case for a protocol made of several
//! writes. Random real crashes are `crash_recovery.rs`.
#![cfg(feature = "fault-injection")]

use std::collections::BTreeMap;
use std::path::Path;

use revkv::{Collection, Conflict, Error, Query, Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Account {
    balance: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Transfer {
    from: String,
    to: String,
    amount: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    username: String,
    email: String,
    status: String,
}

struct Collections {
    accounts: Collection<Account>,
    transfers: Collection<Transfer>,
    users: Collection<User>,
}

fn collections(store: &Store) -> revkv::Result<Collections> {
    Ok(Collections {
        accounts: store.collection("accounts").open()?,
        transfers: store.collection("transfers").open()?,
        users: store
            .collection::<User>("users")
            .unique("username", |u: &User| u.username.clone())
            .unique("email", |u: &User| u.email.to_lowercase())
            .index("status", |u: &User| u.status.clone())
            .states(
                |u: &User| u.status.clone(),
                [("new", "active"), ("active", "closed")],
            )
            .initial_states(["new"])
            .open()?,
    })
}

fn user(name: &str, email: &str, status: &str) -> User {
    User {
        username: name.into(),
        email: email.into(),
        status: status.into(),
    }
}

/// What the workload saw acknowledged before it crashed.
#[derive(Default, Debug)]
struct Acked {
    transfers: Vec<String>,
    /// Each user's last acknowledged version (`None`: deleted).
    users: BTreeMap<String, Option<Version>>,
    /// Users the write in flight at the crash was changing, and whether it deletes them.
    in_flight: Vec<&'static str>,
    deleting: bool,
}

impl Acked {
    /// Runs one user write; on success records what it acknowledged.
    fn user_write<T>(
        &mut self,
        (keys, deleting): (&[&'static str], bool),
        write: impl FnOnce() -> revkv::Result<T>,
        acknowledged: impl FnOnce(&T) -> Vec<(&'static str, Option<Version>)>,
    ) -> revkv::Result<T> {
        self.in_flight = keys.to_vec();
        self.deleting = deleting;
        let result = write()?;
        for (key, version) in acknowledged(&result) {
            self.users.insert(key.to_owned(), version);
        }
        self.in_flight.clear();
        Ok(result)
    }
}

/// A fixed sequence of transactions and indexed writes; stops at the first storage error.
fn workload(store: &Store, acked: &mut Acked) -> revkv::Result<()> {
    let c = collections(store)?;
    store.transaction(|tx| {
        for i in 0..4 {
            tx.insert(&c.accounts, &format!("a{i}"), Account { balance: 100 })?;
        }
        Ok(())
    })?;
    acked.transfers.push("opening".into());
    for (n, (from, to, amount)) in [(0, 1, 30), (1, 2, 50), (3, 0, 10), (2, 3, 70)]
        .into_iter()
        .enumerate()
    {
        let id = format!("t{n}");
        store.transaction(|tx| {
            let (from, to) = (format!("a{from}"), format!("a{to}"));
            let a = tx.get(&c.accounts, &from)?.expect("account");
            let b = tx.get(&c.accounts, &to)?.expect("account");
            tx.update(
                &c.accounts,
                &from,
                a.version,
                Account {
                    balance: a.value.balance - amount,
                },
            )?;
            tx.update(
                &c.accounts,
                &to,
                b.version,
                Account {
                    balance: b.value.balance + amount,
                },
            )?;
            tx.insert(&c.transfers, &id, Transfer { from, to, amount })?;
            Ok(())
        })?;
        acked.transfers.push(id);
    }
    let users = &c.users;
    let ann = acked.user_write(
        (&["u1"], false),
        || users.insert("u1", user("ann", "Ann@x", "new")),
        |v| vec![("u1", Some(*v))],
    )?;
    let bob = acked.user_write(
        (&["u2"], false),
        || users.insert("u2", user("bob", "bob@x", "new")),
        |v| vec![("u2", Some(*v))],
    )?;
    // A unique conflict must not write anything.
    match users.insert("u3", user("ann", "ann@X", "new")) {
        Err(Error::Conflict(Conflict::Unique { .. })) => {}
        other => return other.map(drop),
    }
    let ann = acked.user_write(
        (&["u1"], false),
        || users.update("u1", ann, user("anna", "anna@x", "active")),
        |v| vec![("u1", Some(*v))],
    )?;
    let bob = acked.user_write(
        (&["u2"], false),
        || users.update("u2", bob, user("ann", "ann@x", "active")),
        |v| vec![("u2", Some(*v))],
    )?;
    acked.user_write(
        (&["u1"], true),
        || users.delete("u1", ann),
        |()| vec![("u1", None)],
    )?;
    acked.user_write(
        (&["u2", "u4"], false),
        || {
            store.transaction(|tx| {
                let v2 = tx.update(users, "u2", bob, user("cy", "cy@x", "closed"))?;
                let v4 = tx.insert(users, "u4", user("ann", "ann@x", "new"))?;
                Ok((v2, v4))
            })
        },
        |(v2, v4)| vec![("u2", Some(*v2)), ("u4", Some(*v4))],
    )?;
    Ok(())
}

fn check(dir: &Path, acked: &Acked) -> revkv::Result<()> {
    let store = Store::open(dir)?;
    let c = collections(&store)?;
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    // A query by the non-unique index returns exactly the records in that state: an entry and
    // its record are never torn apart.
    for status in ["new", "active", "closed"] {
        let found: Vec<String> = (c.users.query(&Query::index("status", status))?.records)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let holding: Vec<String> = (c.users.iter())
            .filter(|r| r.as_ref().map_or(true, |(_, u)| u.value.status == status))
            .map(|r| r.map(|(key, _)| key))
            .collect::<revkv::Result<_>>()?;
        assert_eq!(found, holding, "{status}");
    }

    let accounts: BTreeMap<String, i64> = c
        .accounts
        .iter()
        .map(|r| r.map(|(k, a)| (k, a.value.balance)))
        .collect::<revkv::Result<_>>()?;
    if accounts.is_empty() {
        assert!(
            acked.transfers.is_empty(),
            "the opening transaction was lost"
        );
        return Ok(());
    }
    assert_eq!(
        accounts.len(),
        4,
        "the opening transaction was torn: {accounts:?}"
    );
    let mut expected: BTreeMap<String, i64> = accounts.keys().map(|k| (k.clone(), 100)).collect();
    for transfer in &c.transfers {
        let (_, t) = transfer?;
        *expected.get_mut(&t.value.from).expect("account") -= t.value.amount;
        *expected.get_mut(&t.value.to).expect("account") += t.value.amount;
    }
    assert_eq!(accounts, expected, "a transfer was torn");
    for id in acked.transfers.iter().filter(|id| *id != "opening") {
        assert!(
            c.transfers.get(id)?.is_some(),
            "acknowledged transfer {id} lost"
        );
    }
    for key in ["u1", "u2", "u3", "u4"] {
        let stored = c.users.get(key)?.map(|r| r.version);
        let acknowledged = acked.users.get(key).copied().flatten();
        if acked.in_flight.contains(&key) {
            // The write in flight is wholly there or not at all; verify() checked the indexes.
            let landed = if acked.deleting {
                stored.is_none()
            } else {
                stored > acknowledged
            };
            assert!(
                stored == acknowledged || landed,
                "{key}: {stored:?} after acknowledged {acknowledged:?}"
            );
        } else {
            assert_eq!(stored, acknowledged, "{key}: acknowledged state not kept");
        }
    }
    Ok(())
}

#[test]
fn a_crash_at_any_write_leaves_all_or_nothing() -> revkv::Result<()> {
    let mut crash_point = 0;
    loop {
        let dir = tempfile::tempdir()?;
        let mut acked = Acked::default();
        let finished = match Store::builder()
            .path(dir.path())
            .crash_after_writes(crash_point)
            .open()
        {
            Ok(store) => workload(&store, &mut acked).is_ok(),
            Err(_) => false, // crashed while opening
        };
        check(dir.path(), &acked).unwrap_or_else(|e| panic!("crash point {crash_point}: {e}"));
        if finished {
            assert!(
                crash_point > 40,
                "the workload made suspiciously few writes"
            );
            return Ok(());
        }
        crash_point += 1;
    }
}
