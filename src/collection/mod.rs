//! Collections: typed records under string keys, each with a version that only grows.

mod builder;
mod history;
mod index;
pub(crate) mod schema;

use std::any::Any;
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::schema::{Committed, Expect, NewValue, Schema, Stored};
use crate::backend::Entries;
use crate::guard::StateMachine;
use crate::locks::Held;
use crate::retry::Backoff;
use crate::verify::Report;
use crate::{Conflict, Error, Result, Store, Version, Versioned};

pub use self::builder::CollectionBuilder;
pub(crate) use self::history::History;

/// A named set of records of type `T`, opened with [`Store::collection`]. Cheap to clone.
///
/// Every write is a compare-and-swap against the record's [`Version`]; a write whose
/// expectation no longer holds fails with a [`Conflict`] that carries the current record.
pub struct Collection<T> {
    schema: Arc<Schema<T>>,
    store: Store,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Self {
            schema: Arc::clone(&self.schema),
            store: self.store.clone(),
        }
    }
}

impl<T> fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.schema.name)
            .finish_non_exhaustive()
    }
}

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn new(schema: Arc<Schema<T>>, store: Store) -> Self {
        Self { schema, store }
    }

    pub(crate) fn schema(&self) -> &Schema<T> {
        &self.schema
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The collection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// The record under `key`, or `None` if there is none.
    ///
    /// # Errors
    /// [`Error::EmptyKey`] / [`Error::KeyTooLong`] for a bad key, [`Error::Corrupt`] if the
    /// stored bytes do not decode as `T`, [`Error::Io`] on storage failure.
    pub fn get(&self, key: &str) -> Result<Option<Versioned<T>>> {
        self.schema.check_key(key, self.store.shared.limits)?;
        self.schema
            .read(&mut Committed, key)?
            .map(|stored| self.schema.versioned(key, &stored))
            .transpose()
    }

    /// Creates the record `key`; it must not exist yet. Returns its first version.
    ///
    /// # Errors
    /// [`Conflict::AlreadyExists`] if the key is taken, [`Conflict::Unique`] if a unique
    /// index already holds one of the value's index values, [`Conflict::InitialState`] if the
    /// state machine does not start in the value's state; input and storage errors as
    /// [`Collection::get`], plus [`Error::ValueTooLarge`].
    pub fn insert(&self, key: &str, value: impl Borrow<T>) -> Result<Version> {
        let shared = &self.store.shared;
        shared.observe(self.create(key, value.borrow()).and_then(|version| {
            shared.acknowledge()?;
            Ok(version)
        }))
    }

    /// Inserts many new records, as [`Collection::insert`] does one by one, but with one
    /// durability wait for the whole batch (in [`Durability::Immediate`] mode). Each record is
    /// written atomically; the batch as a whole is not: on the first error it stops, and the
    /// records before it stay. Use a transaction where all-or-nothing matters.
    ///
    /// Returns the version of each record, in order.
    ///
    /// # Errors
    /// As [`Collection::insert`], for the first record that fails.
    ///
    /// [`Durability::Immediate`]: crate::Durability::Immediate
    pub fn load<K, V>(&self, records: impl IntoIterator<Item = (K, V)>) -> Result<Vec<Version>>
    where
        K: AsRef<str>,
        V: Borrow<T>,
    {
        let shared = &self.store.shared;
        let versions = records
            .into_iter()
            .map(|(key, value)| self.create(key.as_ref(), value.borrow()))
            .collect::<Result<_>>();
        shared.observe(versions.and_then(|versions| {
            shared.acknowledge()?;
            Ok(versions)
        }))
    }

    /// Replaces the record `key` if it is still at version `expected`. Returns the new version.
    ///
    /// # Errors
    /// [`Conflict::VersionMismatch`] if the record is at another version or gone (`current`
    /// is then `None`), [`Conflict::Unique`] and [`Conflict::Transition`] as the collection
    /// declares; other errors as [`Collection::insert`].
    pub fn update(&self, key: &str, expected: Version, value: impl Borrow<T>) -> Result<Version> {
        let written = self.write(key, Expect::Version(expected), Some(value.borrow()));
        self.store.shared.observe(written.map(|(v, _)| v))
    }

    /// Deletes the record `key` if it is still at version `expected`, freeing its unique
    /// values. Its version is never issued again, so a later re-create starts above it.
    ///
    /// # Errors
    /// [`Conflict::VersionMismatch`] as [`Collection::update`]; storage errors.
    pub fn delete(&self, key: &str, expected: Version) -> Result<()> {
        let written = self.write(key, Expect::Version(expected), None);
        self.store.shared.observe(written.map(drop))
    }

    /// Read-modify-write: applies `change` to the current value and stores the result with a
    /// compare-and-swap, retrying (with jittered backoff, a bounded number of times) when
    /// another writer got there first. `change` may therefore run more than once.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the record does not exist; [`Conflict::VersionMismatch`] only
    /// when every attempt lost a race; rule conflicts (unique, transition) of the value
    /// `change` produced, which are not retried; other errors as [`Collection::update`].
    pub fn update_with<F>(&self, key: &str, mut change: F) -> Result<Versioned<T>>
    where
        F: FnMut(&T) -> T,
    {
        let shared = &self.store.shared;
        let mut backoff = Backoff::new();
        let result = loop {
            let current = match self.get(key) {
                Ok(Some(current)) => current,
                Ok(None) => break Err(self.not_found(key)),
                Err(e) => break Err(e),
            };
            let value = change(&current.value);
            match self.write(key, Expect::Version(current.version), Some(&value)) {
                Ok((version, modified)) => break Ok(Versioned::new(version, value, modified)),
                Err(Error::Conflict(Conflict::VersionMismatch { current: None, .. })) => {
                    break Err(self.not_found(key));
                }
                Err(Error::Conflict(Conflict::VersionMismatch { .. })) if backoff.wait() => {}
                Err(other) => {
                    if matches!(other, Error::Conflict(Conflict::VersionMismatch { .. })) {
                        shared.observer.update_with_exhausted();
                    }
                    break Err(other);
                }
            }
        };
        let now = shared.clock.now();
        shared
            .observer
            .update_with(&self.schema.name, key, backoff.retries(), now);
        shared.observe(result)
    }

    fn not_found(&self, key: &str) -> Error {
        Error::NotFound {
            collection: self.schema.name.clone(),
            key: key.to_owned(),
        }
    }

    /// The record whose unique index `index` holds `value`, if any.
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] if the collection declares no such index; storage errors.
    pub fn find_unique(&self, index: &str, value: &str) -> Result<Option<Versioned<T>>> {
        let position = self.schema.index_position(index)?;
        self.schema
            .holder(&mut Committed, position, value)?
            .map(|(key, stored)| self.schema.versioned(&key, &stored))
            .transpose()
    }

    /// All records, in key order.
    #[must_use]
    pub fn iter(&self) -> Iter<T> {
        self.scan_prefix("")
    }

    /// The records whose keys start with `prefix`, in key order.
    #[must_use]
    pub fn scan_prefix(&self, prefix: &str) -> Iter<T> {
        Iter {
            entries: self.schema.records.tree.scan(prefix.as_bytes()),
            schema: Arc::clone(&self.schema),
        }
    }

    /// An insert, not yet acknowledged. Without indexes or states there is nothing to check
    /// but the key being free, which the engine's insert-if-absent does in the same step.
    fn create(&self, key: &str, value: &T) -> Result<Version> {
        if !self.schema.indexes.is_empty() || self.schema.states.is_some() {
            return self
                .write_unacknowledged(key, Expect::Absent, Some(value))
                .map(|(v, _)| v);
        }
        let shared = &self.store.shared;
        self.schema.check_key(key, shared.limits)?;
        shared.check_writable()?;
        let mut new = self.schema.new_value(key, value, shared.limits)?;
        let locks = &shared.locks;
        let _held = locks.lock(self.schema.records.lock_id(locks, key.as_bytes()));
        let version = shared.sequence.next()?;
        new.record.stamp(version, shared.clock.now());
        let records = &self.schema.records.tree;
        loop {
            if shared.write_all(|| records.put_new(key.as_bytes(), new.record.bytes()))? {
                return Ok(version);
            }
            // Taken: the same conflict a checked insert reports, with the record it found.
            let current = self.schema.read(&mut Committed, key)?;
            self.schema
                .check_expectation(key, Expect::Absent, current.as_ref())?;
        }
    }

    /// One checked write of one record, acknowledged.
    fn write(&self, key: &str, expect: Expect, value: Option<&T>) -> Result<(Version, SystemTime)> {
        let written = self.write_unacknowledged(key, expect, value)?;
        self.store.shared.acknowledge()?;
        Ok(written)
    }

    /// One checked write of one record, under the locks of the key and of every unique value
    /// it takes or frees; durable only once acknowledged.
    fn write_unacknowledged(
        &self,
        key: &str,
        expect: Expect,
        value: Option<&T>,
    ) -> Result<(Version, SystemTime)> {
        let shared = &self.store.shared;
        self.schema.check_key(key, shared.limits)?;
        shared.check_writable()?;
        let new = value
            .map(|v| self.schema.new_value(key, v, shared.limits))
            .transpose()?;
        let (_held, current) = self.lock_record(key, new.as_ref())?;
        let mut change = self
            .schema
            .prepare(&mut Committed, key, expect, current.as_ref(), new)?;
        let version = shared.sequence.next()?;
        let modified = shared.clock.now();
        if let Some(record) = &mut change.record {
            record.stamp(version, modified);
        }
        self.schema.apply(shared, &change)?;
        Ok((version, modified))
    }

    /// Takes the locks a write of `key` needs and reads the record under them.
    fn lock_record(
        &self,
        key: &str,
        new: Option<&NewValue<'_, T>>,
    ) -> Result<(Held<'_>, Option<Stored>)> {
        let locks = &self.store.shared.locks;
        if self.schema.indexes.is_empty() {
            let held = locks.lock(self.schema.records.lock_id(locks, key.as_bytes()));
            return Ok((held, self.schema.read(&mut Committed, key)?));
        }
        loop {
            // The index values to free are known only from the record itself: read it, lock
            // everything it and the new value involve, then make sure it did not change.
            let before = self.schema.read(&mut Committed, key)?;
            let old = before
                .as_ref()
                .map(|stored| self.schema.decode(key, stored))
                .transpose()?;
            let held = locks.lock_all(self.schema.lock_ids(locks, key, old.as_ref(), new));
            let current = self.schema.read(&mut Committed, key)?;
            let version = |s: &Option<Stored>| s.as_ref().map(|s| s.header.version);
            if version(&current) == version(&before) {
                return Ok((held, current));
            }
        }
    }
}

/// What the store keeps of an open collection, whatever its value type.
pub(crate) trait Registered: Send + Sync {
    /// What the collection was declared with, to refuse a different second declaration.
    fn declaration(&self) -> Declaration;
    fn verify_into(&self, report: &mut Report) -> Result<()>;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// The comparable part of a collection's declaration.
#[derive(Debug, PartialEq)]
pub(crate) struct Declaration {
    indexes: Vec<String>,
    states: Option<StateMachine>,
}

impl<T> Registered for Schema<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn declaration(&self) -> Declaration {
        Declaration {
            indexes: self.indexes.iter().map(|i| i.name.clone()).collect(),
            states: self.states.as_ref().map(|s| s.machine.clone()),
        }
    }

    fn verify_into(&self, report: &mut Report) -> Result<()> {
        Schema::verify_into(self, report)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Iterator over `(key, record)` pairs of a collection, from [`Collection::iter`] or
/// [`Collection::scan_prefix`]. It reads the collection as it changes: each record is current
/// when it is reached, not as of the call that created the iterator.
pub struct Iter<T> {
    entries: Entries,
    schema: Arc<Schema<T>>,
}

impl<T: Serialize + DeserializeOwned> Iterator for Iter<T> {
    type Item = Result<(String, Versioned<T>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, bytes) = match self.entries.next()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        Some(self.schema.record_key(key).and_then(|key| {
            let stored = self.schema.parse(&key, bytes)?;
            let record = self.schema.versioned(&key, &stored)?;
            Ok((key, record))
        }))
    }
}

impl<T> IntoIterator for &Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Item = Result<(String, Versioned<T>)>;
    type IntoIter = Iter<T>;

    fn into_iter(self) -> Iter<T> {
        self.iter()
    }
}

impl<T> fmt::Debug for Iter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("collection", &self.schema.name)
            .finish_non_exhaustive()
    }
}
