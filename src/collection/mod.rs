//! Collections: typed records under string keys, each with a version that only grows.

mod builder;
mod combine;
mod expiry;
pub(crate) mod history;
mod index;
pub(crate) mod query;
pub(crate) mod recent;
pub(crate) mod schema;
pub(crate) mod view;

use std::any::Any;
use std::borrow::Borrow;
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::schema::{Expect, Schema, Stored};
use self::view::{Recording, settle};
use crate::backend::{Bytes, Entries};
use crate::blocking::block_on;
use crate::engine::{Commit, Route};
use crate::guard::StateMachine;
use crate::locks;
use crate::retry::Backoff;
use crate::verify::Report;
use crate::{Conflict, Error, Result, Store, Version, Versioned};

pub use self::builder::CollectionBuilder;
pub(crate) use self::combine::Combiners;
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
        block_on(pin!(self.fetch(key)))
    }

    /// Creates the record `key`; it must not exist yet. Returns its first version.
    ///
    /// # Errors
    /// [`Conflict::AlreadyExists`] if the key is taken, [`Conflict::Unique`] if a unique
    /// index already holds one of the value's index values, [`Conflict::InitialState`] if the
    /// state machine does not start in the value's state; input and storage errors as
    /// [`Collection::get`], plus [`Error::ValueTooLarge`].
    pub fn insert(&self, key: &str, value: impl Borrow<T>) -> Result<Version> {
        self.insert_observed(key, value.borrow(), None)
    }

    /// [`Self::create`], observed, for the public inserts.
    fn insert_observed(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<Version> {
        // The write's own future, not the async API's that wraps it: routing through that
        // counted 1.6% more instructions per write under callgrind.
        let written = self.checked_write(key, Expect::Absent, Some(value), ttl, Route::Logged);
        self.store
            .shared
            .observe(block_on(pin!(written)).map(|w| w.version))
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
            .map(|(key, value)| {
                let created = self.checked_write(
                    key.as_ref(),
                    Expect::Absent,
                    Some(value.borrow()),
                    None,
                    Route::Direct,
                );
                block_on(created).map(|w| w.version)
            })
            .collect::<Result<_>>()
            .and_then(|versions| {
                shared.engine.make_direct_writes_durable()?;
                Ok(versions)
            });
        shared.observe(versions)
    }

    /// Replaces the record `key` if it is still at version `expected`. Returns the new version.
    ///
    /// # Errors
    /// [`Conflict::VersionMismatch`] if the record is at another version or gone (`current`
    /// is then `None`), [`Conflict::Unique`] and [`Conflict::Transition`] as the collection
    /// declares; other errors as [`Collection::insert`].
    pub fn update(&self, key: &str, expected: Version, value: impl Borrow<T>) -> Result<Version> {
        let written = self.write(key, Expect::Version(expected), Some(value.borrow()), None);
        self.store.shared.observe(written.map(|w| w.version))
    }

    /// [`Collection::insert`], returning the record as stored: with its version, the
    /// modification time a read returns (an answer's `Last-Modified`, without a read that
    /// could pick up someone else's later write) and its expiry time.
    ///
    /// ```
    /// let store = revkv::Store::temporary()?;
    /// let notes = store.collection::<String>("notes").open()?;
    /// let stored = notes.insert_versioned("n1", "hello".to_owned())?;
    /// assert_eq!(notes.get("n1")?, Some(stored));
    /// # Ok::<(), revkv::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Collection::insert`].
    pub fn insert_versioned(&self, key: &str, value: T) -> Result<Versioned<T>> {
        block_on(pin!(self.write_versioned(key, Expect::Absent, value)))
    }

    /// [`Collection::update`], returning the record as stored, as
    /// [`Collection::insert_versioned`] does.
    ///
    /// # Errors
    /// As [`Collection::update`].
    pub fn update_versioned(&self, key: &str, expected: Version, value: T) -> Result<Versioned<T>> {
        let expect = Expect::Version(expected);
        block_on(pin!(self.write_versioned(key, expect, value)))
    }

    /// Deletes the record `key` if it is still at version `expected`, freeing its unique
    /// values. Its version is never issued again, so a later re-create starts above it.
    ///
    /// # Errors
    /// [`Conflict::VersionMismatch`] as [`Collection::update`]; storage errors.
    pub fn delete(&self, key: &str, expected: Version) -> Result<()> {
        let written = self.write(key, Expect::Version(expected), None, None);
        self.store.shared.observe(written.map(drop))
    }

    /// Read-modify-write: applies `change` to the current value and stores the result with a
    /// compare-and-swap. Callers of `update_with` on one key take turns, so they never
    /// invalidate each other's reads; when a plain write gets in between, it retries (with
    /// jittered backoff, a bounded number of times). `change` may therefore run more than once,
    /// and it should be quick: others wait for their turn while it runs.
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
        if self.combines_writes() && !locks::holding_turn() {
            match self.update_with_combined(key, &mut change) {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {} // an expiring record: the ordinary path below
                Err(e) => return shared.observe(Err(e)),
            }
        }
        let turns = &shared.turns;
        let _turn = turns.take_blocking(self.schema.records.lock_id(turns.table(), key.as_bytes()));
        block_on(self.update_in_turn(key, change))
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
        block_on(self.find(index, value))
    }

    /// One page of the records `query` selects; see [`Query`](crate::Query).
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] for an index the collection does not declare,
    /// [`Error::InvalidPageToken`] for a token of another query or none at all,
    /// [`Error::InvalidQuery`] for a limit of zero; storage errors.
    pub fn query(&self, query: &crate::Query) -> Result<crate::Page<T>> {
        block_on(self.query_async(query))
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
            now: self.store.shared.clock.now(),
        }
    }

    /// One checked write of one record, durable when it returns in
    /// [`Durability::Immediate`](crate::Durability::Immediate) mode.
    pub(crate) fn write(
        &self,
        key: &str,
        expect: Expect,
        value: Option<&T>,
        ttl: Option<Duration>,
    ) -> Result<Written> {
        // Pinned here, so that the write's large future is never moved.
        block_on(pin!(self.checked_write(
            key,
            expect,
            value,
            ttl,
            Route::Logged
        )))
    }
}

/// The operations themselves, as futures: the async API awaits them, the blocking API runs
/// them with [`block_on`]. They await only the engine, so on the local engine they complete
/// at their first poll, but for a durable write's group commit.
impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// [`Collection::get`].
    pub(crate) async fn fetch(&self, key: &str) -> Result<Option<Versioned<T>>> {
        let shared = &self.store.shared;
        self.schema.check_key(key, shared.limits)?;
        let engine = shared.engine.as_ref();
        let mut view = Recording::at(shared.clock.now(), engine);
        let stored = settle(&mut view, engine, |view| self.schema.read_live(view, key)).await??;
        self.schema
            .remember(key, stored.as_ref().map(Stored::bytes));
        stored
            .map(|stored| self.schema.versioned(key, &stored))
            .transpose()
    }

    /// [`Collection::find_unique`].
    pub(crate) async fn find(&self, index: &str, value: &str) -> Result<Option<Versioned<T>>> {
        let position = self.schema.index_position(index)?;
        let shared = &self.store.shared;
        let engine = shared.engine.as_ref();
        let mut view = Recording::at(shared.clock.now(), engine);
        settle(&mut view, engine, |view| {
            self.schema.holder(view, position, value)
        })
        .await??
        .map(|(key, stored)| self.schema.versioned(&key, &stored))
        .transpose()
    }

    /// [`Collection::query`].
    pub(crate) async fn query_async(&self, query: &crate::Query) -> Result<crate::Page<T>> {
        let shared = &self.store.shared;
        let engine = shared.engine.as_ref();
        let mut view = query::Reads::at(shared.clock.now(), engine);
        self.schema.query(engine, &mut view, query).await
    }

    /// [`Collection::insert`], and the expiring insert.
    pub(crate) async fn create_observed(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Version> {
        let written = self.checked_write(key, Expect::Absent, Some(value), ttl, Route::Logged);
        self.store.shared.observe(written.await.map(|w| w.version))
    }

    /// [`Collection::update`], and the expiring update.
    pub(crate) async fn replace(
        &self,
        key: &str,
        expected: Version,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Version> {
        let expect = Expect::Version(expected);
        let written = self.checked_write(key, expect, Some(value), ttl, Route::Logged);
        self.store.shared.observe(written.await.map(|w| w.version))
    }

    /// [`Collection::insert_versioned`] and [`Collection::update_versioned`].
    pub(crate) async fn write_versioned(
        &self,
        key: &str,
        expect: Expect,
        value: T,
    ) -> Result<Versioned<T>> {
        let written = self.checked_write(key, expect, Some(&value), None, Route::Logged);
        let written = written.await;
        self.store
            .shared
            .observe(written.map(|w| w.into_versioned(value)))
    }

    /// [`Collection::delete`].
    pub(crate) async fn remove(&self, key: &str, expected: Version) -> Result<()> {
        let expect = Expect::Version(expected);
        let written = self.checked_write(key, expect, None, None, Route::Logged);
        self.store.shared.observe(written.await.map(drop))
    }

    /// [`Collection::update_with`] for a task, which waits for its turn without blocking.
    pub(crate) async fn update_with_async<F>(&self, key: &str, change: F) -> Result<Versioned<T>>
    where
        F: FnMut(&T) -> T,
    {
        let turns = &self.store.shared.turns;
        let _turn = turns
            .take(self.schema.records.lock_id(turns.table(), key.as_bytes()))
            .await;
        self.update_in_turn(key, change).await
    }

    /// [`Collection::update_with`] once the caller holds the key's turn: read, change, write,
    /// and again while a plain write gets in between.
    pub(crate) async fn update_in_turn<F>(&self, key: &str, mut change: F) -> Result<Versioned<T>>
    where
        F: FnMut(&T) -> T,
    {
        let shared = &self.store.shared;
        let mut backoff = Backoff::new();
        let result = loop {
            let current = match self.fetch(key).await {
                Ok(Some(current)) => current,
                Ok(None) => break Err(self.not_found(key)),
                Err(e) => break Err(e),
            };
            // A blocking `update_with` inside `change` must not queue for the turn it is in.
            let value = locks::with_turn_held(|| change(&current.value));
            let expect = Expect::Version(current.version);
            let written = self.checked_write(key, expect, Some(&value), None, Route::Logged);
            match written.await {
                Ok(written) => break Ok(written.into_versioned(value)),
                Err(Error::Conflict(Conflict::VersionMismatch { current: None, .. })) => {
                    break Err(self.not_found(key));
                }
                Err(lost @ Error::Conflict(Conflict::VersionMismatch { .. })) => {
                    if !backoff.wait_async().await {
                        shared.observer.update_with_exhausted();
                        break Err(lost);
                    }
                }
                Err(other) => break Err(other),
            }
        };
        shared
            .observer
            .update_with(&self.schema.name, key, backoff.retries(), || {
                shared.clock.now()
            });
        shared.observe(result)
    }

    /// One checked write of one record: reads what the checks need, decides, and commits on
    /// condition that all it read is unchanged, reading again when it has changed. On the
    /// [`Route::Logged`] route it is durable when it returns in Immediate mode. An expired
    /// record in the way is swept first, so its expiry handler runs before anything replaces
    /// it.
    pub(crate) async fn checked_write(
        &self,
        key: &str,
        expect: Expect,
        value: Option<&T>,
        ttl: Option<Duration>,
        route: Route,
    ) -> Result<Written> {
        let shared = &self.store.shared;
        let engine = shared.engine.as_ref();
        self.schema.check_key(key, shared.limits)?;
        let new = value
            .map(|v| self.schema.new_value(key, v, shared.limits, ttl))
            .transpose()?;
        let mut now = shared.clock.now();
        // An insert first guesses its key and unique values free without reading them, and a
        // write of a version this process has seen guesses the record as it saw it; the
        // commit checks the guess.
        let mut guess_free = matches!(expect, Expect::Absent);
        let mut guess_seen = match expect {
            Expect::Version(version) => self.schema.seen_at(key, version),
            Expect::Absent => None,
        };
        loop {
            let guessed = std::mem::take(&mut guess_free) || guess_seen.is_some();
            let mut view = Recording::at(now, engine);
            let current = if let Some(seen) = guess_seen.take() {
                let bytes = Some(seen.bytes().clone());
                view.assume(&self.schema.records, key.as_bytes(), bytes);
                Some(seen)
            } else if guessed {
                view.assume(&self.schema.records, key.as_bytes(), None);
                for (index, value) in new.iter().flat_map(|n| self.schema.index_entries(n)) {
                    view.assume(index, value, None);
                }
                None
            } else {
                let current =
                    settle(&mut view, engine, |view| self.schema.read(view, key)).await??;
                self.schema
                    .remember(key, current.as_ref().map(Stored::bytes));
                current
            };
            if current.as_ref().is_some_and(|s| s.header.expired(now)) {
                // Boxed: a rare path, whose transaction would otherwise swell every write's
                // future (and the copying of it).
                if !Box::pin(self.expire(key)).await? {
                    now = shared.clock.now(); // the clock went back: it is live again
                }
                continue;
            }
            let old = self.schema.old_value(key, current.as_ref())?;
            let before = (current.as_ref(), old.as_ref());
            let decided = settle(&mut view, engine, |view| {
                self.schema.prepare(view, key, expect, before, new.clone())
            })
            .await?;
            let mut plan = match decided {
                Ok(plan) => plan,
                // A conflict counts only if it is on what the engine holds: not on a guess,
                // nor on reads of several keys that have changed since.
                Err(Error::Conflict(_)) if guessed => continue,
                Err(Error::Conflict(conflict)) => {
                    if view.read_several() && !engine.commit(&view.unchanged(route)).await? {
                        continue;
                    }
                    return Err(conflict.into());
                }
                Err(other) => return Err(other),
            };
            let version = engine
                .next_version(current.as_ref().map(|s| s.header.version))
                .await?;
            let expires = plan.stamp(version, now);
            let commit = Commit {
                writes: self.schema.writes(&plan, current.is_some(), version),
                ..view.unchanged(route)
            };
            if engine.commit(&commit).await? {
                self.remember_written(&commit, key);
                if let (Some(history), Some(_)) = (&self.schema.history, &plan.archive) {
                    history.prune(engine, key, now)?;
                }
                return Ok(Written {
                    version,
                    modified: now,
                    expires,
                });
            }
        }
    }
}

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Remembers the record `key` as `commit` wrote it, where the collection keeps what it
    /// saw (the search is skipped elsewhere).
    fn remember_written(&self, commit: &Commit<'_>, key: &str) {
        if self.schema.recent.is_none() {
            return;
        }
        let records = &self.schema.records;
        let written = commit
            .writes
            .iter()
            .find(|w| w.keyspace.name == records.name && w.key == key.as_bytes());
        if let Some(write) = written {
            self.schema
                .remember(key, write.value.map(Bytes::from).as_ref());
        }
    }
}

/// What a write stored.
pub(crate) struct Written {
    pub(crate) version: Version,
    pub(crate) modified: SystemTime,
    pub(crate) expires: Option<SystemTime>,
}

impl Written {
    pub(crate) fn into_versioned<T>(self, value: T) -> Versioned<T> {
        Versioned::new(self.version, value, self.modified, self.expires)
    }
}

/// What the store keeps of an open collection, whatever its value type.
pub(crate) trait Registered: Send + Sync {
    /// What the collection was declared with, to refuse a different second declaration.
    fn declaration(&self) -> Declaration;
    fn verify_into(&self, report: &mut Report, now: SystemTime) -> Result<()>;
    /// Sweeps the records that have expired by now; returns how many.
    fn sweep_expired(self: Arc<Self>, store: &Store) -> Result<usize>;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// The comparable part of a collection's declaration.
#[derive(Debug, PartialEq)]
pub(crate) struct Declaration {
    indexes: Vec<String>,
    value_indexes: Vec<String>,
    states: Option<StateMachine>,
}

impl<T> Registered for Schema<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn declaration(&self) -> Declaration {
        Declaration {
            indexes: self.indexes.iter().map(|i| i.name.clone()).collect(),
            value_indexes: self.value_indexes.iter().map(|i| i.name.clone()).collect(),
            states: self.states.as_ref().map(|s| s.machine.clone()),
        }
    }

    fn verify_into(&self, report: &mut Report, now: SystemTime) -> Result<()> {
        Schema::verify_into(self, report, now)
    }

    fn sweep_expired(self: Arc<Self>, store: &Store) -> Result<usize> {
        Collection::new(self, store.clone()).sweep_due(store.shared.clock.now())
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
    /// Records expired at this moment are skipped.
    now: SystemTime,
}

impl<T: Serialize + DeserializeOwned> Iterator for Iter<T> {
    type Item = Result<(String, Versioned<T>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, bytes) = match self.entries.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let record = self.schema.record_key(key).and_then(|key| {
                let stored = self.schema.parse(&key, bytes)?;
                Ok((key, stored))
            });
            match record {
                Ok((_, stored)) if stored.header.expired(self.now) => {}
                Ok((key, stored)) => {
                    return Some(self.schema.versioned(&key, &stored).map(|r| (key, r)));
                }
                Err(e) => return Some(Err(e)),
            }
        }
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
