//! The in-memory model the `ops` target checks revkv against: plain maps, and the rules of
//! [`SPECS`] applied in revkv's documented order (expected version, then state machine, then
//! each unique index in declaration order).

use std::collections::BTreeMap;

use super::{Item, SPECS, Spec};
use revkv::{Conflict, Error, Version};

/// The records of both collections, by collection position and key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Model {
    pub(crate) records: [BTreeMap<String, (Version, Item)>; 2],
}

/// What a write requires of the record before it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    Absent,
    At(Version),
}

/// A refused call, reduced to what the model can predict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Version {
        expected: Version,
        current: Option<Version>,
    },
    Exists {
        current: Version,
    },
    Unique {
        index: String,
        value: String,
        holder: String,
    },
    Transition {
        from: String,
        to: String,
        allowed: Vec<String>,
    },
    Initial {
        state: String,
        allowed: Vec<String>,
    },
    Rule {
        code: String,
    },
    NotFound,
}

impl Refusal {
    /// The refusal `error` reports, or `None` if it is no refusal at all (a storage or input
    /// error, which the targets never provoke on purpose).
    pub(crate) fn of(error: &Error) -> Option<Self> {
        let conflict = match error {
            Error::NotFound { .. } => return Some(Self::NotFound),
            Error::Conflict(conflict) => conflict,
            _ => return None,
        };
        Some(match conflict {
            Conflict::VersionMismatch {
                expected, current, ..
            } => Self::Version {
                expected: *expected,
                current: *current,
            },
            Conflict::AlreadyExists { current, .. } => Self::Exists { current: *current },
            Conflict::Unique {
                index,
                value,
                holder,
                ..
            } => Self::Unique {
                index: index.clone(),
                value: value.clone(),
                holder: holder.clone(),
            },
            Conflict::Transition {
                from, to, allowed, ..
            } => Self::Transition {
                from: from.clone(),
                to: to.clone(),
                allowed: allowed.clone(),
            },
            Conflict::InitialState { state, allowed, .. } => Self::Initial {
                state: state.clone(),
                allowed: allowed.clone(),
            },
            Conflict::Rule { code, .. } => Self::Rule { code: code.clone() },
            // `BaseNotRetained`: only three-way merges raise it, and the targets make none.
            // (`Conflict` is non-exhaustive: a kind added later fails the model's checks.)
            _ => return None,
        })
    }
}

impl Model {
    pub(crate) fn get(&self, on: usize, key: &str) -> Option<&(Version, Item)> {
        self.records[on].get(key)
    }

    /// Whether writing `new` (`None`: deleting) over `key` with expectation `expect` succeeds,
    /// and if not, the refusal revkv must report.
    pub(crate) fn check(
        &self,
        on: usize,
        key: &str,
        expect: Expect,
        new: Option<&Item>,
    ) -> Result<(), Refusal> {
        let spec = &SPECS[on];
        let current = self.get(on, key);
        match (expect, current) {
            (Expect::Absent, None) => {}
            (Expect::At(expected), Some((version, _))) if expected == *version => {}
            (Expect::Absent, Some((version, _))) => {
                return Err(Refusal::Exists { current: *version });
            }
            (Expect::At(expected), current) => {
                return Err(Refusal::Version {
                    expected,
                    current: current.map(|(version, _)| *version),
                });
            }
        }
        let Some(new) = new else {
            return Ok(()); // deletes pass every rule
        };
        check_state(spec, current.map(|(_, old)| old), new)?;
        for &(index, value_of) in spec.uniques {
            let value = value_of(new);
            if current.is_some_and(|(_, old)| value_of(old) == value) {
                continue;
            }
            let holder = self.records[on]
                .iter()
                .find(|(other, (_, item))| *other != key && value_of(item) == value);
            if let Some((holder, _)) = holder {
                return Err(Refusal::Unique {
                    index: index.to_owned(),
                    value: value.to_owned(),
                    holder: holder.clone(),
                });
            }
        }
        Ok(())
    }

    /// Records a successful write.
    pub(crate) fn apply(&mut self, on: usize, key: &str, new: Option<(Version, Item)>) {
        match new {
            Some(record) => self.records[on].insert(key.to_owned(), record),
            None => self.records[on].remove(key),
        };
    }

    /// The key whose record holds `value` in index `index` of collection `on`.
    pub(crate) fn holder(&self, on: usize, index: usize, value: &str) -> Option<&str> {
        let (_, value_of) = SPECS[on].uniques[index];
        self.records[on]
            .iter()
            .find(|(_, (_, item))| value_of(item) == value)
            .map(|(key, _)| key.as_str())
    }

    /// How many unique-index entries an exact index holds: one per record and index.
    pub(crate) fn index_entries(&self) -> u64 {
        let entries: usize = SPECS
            .iter()
            .zip(&self.records)
            .map(|(spec, records)| spec.uniques.len() * records.len())
            .sum();
        entries as u64
    }

    pub(crate) fn record_count(&self) -> u64 {
        self.records.iter().map(BTreeMap::len).sum::<usize>() as u64
    }
}

/// The state-machine rule for writing `new` over `old` (`None`: creating).
fn check_state(spec: &Spec, old: Option<&Item>, new: &Item) -> Result<(), Refusal> {
    let sorted = |states: Vec<&str>| {
        let mut states: Vec<String> = states.into_iter().map(str::to_owned).collect();
        states.sort();
        states.dedup();
        states
    };
    match old {
        Some(old) => {
            let (from, to) = (old.state.as_str(), new.state.as_str());
            if from == to || spec.transitions.contains(&(from, to)) {
                return Ok(());
            }
            let allowed = spec.transitions.iter().filter(|(f, _)| *f == from);
            Err(Refusal::Transition {
                from: from.to_owned(),
                to: to.to_owned(),
                allowed: sorted(allowed.map(|(_, to)| *to).collect()),
            })
        }
        None => match spec.initial {
            Some(initial) if !initial.contains(&new.state.as_str()) => Err(Refusal::Initial {
                state: new.state.clone(),
                allowed: sorted(initial.to_vec()),
            }),
            _ => Ok(()),
        },
    }
}
