//! Atomic transactions across records and collections.
//!
//! A transaction runs optimistically: its reads go to the committed state (and are remembered),
//! its writes are checked at once, exactly as on a collection, and staged. It commits them
//! with [`Engine::commit`](crate::engine::Engine::commit), requiring everything it read
//! to be unchanged (else it runs the caller's closure again), which applies them all or none,
//! across crashes too. One driver ([`Store::run_transaction`]) runs a transaction for both
//! APIs: the blocking [`Transaction`] and the async
//! [`AsyncTransaction`](crate::AsyncTransaction) hold the same state.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Bytes, KeyRange};
use crate::blocking::block_on;
use crate::collection::query::QueryView;
use crate::collection::recent::Recent;
use crate::collection::schema::{Expect, Plan, Schema, expiry_entry};
use crate::collection::view::{Settling, View, settle};
use crate::collection::{Collection, History};
use crate::engine::{Commit, Compare, Keyspace, RangeRead, RecordChange, Route, Write};
use crate::retry::{Backoff, MAX_ATTEMPTS};
use crate::store::Shared;
use crate::{Error, Page, Query, Result, Store, Version, Versioned};

/// A transaction in progress, handed to the closure of [`Store::transaction`].
///
/// Its methods behave as the same methods of [`Collection`] and raise the same conflicts,
/// against the state the transaction has seen plus its own writes. Nothing it writes is
/// visible to anyone else until the closure returns `Ok` and the transaction commits.
pub struct Transaction<'s> {
    shared: &'s Arc<Shared>,
    /// What the transaction read from the committed state, by keyspace and key.
    reads: HashMap<Slot, Read>,
    /// The ranges its queries read, which its commit requires no key to have entered.
    ranges: Vec<RangeRead>,
    /// What it will write, by keyspace and key; the last write of a key wins.
    writes: BTreeMap<Slot, Staged>,
    /// Histories that grow by this transaction, to trim once it has committed.
    histories: Vec<(History, String)>,
    /// Records taken as this process last saw them instead of read (see `Recent`), and
    /// records written, for collections that keep what they saw.
    guessed: Vec<(Arc<Recent>, String)>,
    written: Vec<(Arc<Recent>, Slot)>,
    /// Keys a pass read that are not read yet (see [`Self::settle`]).
    missing: Vec<(Keyspace, Vec<u8>)>,
    /// Whether a pass reads the keyspace at once, the engine's reads being no round trips.
    reads_at_once: bool,
    modified: SystemTime,
}

/// A keyspace's name and a key in it.
type Slot = (Arc<str>, Vec<u8>);

struct Read {
    keyspace: Keyspace,
    seen: Option<Bytes>,
}

struct Staged {
    keyspace: Keyspace,
    value: Option<Vec<u8>>,
    /// Set for the write of a record: what the change feed shows of it.
    record: Option<RecordChange>,
}

impl Store {
    /// Runs `body` as one atomic transaction across any records and collections of this
    /// store, and returns what it returns.
    ///
    /// Either every write of the transaction becomes visible at once, or none does: the first
    /// error returned by `body` aborts it, and a crash at any point leaves all or nothing.
    /// Transactions are serializable. When something the transaction read changes before it
    /// commits, `body` runs again on fresh data (so it may run more than once and should have
    /// no other side effects); a conflict `body` returns is returned as it is, after checking
    /// that it was not caused by such a change.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Item { stock: u32 }
    /// #[derive(Serialize, Deserialize)]
    /// struct Order { sku: String }
    ///
    /// let store = revkv::Store::temporary()?;
    /// let items = store.collection::<Item>("items").open()?;
    /// let orders = store.collection::<Order>("orders").open()?;
    /// items.insert("sku-1", Item { stock: 1 })?;
    ///
    /// let buy = |order_id: &str| {
    ///     store.transaction(|tx| {
    ///         let item = tx.get(&items, "sku-1")?.expect("exists");
    ///         if item.value.stock == 0 {
    ///             return Err(revkv::Conflict::rule("out_of_stock", "sku-1 is sold out").into());
    ///         }
    ///         tx.update(&items, "sku-1", item.version, Item { stock: item.value.stock - 1 })?;
    ///         tx.insert(&orders, order_id, Order { sku: "sku-1".into() })?;
    ///         Ok(())
    ///     })
    /// };
    /// buy("o-1")?;
    /// let sold_out = buy("o-2").unwrap_err();
    /// assert_eq!(sold_out.to_string(), "out_of_stock: sku-1 is sold out");
    /// assert!(orders.get("o-2")?.is_none());
    /// # Ok::<(), revkv::Error>(())
    /// ```
    ///
    /// # Errors
    /// Whatever `body` returns; [`Error::Contention`] when it lost the race to commit more
    /// times than retries allow; storage errors.
    pub fn transaction<R, F>(&self, mut body: F) -> Result<R>
    where
        F: FnMut(&mut Transaction<'_>) -> Result<R>,
    {
        // What the run that commits returned; outside the futures, which must be `Send`.
        let mut output = None;
        let run = self.run_transaction::<Transaction<'_>, _, _>(|tx| {
            let ran = body(tx).map(|value| output = Some(value));
            Box::pin(std::future::ready(ran))
        });
        block_on(run)?;
        output.ok_or_else(|| Error::Storage("a transaction committed without a result".into()))
    }

    /// Runs `body` as a transaction until it commits, fails on a consistent state, or loses
    /// too many races; for both APIs, whose handle `H` `body` gets.
    pub(crate) async fn run_transaction<'s, H, R, F>(&'s self, mut body: F) -> Result<R>
    where
        H: Handle<'s>,
        F: FnMut(&mut H) -> BoxFuture<'_, Result<R>>,
    {
        let shared = &self.shared;
        let mut backoff = Backoff::new();
        let result = loop {
            let mut handle = H::from(Transaction::begin(shared));
            let outcome = body(&mut handle).await;
            let tx = handle.into();
            match outcome {
                Ok(value) => match tx.commit().await {
                    Ok(true) => break Ok(value),
                    Ok(false) => {}
                    Err(e) => break Err(e),
                },
                Err(Error::Conflict(conflict)) => {
                    // Only a conflict seen on a consistent state is the caller's to handle.
                    match shared.engine.commit(&tx.unchanged(Vec::new())).await {
                        Ok(true) => break Err(conflict.into()),
                        Ok(false) => tx.forget_guesses(),
                        Err(e) => break Err(e),
                    }
                }
                Err(other) => break Err(other),
            }
            shared.observer.transaction_rerun();
            if !backoff.wait_async().await {
                break Err(Error::Contention {
                    attempts: MAX_ATTEMPTS,
                });
            }
        };
        shared.observe(result)
    }
}

/// What the body of a transaction works with: a [`Transaction`] for the blocking API, an
/// [`AsyncTransaction`](crate::AsyncTransaction) for the async one.
pub(crate) trait Handle<'s>: From<Transaction<'s>> + Into<Transaction<'s>> {}

impl<'s, H: From<Transaction<'s>> + Into<Transaction<'s>>> Handle<'s> for H {}

impl<'s> Transaction<'s> {
    fn begin(shared: &'s Arc<Shared>) -> Self {
        Self {
            shared,
            reads: HashMap::new(),
            ranges: Vec::new(),
            writes: BTreeMap::new(),
            histories: Vec::new(),
            guessed: Vec::new(),
            written: Vec::new(),
            missing: Vec::new(),
            reads_at_once: !shared.engine.reads_are_round_trips(),
            modified: shared.clock.now(),
        }
    }
}

impl Transaction<'_> {
    /// The record under `key` as this transaction sees it.
    ///
    /// # Errors
    /// As [`Collection::get`], plus [`Error::ForeignCollection`].
    pub fn get<T>(&mut self, collection: &Collection<T>, key: &str) -> Result<Option<Versioned<T>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        block_on(self.fetch(collection, key))
    }

    /// The record whose unique index `index` holds `value`, as this transaction sees it.
    ///
    /// # Errors
    /// As [`Collection::find_unique`], plus [`Error::ForeignCollection`].
    pub fn find_unique<T>(
        &mut self,
        collection: &Collection<T>,
        index: &str,
        value: &str,
    ) -> Result<Option<Versioned<T>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        block_on(self.find(collection, index, value))
    }

    /// One page of the records `query` selects in `collection`, as this transaction sees them
    /// (its own writes included), as [`Collection::query`].
    ///
    /// The transaction commits only if the page is still what `query` would return then: no
    /// record it returned changed, and no record entered what it covered (the range up to its
    /// last record, or to the range's end on the last page). No phantoms: two transactions
    /// that each insert an order only if a query finds none cannot both commit.
    ///
    /// # Errors
    /// As [`Collection::query`], plus [`Error::ForeignCollection`].
    pub fn query<T>(&mut self, collection: &Collection<T>, query: &Query) -> Result<Page<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        block_on(self.query_async(collection, query))
    }

    /// [`Transaction::query`].
    pub(crate) async fn query_async<T>(
        &mut self,
        collection: &Collection<T>,
        query: &Query,
    ) -> Result<Page<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let schema = self.schema_of(collection)?;
        let engine = self.shared.engine.as_ref();
        schema.query(engine, self, query).await
    }

    /// Creates `key`, as [`Collection::insert`]. Returns the version it will have.
    ///
    /// # Errors
    /// As [`Collection::insert`], plus [`Error::ForeignCollection`].
    pub fn insert<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
        value: impl Borrow<T>,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        block_on(self.stage(collection, key, Expect::Absent, Some(value.borrow()), None))
    }

    /// Replaces `key` if it is at `expected`, as [`Collection::update`]. Returns the version
    /// it will have.
    ///
    /// # Errors
    /// As [`Collection::update`], plus [`Error::ForeignCollection`].
    pub fn update<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
        expected: Version,
        value: impl Borrow<T>,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        block_on(self.stage(collection, key, Expect::Version(expected), value, None))
    }

    /// Deletes `key` if it is at `expected`, as [`Collection::delete`].
    ///
    /// # Errors
    /// As [`Collection::delete`], plus [`Error::ForeignCollection`].
    pub fn delete<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
        expected: Version,
    ) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        block_on(self.stage(collection, key, Expect::Version(expected), None, None)).map(drop)
    }

    fn schema_of<'c, T>(&self, collection: &'c Collection<T>) -> Result<&'c Schema<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        if Arc::ptr_eq(&collection.store().shared, self.shared) {
            Ok(collection.schema())
        } else {
            Err(Error::ForeignCollection {
                collection: collection.name().to_owned(),
            })
        }
    }

    /// Creates `key` expiring `ttl` from the transaction's start, as
    /// [`Collection::insert_expiring`].
    ///
    /// # Errors
    /// As [`Collection::insert`], plus [`Error::ForeignCollection`].
    pub fn insert_expiring<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
        value: impl Borrow<T>,
        ttl: Duration,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        block_on(self.stage(collection, key, Expect::Absent, value, Some(ttl)))
    }

    /// Replaces `key` if it is at `expected`, expiring `ttl` from the transaction's start, as
    /// [`Collection::update_expiring`].
    ///
    /// # Errors
    /// As [`Collection::update`], plus [`Error::ForeignCollection`].
    pub fn update_expiring<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
        expected: Version,
        value: impl Borrow<T>,
        ttl: Duration,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        block_on(self.stage(collection, key, Expect::Version(expected), value, Some(ttl)))
    }

    /// Runs `pass` until it reads nothing this transaction has not read (see [`settle`]).
    async fn settle<R>(&mut self, pass: impl FnMut(&mut Self) -> R) -> Result<R> {
        let shared = self.shared;
        settle(self, shared.engine.as_ref(), pass).await
    }

    /// [`Transaction::get`].
    pub(crate) async fn fetch<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
    ) -> Result<Option<Versioned<T>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let schema = self.schema_of(collection)?;
        schema.check_key(key, self.shared.limits)?;
        self.settle(|tx| schema.read_live(tx, key))
            .await??
            .map(|stored| schema.versioned(key, &stored))
            .transpose()
    }

    /// [`Transaction::find_unique`].
    pub(crate) async fn find<T>(
        &mut self,
        collection: &Collection<T>,
        index: &str,
        value: &str,
    ) -> Result<Option<Versioned<T>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let schema = self.schema_of(collection)?;
        let position = schema.index_position(index)?;
        self.settle(|tx| schema.holder(tx, position, value))
            .await??
            .map(|(key, stored)| schema.versioned(&key, &stored))
            .transpose()
    }

    /// Removes `key` if it has expired, running the collection's expiry handler in this
    /// transaction; whether it did.
    pub(crate) async fn expire<T>(&mut self, collection: &Collection<T>, key: &str) -> Result<bool>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let schema = self.schema_of(collection)?;
        let Some(current) = self.settle(|tx| schema.read(tx, key)).await?? else {
            return Ok(false);
        };
        let Some(expires) = current.header.expires.filter(|at| *at <= self.modified) else {
            return Ok(false);
        };
        let value = schema.decode(key, &current)?;
        let expected = Expect::Version(current.header.version);
        let old = (Some(&current), Some(&value));
        let mut change = self
            .settle(|tx| schema.prepare(tx, key, expected, old, None))
            .await??;
        let floor = Some(current.header.version);
        let version = self.shared.engine.next_version(floor).await?;
        change.stamp(version, self.modified);
        self.stage_change(schema, &change, true, version);
        self.stage_write(&schema.expiry, expiry_entry(expires, key), None, None);
        if let Some(handler) = &schema.on_expiry {
            handler(self, key, &value)?;
        }
        Ok(true)
    }

    /// A write of `key`, staged: [`Transaction::insert`], [`Transaction::update`] and the rest.
    pub(crate) async fn stage<T>(
        &mut self,
        collection: &Collection<T>,
        key: &str,
        expect: Expect,
        value: Option<&T>,
        ttl: Option<Duration>,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let schema = self.schema_of(collection)?;
        let limits = self.shared.limits;
        schema.check_key(key, limits)?;
        let new = value
            .map(|v| schema.new_value(key, v, limits, ttl))
            .transpose()?;
        if let Expect::Version(version) = expect {
            self.guess(schema, key, version);
        }
        // An expired record in the way is swept in this transaction first.
        self.expire(collection, key).await?;
        let current = self.settle(|tx| schema.read(tx, key)).await??;
        let existed = current.is_some();
        let old = schema.old_value(key, current.as_ref())?;
        let before = (current.as_ref(), old.as_ref());
        let mut change = self
            .settle(|tx| schema.prepare(tx, key, expect, before, new.clone()))
            .await??;
        let floor = current.as_ref().map(|s| s.header.version);
        let version = self.shared.engine.next_version(floor).await?;
        change.stamp(version, self.modified);
        self.stage_change(schema, &change, existed, version);
        Ok(version)
    }

    /// Stages the single-key writes of `change`, as [`Schema::writes`] lists them.
    fn stage_change<T>(
        &mut self,
        schema: &Schema<T>,
        change: &Plan<'_>,
        existed: bool,
        version: Version,
    ) where
        T: Serialize + DeserializeOwned,
    {
        if let (Some(history), Some(_)) = (&schema.history, &change.archive) {
            self.histories
                .push((history.clone(), change.key.to_owned()));
        }
        if let Some(recent) = &schema.recent {
            let slot = (
                Arc::clone(&schema.records.name),
                change.key.as_bytes().to_vec(),
            );
            self.written.push((Arc::clone(recent), slot));
        }
        for write in schema.writes(change, existed, version) {
            let value = write.value.map(<[u8]>::to_vec);
            self.stage_write(write.keyspace, write.key.to_vec(), value, write.record);
        }
    }

    /// Stages one single-key write; a later write of the same key replaces it (a record
    /// keeps whether it existed before the transaction).
    fn stage_write(
        &mut self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        record: Option<RecordChange>,
    ) {
        let id = (Arc::clone(&keyspace.name), key);
        let record = record.map(|mut write| {
            if let Some(earlier) = self.writes.get(&id).and_then(|s| s.record) {
                write.existed = earlier.existed;
            }
            write
        });
        self.writes.insert(
            id,
            Staged {
                keyspace: keyspace.clone(),
                value,
                record,
            },
        );
    }

    /// Takes the record `key` to be as this process last saw it, if that was at `version` and
    /// the transaction has not read or written it yet: its commit then compares those bytes
    /// like anything it read, without a read of its own (on etcd, a round trip).
    fn guess<T>(&mut self, schema: &Schema<T>, key: &str, version: Version)
    where
        T: Serialize + DeserializeOwned,
    {
        let Some(recent) = &schema.recent else {
            return;
        };
        let slot = (Arc::clone(&schema.records.name), key.as_bytes().to_vec());
        if self.reads.contains_key(&slot) || self.writes.contains_key(&slot) {
            return;
        }
        let Some(seen) = schema.seen_at(key, version) else {
            return;
        };
        let read = Read {
            keyspace: schema.records.clone(),
            seen: Some(seen.bytes().clone()),
        };
        self.reads.insert(slot, read);
        self.guessed.push((Arc::clone(recent), key.to_owned()));
    }

    /// Forgets what this transaction guessed, so that it reads those records when it runs
    /// again rather than guess the same stale bytes.
    fn forget_guesses(&self) {
        for (recent, key) in &self.guessed {
            recent.remember(key, None);
        }
    }

    /// A commit of `writes` that requires everything the transaction read to be unchanged.
    fn unchanged<'t>(&'t self, writes: Vec<Write<'t>>) -> Commit<'t> {
        let compares = self.reads.iter().map(|((_, key), read)| Compare {
            keyspace: &read.keyspace,
            key,
            holds: read.seen.as_deref(),
        });
        Commit {
            compares: compares.collect(),
            ranges: &self.ranges,
            writes,
            route: Route::Logged,
            modified: self.modified,
        }
    }

    /// Applies the staged writes if nothing read has changed; `Ok(false)` asks for a rerun.
    async fn commit(self) -> Result<bool> {
        // Index entries taken first and freed last, as in a single write: with at most one
        // record written, that order alone keeps a crash from leaving a visible half.
        let rank = |s: &Staged| match (s.record.is_some(), &s.value) {
            (false, Some(_)) => 0,
            (true, _) => 1,
            (false, None) => 2,
        };
        let mut ordered: Vec<_> = self.writes.iter().collect();
        ordered.sort_by_key(|(_, staged)| rank(staged));
        let writes = ordered
            .iter()
            .map(|((_, key), staged)| Write {
                keyspace: &staged.keyspace,
                key,
                value: staged.value.as_deref(),
                record: staged.record,
            })
            .collect();
        if !self.shared.engine.commit(&self.unchanged(writes)).await? {
            self.forget_guesses();
            return Ok(false);
        }
        for (recent, slot) in &self.written {
            let value = self.writes.get(slot).and_then(|s| s.value.as_deref());
            if let Ok(key) = std::str::from_utf8(&slot.1) {
                recent.remember(key, value.map(Bytes::from).as_ref());
            }
        }
        let engine = self.shared.engine.as_ref();
        self.histories
            .iter()
            .try_for_each(|(history, key)| history.prune(engine, key, self.modified))?;
        Ok(true)
    }
}

impl Settling for Transaction<'_> {
    type Space = Keyspace;

    fn take_missing(&mut self) -> Vec<(Keyspace, Vec<u8>)> {
        std::mem::take(&mut self.missing)
    }

    fn record(&mut self, keyspace: Keyspace, key: Vec<u8>, seen: Option<Bytes>) {
        let id = (Arc::clone(&keyspace.name), key);
        self.reads.insert(id, Read { keyspace, seen });
    }
}

impl<'s> QueryView<'s> for Transaction<'_> {
    fn seed(&mut self, keyspace: &'s Keyspace, key: &[u8], seen: Bytes) {
        let id = (Arc::clone(&keyspace.name), key.to_vec());
        if !self.writes.contains_key(&id) {
            self.reads.entry(id).or_insert_with(|| Read {
                keyspace: keyspace.clone(),
                seen: Some(seen),
            });
        }
    }

    fn staged(&self, keyspace: &Keyspace, range: &KeyRange) -> Vec<(Vec<u8>, Option<Bytes>)> {
        (self.writes.iter())
            .filter(|((name, key), _)| *name == keyspace.name && range.contains(key))
            .map(|((_, key), staged)| (key.clone(), staged.value.as_deref().map(Bytes::from)))
            .collect()
    }

    fn scanned(
        &mut self,
        keyspace: &Keyspace,
        range: &KeyRange,
        entries: &[(Vec<u8>, Bytes)],
        revision: i64,
    ) {
        let mut keys: Vec<Vec<u8>> = entries.iter().map(|(key, _)| key.clone()).collect();
        keys.sort_unstable();
        self.ranges.push(RangeRead {
            keyspace: keyspace.clone(),
            range: range.clone(),
            keys,
            revision,
        });
    }
}

impl View<'_> for Transaction<'_> {
    /// Own writes first, then what was already read (so reads repeat), then the engine.
    fn read(&mut self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Bytes>> {
        let id = (Arc::clone(&keyspace.name), key.to_vec());
        if let Some(staged) = self.writes.get(&id) {
            return Ok(staged.value.as_deref().map(Bytes::from));
        }
        if let Some(read) = self.reads.get(&id) {
            return Ok(read.seen.clone());
        }
        if self.reads_at_once {
            let seen = keyspace.tree.get(key)?;
            let read = Read {
                keyspace: keyspace.clone(),
                seen: seen.clone(),
            };
            self.reads.insert(id, read);
            return Ok(seen);
        }
        // Not read yet: absent for this pass, read before the next (see `Self::settle`).
        let noted = self
            .missing
            .iter()
            .any(|(space, k)| space.name == keyspace.name && *k == key);
        if !noted {
            self.missing.push((keyspace.clone(), key.to_vec()));
        }
        Ok(None)
    }

    fn now(&self) -> SystemTime {
        self.modified
    }
}
