//! Random operations over a collection with two unique indexes and a state machine, against an
//! in-memory model; `verify()` must stay clean after every step.

use std::collections::BTreeMap;

use proptest::prelude::*;
use revkv::{Collection, Conflict, Error, Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Account {
    name: String,
    email: String,
    status: String,
}

const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const NAMES: [&str; 3] = ["ann", "bob", "cy"];
const EMAILS: [&str; 3] = ["a@x", "b@x", "c@x"];
const STATES: [&str; 4] = ["new", "active", "closed", "bogus"];
const TRANSITIONS: [(&str, &str); 3] = [("new", "active"), ("active", "closed"), ("new", "closed")];

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, usize, usize, usize),
    /// Update with the current version (`true`) or a stale/arbitrary one.
    Update(usize, bool, usize, usize, usize),
    Delete(usize, bool),
    /// Insert two records in one transaction.
    InsertPair(usize, usize, usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    let n = 0..NAMES.len();
    let e = 0..EMAILS.len();
    let s = 0..STATES.len();
    prop_oneof![
        (k.clone(), n.clone(), e.clone(), s.clone())
            .prop_map(|(k, n, e, s)| Op::Insert(k, n, e, s)),
        (
            k.clone(),
            prop::bool::weighted(0.8),
            n.clone(),
            e.clone(),
            s
        )
            .prop_map(|(k, c, n, e, s)| Op::Update(k, c, n, e, s)),
        (k.clone(), prop::bool::weighted(0.8)).prop_map(|(k, c)| Op::Delete(k, c)),
        (k.clone(), k, n, e).prop_map(|(a, b, n, e)| Op::InsertPair(a, b, n, e)),
    ]
}

fn account(n: usize, e: usize, s: usize) -> Account {
    Account {
        name: NAMES[n].into(),
        email: EMAILS[e].into(),
        status: STATES[s].into(),
    }
}

type Model = BTreeMap<String, (Version, Account)>;

/// The conflict the model predicts for writing `new` over `key` (checks in revkv's order:
/// expectation, state machine, then the indexes in declaration order).
fn predict(
    model: &Model,
    key: &str,
    expected: Option<Version>,
    new: Option<&Account>,
) -> Option<&'static str> {
    let current = model.get(key);
    match (expected, current) {
        (None, Some(_)) => return Some("exists"),
        (Some(_), None) => return Some("version"),
        (Some(e), Some((v, _))) if e != *v => return Some("version"),
        _ => {}
    }
    let new = new?;
    match current {
        None if new.status != "new" => return Some("initial"),
        Some((_, old))
            if old.status != new.status
                && !TRANSITIONS.contains(&(old.status.as_str(), new.status.as_str())) =>
        {
            return Some("transition");
        }
        _ => {}
    }
    let taken =
        |f: fn(&Account) -> &str| model.iter().any(|(k, (_, a))| k != key && f(a) == f(new));
    if taken(|a| &a.email) {
        return Some("unique:email");
    }
    if taken(|a| &a.name) {
        return Some("unique:name");
    }
    None
}

fn kind(err: &Error) -> String {
    match err {
        Error::Conflict(Conflict::AlreadyExists { .. }) => "exists".into(),
        Error::Conflict(Conflict::VersionMismatch { .. }) => "version".into(),
        Error::Conflict(Conflict::InitialState { .. }) => "initial".into(),
        Error::Conflict(Conflict::Transition { .. }) => "transition".into(),
        Error::Conflict(Conflict::Unique { index, .. }) => format!("unique:{index}"),
        other => format!("unexpected {other}"),
    }
}

fn accounts(store: &Store) -> Collection<Account> {
    store
        .collection::<Account>("accounts")
        .unique("email", |a: &Account| a.email.clone())
        .unique("name", |a: &Account| a.name.clone())
        .states(|a: &Account| a.status.clone(), TRANSITIONS)
        .initial_states(["new"])
        .open()
        .expect("collection")
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = Store::temporary().expect("store");
    let accounts = accounts(&store);
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Insert(k, name, email, state) => {
                let new = account(name, email, state);
                let predicted = predict(&model, KEYS[k], None, Some(&new));
                match accounts.insert(KEYS[k], &new) {
                    Ok(version) => {
                        prop_assert_eq!(predicted, None);
                        model.insert(KEYS[k].into(), (version, new));
                    }
                    Err(err) => prop_assert_eq!(predicted.map(str::to_owned), Some(kind(&err))),
                }
            }
            Op::Update(k, current, name, email, state) => {
                let expected = match (current, model.get(KEYS[k])) {
                    (true, Some((v, _))) => *v,
                    _ => Version::new(5),
                };
                let new = account(name, email, state);
                let predicted = predict(&model, KEYS[k], Some(expected), Some(&new));
                match accounts.update(KEYS[k], expected, &new) {
                    Ok(version) => {
                        prop_assert_eq!(predicted, None);
                        model.insert(KEYS[k].into(), (version, new));
                    }
                    Err(err) => prop_assert_eq!(predicted.map(str::to_owned), Some(kind(&err))),
                }
            }
            Op::Delete(k, current) => {
                let expected = match (current, model.get(KEYS[k])) {
                    (true, Some((v, _))) => *v,
                    _ => Version::new(5),
                };
                let predicted = predict(&model, KEYS[k], Some(expected), None);
                match accounts.delete(KEYS[k], expected) {
                    Ok(()) => {
                        prop_assert_eq!(predicted, None);
                        model.remove(KEYS[k]);
                    }
                    Err(err) => prop_assert_eq!(predicted.map(str::to_owned), Some(kind(&err))),
                }
            }
            Op::InsertPair(a, b, n, e) => {
                let first = account(n, e, 0);
                let second = account((n + 1) % NAMES.len(), (e + 1) % EMAILS.len(), 0);
                let mut after = model.clone();
                let predicted = predict(&after, KEYS[a], None, Some(&first)).or_else(|| {
                    after.insert(KEYS[a].into(), (Version::new(0), first.clone()));
                    predict(&after, KEYS[b], None, Some(&second))
                });
                let result = store.transaction(|tx| {
                    let va = tx.insert(&accounts, KEYS[a], &first)?;
                    let vb = tx.insert(&accounts, KEYS[b], &second)?;
                    Ok((va, vb))
                });
                match result {
                    Ok((va, vb)) => {
                        prop_assert_eq!(predicted, None);
                        model.insert(KEYS[a].into(), (va, first));
                        model.insert(KEYS[b].into(), (vb, second));
                    }
                    Err(err) => prop_assert_eq!(predicted.map(str::to_owned), Some(kind(&err))),
                }
            }
        }
        let report = store.verify().expect("verify");
        prop_assert!(report.is_clean(), "{}", report);
        let stored: Model = accounts
            .iter()
            .map(|r| r.map(|(k, v)| (k, (v.version, v.value))))
            .collect::<revkv::Result<_>>()
            .expect("iterates");
        prop_assert_eq!(&stored, &model);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn indexed_collection_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
