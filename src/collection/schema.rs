//! What a collection is (its keyspaces, unique indexes and state machine) and the checks that
//! turn a requested write into a [`Plan`] or a [`Conflict`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::history::{self, History};
use super::recent::Recent;
use super::view::View;
use crate::backend::Bytes;
use crate::codec::{self, EncodedRecord, RecordHeader};
use crate::conflict::Snapshot;
use crate::engine::{Keyspace, RecordChange, Write};
use crate::guard::StateMachine;
use crate::{Conflict, Error, Result, Transaction, Version, Versioned};

/// Size limits that writes are checked against before anything is stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_key_len: usize,
    pub(crate) max_value_len: usize,
}

impl Limits {
    /// Whether `key` may name a record of `collection`: not empty, and not too long.
    pub(crate) fn check_key(self, collection: &str, key: &str) -> Result<()> {
        if key.is_empty() {
            Err(Error::EmptyKey {
                collection: collection.to_owned(),
            })
        } else if key.len() > self.max_key_len {
            Err(Error::KeyTooLong {
                collection: collection.to_owned(),
                len: key.len(),
                max: self.max_key_len,
            })
        } else {
            Ok(())
        }
    }

    /// Whether a value of `len` encoded bytes fits the store, for `collection`/`key`.
    pub(crate) fn check_value(self, collection: &str, key: &str, len: usize) -> Result<()> {
        if len > self.max_value_len {
            return Err(Error::ValueTooLarge {
                collection: collection.to_owned(),
                key: key.to_owned(),
                len,
                max: self.max_value_len,
            });
        }
        Ok(())
    }
}

/// Computes an index value or a state from a record's value.
pub(crate) type Derive<T> = Box<dyn Fn(&T) -> String + Send + Sync>;

pub(crate) struct UniqueIndex<T> {
    pub(crate) name: String,
    pub(crate) keyspace: Keyspace,
    pub(crate) value_of: Derive<T>,
}

/// A non-unique index: one entry per record, keyed by the value it derives and its key
/// ([`codec::encode_index_entry`]), holding nothing.
pub(crate) struct ValueIndex<T> {
    pub(crate) name: String,
    pub(crate) keyspace: Keyspace,
    pub(crate) value_of: Derive<T>,
}

pub(crate) struct States<T> {
    pub(crate) machine: StateMachine,
    pub(crate) state_of: Derive<T>,
}

pub(crate) struct Schema<T> {
    pub(crate) name: String,
    pub(crate) records: Keyspace,
    pub(crate) indexes: Vec<UniqueIndex<T>>,
    pub(crate) value_indexes: Vec<ValueIndex<T>>,
    pub(crate) states: Option<States<T>>,
    pub(crate) history: Option<History>,
    /// Records by expiry time: `(µs since the epoch, BE) ++ key`, for the sweeper.
    pub(crate) expiry: Keyspace,
    pub(crate) on_expiry: Option<ExpiryHandler<T>>,
    /// The records last seen, where reads are round trips ([`Recent`]).
    pub(crate) recent: Option<Arc<Recent>>,
}

/// Runs in the transaction that removes an expired record, with its key and last value.
pub(crate) type ExpiryHandler<T> =
    Box<dyn Fn(&mut Transaction<'_>, &str, &T) -> Result<()> + Send + Sync>;

/// A record as read from the engine, header already checked.
pub(crate) struct Stored {
    pub(crate) header: RecordHeader,
    bytes: Bytes,
}

impl Stored {
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    fn payload(&self) -> &[u8] {
        self.bytes.get(self.header.len..).unwrap_or_default()
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::new(
            self.header.version,
            self.header.modified,
            self.header.expires,
            self.payload(),
        )
    }
}

/// What a write requires of the record before it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// The key must be free (insert).
    Absent,
    /// The record must exist at exactly this version (update, delete).
    Version(Version),
}

/// A value about to be written: encoded once, outside any lock, with its index values.
pub(crate) struct NewValue<'a, T> {
    pub(crate) value: &'a T,
    pub(crate) record: EncodedRecord,
    unique: Vec<String>,
    /// Its values in the non-unique indexes.
    listed: Vec<String>,
    ttl: Option<Duration>,
}

impl<T> Clone for NewValue<'_, T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value,
            record: self.record.clone(),
            unique: self.unique.clone(),
            listed: self.listed.clone(),
            ttl: self.ttl,
        }
    }
}

/// A checked write of one record: the record itself and the index entries it claims and frees.
pub(crate) struct Plan<'k> {
    pub(crate) key: &'k str,
    /// The record's bytes before the write, which the history keeps.
    previous: Option<&'k [u8]>,
    /// `None` deletes the record.
    pub(crate) record: Option<EncodedRecord>,
    /// `(index position, value)` pairs this record takes.
    pub(crate) claims: Vec<(usize, String)>,
    /// The index entry of every value it takes: the record's key, encoded.
    claim: Vec<u8>,
    /// `(index position, value)` pairs this record gives up.
    pub(crate) releases: Vec<(usize, String)>,
    /// `(non-unique index position, entry)` pairs this record enters and leaves.
    entered: Vec<(usize, Vec<u8>)>,
    left: Vec<(usize, Vec<u8>)>,
    /// The history key under which the version being replaced (`previous`) is kept, for a
    /// collection with a history.
    pub(crate) archive: Option<Vec<u8>>,
    ttl: Option<Duration>,
    /// The sweeper's entry for the new record, once stamped with an expiry time.
    pub(crate) expiry_entry: Option<Vec<u8>>,
}

impl<'k> Plan<'k> {
    /// A plan that writes nothing yet, to the record `key` that was `previous`.
    fn of(key: &'k str, previous: Option<&'k [u8]>, ttl: Option<Duration>) -> Self {
        Self {
            key,
            previous,
            record: None,
            claims: Vec::new(),
            claim: Vec::new(),
            releases: Vec::new(),
            entered: Vec::new(),
            left: Vec::new(),
            archive: None,
            ttl,
            expiry_entry: None,
        }
    }

    /// Fills in the new record's header; returns when it expires, if it does.
    pub(crate) fn stamp(&mut self, version: Version, modified: SystemTime) -> Option<SystemTime> {
        let expires = self.ttl.map(|ttl| modified + ttl);
        if let Some(record) = &mut self.record {
            record.stamp(version, modified, expires);
            self.expiry_entry = expires.map(|at| expiry_entry(at, self.key));
        }
        expires
    }
}

/// The sweeper's index entry for `key` expiring at `at`.
pub(crate) fn expiry_entry(at: SystemTime, key: &str) -> Vec<u8> {
    let mut entry = codec::micros(at).to_be_bytes().to_vec();
    entry.extend_from_slice(key.as_bytes());
    entry
}

impl<T: Serialize + DeserializeOwned> Schema<T> {
    pub(crate) fn location(&self, key: &str) -> String {
        format!("{}/{key}", self.name)
    }

    /// Whether writes must read the old value (to move index entries or check a transition).
    pub(crate) fn needs_old_value(&self) -> bool {
        !self.indexes.is_empty() || !self.value_indexes.is_empty() || self.states.is_some()
    }

    /// The value of `current` that [`Self::prepare`] checks a write against: decoded only
    /// where unique indexes or a state machine need it.
    pub(crate) fn old_value(&self, key: &str, current: Option<&Stored>) -> Result<Option<T>> {
        match current {
            Some(stored) if self.needs_old_value() => self.decode(key, stored).map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) fn check_key(&self, key: &str, limits: Limits) -> Result<()> {
        limits.check_key(&self.name, key)
    }

    /// Encodes `value` for `key` and computes its index values, checking every limit.
    pub(crate) fn new_value<'a>(
        &self,
        key: &str,
        value: &'a T,
        limits: Limits,
        ttl: Option<Duration>,
    ) -> Result<NewValue<'a, T>> {
        let record = EncodedRecord::new(value, ttl.is_some())
            .map_err(|e| Error::encode(e, self.location(key)))?;
        limits.check_value(&self.name, key, record.payload_len())?;
        let unique = self.unique_values(value);
        let listed: Vec<String> = (self.value_indexes.iter())
            .map(|i| (i.value_of)(value))
            .collect();
        let names = self.indexes.iter().map(|i| &i.name);
        let names = names.chain(self.value_indexes.iter().map(|i| &i.name));
        for (index, indexed) in names.zip(unique.iter().chain(&listed)) {
            if indexed.len() > limits.max_key_len {
                return Err(Error::IndexValueTooLong {
                    collection: self.name.clone(),
                    index: index.clone(),
                    len: indexed.len(),
                    max: limits.max_key_len,
                });
            }
        }
        Ok(NewValue {
            value,
            record,
            unique,
            listed,
            ttl,
        })
    }

    /// The position of the unique index called `name`.
    pub(crate) fn index_position(&self, name: &str) -> Result<usize> {
        self.indexes
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| self.unknown_index(name))
    }

    pub(crate) fn unknown_index(&self, name: &str) -> Error {
        Error::UnknownIndex {
            collection: self.name.clone(),
            index: name.to_owned(),
        }
    }

    /// The index entries `new` would claim: each unique index with the value's entry key.
    pub(crate) fn index_entries<'n>(
        &self,
        new: &'n NewValue<'_, T>,
    ) -> impl Iterator<Item = (&Keyspace, &'n [u8])> {
        let values = new.unique.iter().map(String::as_bytes);
        self.indexes.iter().map(|index| &index.keyspace).zip(values)
    }

    pub(crate) fn unique_values(&self, value: &T) -> Vec<String> {
        self.indexes.iter().map(|i| (i.value_of)(value)).collect()
    }

    pub(crate) fn read<'s>(&'s self, view: &mut dyn View<'s>, key: &str) -> Result<Option<Stored>> {
        view.read(&self.records, key.as_bytes())?
            .map(|bytes| self.parse(key, bytes))
            .transpose()
    }

    /// The record under `key` unless it has expired at the view's moment.
    pub(crate) fn read_live<'s>(
        &'s self,
        view: &mut dyn View<'s>,
        key: &str,
    ) -> Result<Option<Stored>> {
        let now = view.now();
        Ok(self.read(view, key)?.filter(|s| !s.header.expired(now)))
    }

    /// A record key as read from the engine.
    pub(crate) fn record_key(&self, key: Vec<u8>) -> Result<String> {
        String::from_utf8(key).map_err(|e| Error::Corrupt {
            location: format!("{}/{:?}", self.name, e.as_bytes()),
            reason: "the key is not UTF-8".into(),
        })
    }

    /// Checks the header of record bytes read from the engine.
    /// Remembers the record `key` as just read or written (`None`: absent), where the
    /// collection keeps what it saw ([`Recent`]).
    pub(crate) fn remember(&self, key: &str, bytes: Option<&Bytes>) {
        if let Some(recent) = &self.recent {
            recent.remember(key, bytes);
        }
    }

    /// The record `key` as this process last saw it ([`Recent`]), if that was at `version`;
    /// a guess only, so bytes that do not parse are no guess (the write reads them).
    pub(crate) fn seen_at(&self, key: &str, version: Version) -> Option<Stored> {
        let bytes = self.recent.as_ref()?.seen(key)?;
        let stored = self.parse(key, bytes).ok()?;
        (stored.header.version == version).then_some(stored)
    }

    pub(crate) fn parse(&self, key: &str, bytes: Bytes) -> Result<Stored> {
        let (header, _) =
            codec::decode_record(&bytes).map_err(|e| Error::decode(e, self.location(key)))?;
        Ok(Stored { header, bytes })
    }

    pub(crate) fn decode(&self, key: &str, stored: &Stored) -> Result<T> {
        codec::decode_payload(stored.payload()).map_err(|e| Error::decode(e, self.location(key)))
    }

    pub(crate) fn versioned(&self, key: &str, stored: &Stored) -> Result<Versioned<T>> {
        let value = self.decode(key, stored)?;
        let header = &stored.header;
        Ok(Versioned::new(
            header.version,
            value,
            header.modified,
            header.expires,
        ))
    }

    /// The record that holds `value` in index `index`, with its key, if any. An entry counts
    /// only if that record exists, has not expired and still derives the value: entries left
    /// behind by a crash between the index write and the record write hold nothing.
    pub(crate) fn holder<'s>(
        &'s self,
        view: &mut dyn View<'s>,
        index: usize,
        value: &str,
    ) -> Result<Option<(String, Stored)>> {
        let unique = &self.indexes[index];
        let Some(entry) = view.read(&unique.keyspace, value.as_bytes())? else {
            return Ok(None);
        };
        let holder = codec::decode_claim(&entry).map_err(|e| {
            Error::decode(
                e,
                format!("{}: index {} entry {value:?}", self.name, unique.name),
            )
        })?;
        let Some(stored) = self.read_live(view, holder)? else {
            return Ok(None); // no record, or an expired one: the value is free
        };
        let holds = (unique.value_of)(&self.decode(holder, &stored)?) == value;
        Ok(holds.then(|| (holder.to_owned(), stored)))
    }

    /// Checks a write of `key` against the record before it (`current`, as the view read it,
    /// and its value `old` as [`Self::old_value`] gives it) and returns what to store, or the
    /// conflict. The commit that stores it requires what the view read to be unchanged.
    pub(crate) fn prepare<'s, 'k>(
        &'s self,
        view: &mut dyn View<'s>,
        key: &'k str,
        expect: Expect,
        (current, old): (Option<&'k Stored>, Option<&T>),
        new: Option<NewValue<'_, T>>,
    ) -> Result<Plan<'k>> {
        self.check_expectation(key, expect, current)?;
        if let Some(states) = &self.states {
            self.check_states(states, key, current, old, new.as_ref())?;
        }
        let previous = current.map(|stored| &stored.bytes[..]);
        let mut change = Plan::of(key, previous, new.as_ref().and_then(|n| n.ttl));
        // An expired record's values may already belong to other records.
        let expired = current.is_some_and(|s| s.header.expired(view.now()));
        for (i, index) in self.indexes.iter().enumerate() {
            let old_value = old.map(|o| (index.value_of)(o));
            let new_value = new.as_ref().map(|n| &n.unique[i]);
            if old_value.as_ref() == new_value {
                continue;
            }
            if let Some(value) = new_value {
                if let Some((holder, _)) = self.holder(view, i, value)?
                    && holder != key
                {
                    return Err(Conflict::Unique {
                        collection: self.name.clone(),
                        key: key.to_owned(),
                        index: index.name.clone(),
                        value: value.clone(),
                        holder,
                    }
                    .into());
                }
                if change.claims.is_empty() {
                    change.claim = codec::encode_claim(key);
                }
                change.claims.push((i, value.clone()));
            }
            if let Some(value) = old_value
                && (!expired || self.claimed_by(view, i, &value, key)?)
            {
                change.releases.push((i, value));
            }
        }
        for (i, index) in self.value_indexes.iter().enumerate() {
            let old_value = old.map(|o| (index.value_of)(o));
            let new_value = new.as_ref().map(|n| &n.listed[i]);
            if old_value.as_ref() == new_value {
                continue;
            }
            if let Some(value) = new_value {
                change
                    .entered
                    .push((i, codec::encode_index_entry(value, key)));
            }
            if let Some(value) = old_value {
                change
                    .left
                    .push((i, codec::encode_index_entry(&value, key)));
            }
        }
        change.record = new.map(|n| n.record);
        if self.history.is_some()
            && let Some(stored) = current
        {
            change.archive = Some(history::entry_key(key, stored.header.version));
        }
        Ok(change)
    }

    /// Whether the entry for `value` in index `index` names `key`.
    fn claimed_by<'s>(
        &'s self,
        view: &mut dyn View<'s>,
        index: usize,
        value: &str,
        key: &str,
    ) -> Result<bool> {
        let entry = view.read(&self.indexes[index].keyspace, value.as_bytes())?;
        Ok(entry.as_deref().map(codec::decode_claim) == Some(Ok(key)))
    }

    pub(crate) fn check_expectation(
        &self,
        key: &str,
        expect: Expect,
        current: Option<&Stored>,
    ) -> Result<()> {
        let conflict = match (expect, current) {
            (Expect::Absent, None) => return Ok(()),
            (Expect::Version(expected), Some(stored)) if stored.header.version == expected => {
                return Ok(());
            }
            (Expect::Absent, Some(stored)) => Conflict::AlreadyExists {
                collection: self.name.clone(),
                key: key.to_owned(),
                current: stored.header.version,
                record: stored.snapshot(),
            },
            (Expect::Version(expected), stored) => Conflict::VersionMismatch {
                collection: self.name.clone(),
                key: key.to_owned(),
                expected,
                current: stored.map(|s| s.header.version),
                record: stored.map(Stored::snapshot),
            },
        };
        Err(conflict.into())
    }

    fn check_states(
        &self,
        states: &States<T>,
        key: &str,
        current: Option<&Stored>,
        old: Option<&T>,
        new: Option<&NewValue<'_, T>>,
    ) -> Result<()> {
        let Some(new) = new else {
            return Ok(()); // deletes are allowed in every state
        };
        let to = (states.state_of)(new.value);
        let conflict = if let (Some(old), Some(stored)) = (old, current) {
            let from = (states.state_of)(old);
            let Err(allowed) = states.machine.check_transition(&from, &to) else {
                return Ok(());
            };
            Conflict::Transition {
                collection: self.name.clone(),
                key: key.to_owned(),
                from,
                to,
                allowed,
                current: stored.header.version,
                record: stored.snapshot(),
            }
        } else {
            let Err(allowed) = states.machine.check_initial(&to) else {
                return Ok(());
            };
            Conflict::InitialState {
                collection: self.name.clone(),
                key: key.to_owned(),
                state: to,
                allowed,
            }
        };
        Err(conflict.into())
    }

    /// The single-key writes of `plan`, in the order that keeps a crash from leaving a visible
    /// half: index entries it claims or enters, the version it replaces (for the history) and
    /// its expiry entry first, then the record, then the index entries it frees or leaves. A
    /// crash at any point leaves at most entries that [`Self::holder`], queries and the
    /// sweeper do not count (their records do not derive their values), so the record and its
    /// indexes agree. `existed` tells the change feed an insert from an update.
    pub(crate) fn writes<'p>(
        &'p self,
        plan: &'p Plan<'_>,
        existed: bool,
        version: Version,
    ) -> Vec<Write<'p>> {
        let write = |keyspace, key, value| Write {
            keyspace,
            key,
            value,
            record: None,
        };
        let entries =
            plan.claims.len() + plan.releases.len() + plan.entered.len() + plan.left.len();
        let mut writes = Vec::with_capacity(1 + entries);
        for (i, value) in &plan.claims {
            let index = &self.indexes[*i].keyspace;
            writes.push(write(index, value.as_bytes(), Some(&plan.claim[..])));
        }
        for (i, entry) in &plan.entered {
            writes.push(write(&self.value_indexes[*i].keyspace, entry, Some(&[])));
        }
        if let (Some(history), Some(entry)) = (&self.history, &plan.archive) {
            writes.push(write(&history.keyspace, entry, plan.previous));
        }
        if let Some(entry) = &plan.expiry_entry {
            writes.push(write(&self.expiry, entry, Some(&[])));
        }
        writes.push(Write {
            record: Some(RecordChange { existed, version }),
            ..write(
                &self.records,
                plan.key.as_bytes(),
                plan.record.as_ref().map(EncodedRecord::bytes),
            )
        });
        for (i, value) in &plan.releases {
            writes.push(write(&self.indexes[*i].keyspace, value.as_bytes(), None));
        }
        for (i, entry) in &plan.left {
            writes.push(write(&self.value_indexes[*i].keyspace, entry, None));
        }
        writes
    }
}
