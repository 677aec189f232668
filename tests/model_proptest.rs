//! Random sequences of insert, update, delete, get and `update_with` against an in-memory model:
//! every result, version order and conflict must match.

use std::collections::BTreeMap;

use proptest::prelude::*;
use revkv::{Conflict, Error, Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    body: String,
}

/// Which version a write presents as its expectation.
#[derive(Clone, Debug)]
enum Expected {
    /// The key's current version (or an arbitrary one if it has none).
    Current,
    /// A version this key had earlier (stale), if it had any.
    Earlier(usize),
    /// Any number at all.
    Arbitrary(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, String),
    Update(usize, Expected, String),
    Delete(usize, Expected),
    Get(usize),
    Append(usize, char),
}

const KEYS: [&str; 4] = ["a", "b", "c", "d"];

fn expected() -> impl Strategy<Value = Expected> {
    prop_oneof![
        3 => Just(Expected::Current),
        1 => any::<usize>().prop_map(Expected::Earlier),
        1 => any::<u64>().prop_map(Expected::Arbitrary),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        (key.clone(), "[a-z]{0,8}").prop_map(|(k, b)| Op::Insert(k, b)),
        (key.clone(), expected(), "[a-z]{0,8}").prop_map(|(k, e, b)| Op::Update(k, e, b)),
        (key.clone(), expected()).prop_map(|(k, e)| Op::Delete(k, e)),
        key.clone().prop_map(Op::Get),
        (key, proptest::char::range('a', 'z')).prop_map(|(k, c)| Op::Append(k, c)),
    ]
}

#[derive(Default)]
struct Model {
    records: BTreeMap<&'static str, (Version, String)>,
    /// Every version each key ever had.
    history: BTreeMap<&'static str, Vec<Version>>,
    /// The highest version returned so far, by any call.
    highest: Option<Version>,
}

impl Model {
    fn pick(&self, key: &'static str, expected: &Expected) -> Version {
        let current = self.records.get(key).map(|(v, _)| *v);
        match expected {
            Expected::Current => current.unwrap_or(Version::new(7)),
            Expected::Earlier(i) => {
                let earlier = self.history.get(key).map(Vec::as_slice).unwrap_or_default();
                if earlier.is_empty() {
                    Version::new(3)
                } else {
                    earlier[i % earlier.len()]
                }
            }
            Expected::Arbitrary(n) => Version::new(*n),
        }
    }

    /// A successful write returned `version`: it must be above everything issued before.
    fn issued(&mut self, key: &'static str, version: Version) -> Result<(), TestCaseError> {
        prop_assert!(
            self.highest.is_none_or(|h| version > h),
            "{version} not above {:?}",
            self.highest
        );
        self.highest = Some(version);
        self.history.entry(key).or_default().push(version);
        Ok(())
    }

    fn mismatch(&self, key: &str, expected: Version, err: &Error) -> Result<(), TestCaseError> {
        let current = self.records.get(key).map(|(v, _)| *v);
        match err {
            Error::Conflict(
                conflict @ Conflict::VersionMismatch {
                    expected: e,
                    current: c,
                    ..
                },
            ) => {
                prop_assert_eq!(*e, expected);
                prop_assert_eq!(*c, current);
                let carried = conflict.current_record::<Doc>().expect("decodes");
                prop_assert_eq!(
                    carried.map(|r| (r.version, r.value.body)),
                    self.records.get(key).cloned()
                );
            }
            other => prop_assert!(false, "expected VersionMismatch, got {other:?}"),
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = Store::temporary().expect("store");
    let docs = store.collection::<Doc>("docs").open().expect("collection");
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Insert(k, body) => {
                let key = KEYS[k];
                let result = docs.insert(key, Doc { body: body.clone() });
                match model.records.get(key) {
                    None => {
                        let version = result.expect("insert of a free key");
                        model.issued(key, version)?;
                        model.records.insert(key, (version, body));
                    }
                    Some((current, _)) => {
                        let refused = matches!(
                            result,
                            Err(Error::Conflict(Conflict::AlreadyExists { current: c, .. })) if c == *current
                        );
                        prop_assert!(refused, "insert of a taken key: {:?}", result);
                    }
                }
            }
            Op::Update(k, expected, body) => {
                let key = KEYS[k];
                let expected = model.pick(key, &expected);
                let result = docs.update(key, expected, Doc { body: body.clone() });
                if model.records.get(key).is_some_and(|(v, _)| *v == expected) {
                    let version = result.expect("update at the current version");
                    model.issued(key, version)?;
                    model.records.insert(key, (version, body));
                } else {
                    model.mismatch(key, expected, &result.expect_err("stale update"))?;
                }
            }
            Op::Delete(k, expected) => {
                let key = KEYS[k];
                let expected = model.pick(key, &expected);
                let result = docs.delete(key, expected);
                if model.records.get(key).is_some_and(|(v, _)| *v == expected) {
                    result.expect("delete at the current version");
                    model.records.remove(key);
                } else {
                    model.mismatch(key, expected, &result.expect_err("stale delete"))?;
                }
            }
            Op::Get(k) => {
                let key = KEYS[k];
                let got = docs
                    .get(key)
                    .expect("get")
                    .map(|r| (r.version, r.value.body));
                prop_assert_eq!(got, model.records.get(key).cloned());
            }
            Op::Append(k, c) => {
                let key = KEYS[k];
                let result = docs.update_with(key, |d: &Doc| Doc {
                    body: format!("{}{c}", d.body),
                });
                match model.records.get(key).cloned() {
                    None => {
                        let not_found = matches!(result, Err(Error::NotFound { .. }));
                        prop_assert!(not_found, "update_with of an absent key: {:?}", result);
                    }
                    Some((_, body)) => {
                        let after = result.expect("update_with of an existing key");
                        prop_assert_eq!(&after.value.body, &format!("{body}{c}"));
                        model.issued(key, after.version)?;
                        model.records.insert(key, (after.version, after.value.body));
                    }
                }
            }
        }
    }
    let stored: Vec<_> = docs
        .iter()
        .map(|r| r.map(|(k, v)| (k, v.version, v.value.body)))
        .collect::<Result<_, _>>()
        .expect("iterates");
    let modelled: Vec<_> = model
        .records
        .iter()
        .map(|(k, (v, b))| ((*k).to_owned(), *v, b.clone()))
        .collect();
    prop_assert_eq!(stored, modelled);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn collection_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
