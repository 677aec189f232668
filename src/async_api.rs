//! The async API: a collection's and a store's operations as futures, for services on an async
//! runtime (tokio or any other), with no `spawn_blocking`.
//!
//! They are the very operations of the blocking API (which runs these futures to completion on
//! the calling thread), so both behave alike and raise the same conflicts. On etcd a future
//! awaits the cluster's answer without holding a thread; on the local engine an operation
//! completes when first polled, as it takes microseconds, except a write in
//! [`Durability::Immediate`](crate::Durability::Immediate) mode, which waits for its group
//! commit (an `fdatasync`) on a thread of a pool that grows with the writers waiting, never on
//! the runtime's. Every future is `Send`, and works on a current-thread runtime as on a
//! multi-thread one.
//!
//! The change feed is a [`ChangeStream`] whose reads are the engine's futures (on etcd, a
//! watch), and [`AsyncStore::changes_after`] reads what is committed already.
//!
//! Not async yet: scans, history, an expiry handler and the sweep of an expired record a write
//! finds in its way read blocking (on etcd, a round trip each).

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::collection::Collection;
use crate::collection::schema::Expect;
use crate::engine::FeedChange;
use crate::{Change, Page, Query, Result, Store, Transaction, Version, Versioned};

/// A collection for async code, from [`Collection::to_async`]: the same records and the same
/// rules, each operation a future. Cheap to clone; `Send`, `Sync` and `'static`.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Counter { hits: u64 }
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # runtime.block_on(async {
/// let store = revkv::Store::temporary()?;
/// let counters = store.collection::<Counter>("counters").open()?.to_async();
/// counters.insert("home", Counter { hits: 0 }).await?;
/// let bumped = counters.update_with("home", |c: &Counter| Counter { hits: c.hits + 1 }).await?;
/// assert_eq!(bumped.value.hits, 1);
/// # Ok::<(), revkv::Error>(())
/// # }).unwrap();
/// ```
pub struct AsyncCollection<T> {
    collection: Collection<T>,
}

impl<T> Clone for AsyncCollection<T> {
    fn clone(&self) -> Self {
        Self {
            collection: self.collection.clone(),
        }
    }
}

impl<T> fmt::Debug for AsyncCollection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncCollection")
            .field(&self.collection)
            .finish()
    }
}

impl<T> Collection<T> {
    /// This collection for async code.
    #[must_use]
    pub fn to_async(&self) -> AsyncCollection<T> {
        AsyncCollection {
            collection: self.clone(),
        }
    }
}

impl<T> AsyncCollection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The collection's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.collection.name()
    }

    /// The same collection, for blocking code (scans, loads, history).
    #[must_use]
    pub fn blocking(&self) -> &Collection<T> {
        &self.collection
    }

    /// [`Collection::get`]: the record under `key`, or `None`.
    ///
    /// # Errors
    /// As [`Collection::get`].
    pub async fn get(&self, key: &str) -> Result<Option<Versioned<T>>> {
        self.collection.fetch(key).await
    }

    /// [`Collection::insert`]: creates the record `key`, which must not exist yet.
    ///
    /// # Errors
    /// As [`Collection::insert`].
    pub async fn insert(&self, key: &str, value: impl Borrow<T> + Send) -> Result<Version> {
        let value = value.borrow();
        self.collection.create_observed(key, value, None).await
    }

    /// [`Collection::insert_expiring`]: creates the record `key`, expiring `ttl` from now.
    ///
    /// # Errors
    /// As [`Collection::insert`].
    pub async fn insert_expiring(
        &self,
        key: &str,
        value: impl Borrow<T> + Send,
        ttl: Duration,
    ) -> Result<Version> {
        let value = value.borrow();
        self.collection.create_observed(key, value, Some(ttl)).await
    }

    /// [`Collection::update`]: replaces the record `key` if it is still at `expected`.
    ///
    /// # Errors
    /// As [`Collection::update`]: [`Conflict::VersionMismatch`](crate::Conflict::VersionMismatch)
    /// carrying the current version and record, unique and transition conflicts.
    pub async fn update(
        &self,
        key: &str,
        expected: Version,
        value: impl Borrow<T> + Send,
    ) -> Result<Version> {
        let value = value.borrow();
        self.collection.replace(key, expected, value, None).await
    }

    /// [`Collection::update_expiring`]: [`Self::update`], expiring `ttl` from now.
    ///
    /// # Errors
    /// As [`Collection::update`].
    pub async fn update_expiring(
        &self,
        key: &str,
        expected: Version,
        value: impl Borrow<T> + Send,
        ttl: Duration,
    ) -> Result<Version> {
        let value = value.borrow();
        self.collection
            .replace(key, expected, value, Some(ttl))
            .await
    }

    /// [`Collection::delete`]: deletes the record `key` if it is still at `expected`.
    ///
    /// # Errors
    /// As [`Collection::delete`].
    pub async fn delete(&self, key: &str, expected: Version) -> Result<()> {
        self.collection.remove(key, expected).await
    }

    /// [`Collection::update_with`]: applies `change` to the current value and writes the
    /// result with a compare-and-swap, again on the newer value while others win. Callers on
    /// one key, async or blocking, take turns; a task waits for its turn without blocking its
    /// thread.
    ///
    /// # Errors
    /// As [`Collection::update_with`].
    pub async fn update_with<F>(&self, key: &str, change: F) -> Result<Versioned<T>>
    where
        F: FnMut(&T) -> T + Send,
    {
        self.collection.update_with_async(key, change).await
    }

    /// [`Collection::find_unique`]: the record whose unique index `index` holds `value`.
    ///
    /// # Errors
    /// As [`Collection::find_unique`].
    pub async fn find_unique(&self, index: &str, value: &str) -> Result<Option<Versioned<T>>> {
        self.collection.find(index, value).await
    }

    /// [`Collection::insert_versioned`]: creates `key`; returns the record as stored.
    ///
    /// # Errors
    /// As [`Collection::insert`].
    pub async fn insert_versioned(&self, key: &str, value: T) -> Result<Versioned<T>> {
        let write = self.collection.write_versioned(key, Expect::Absent, value);
        write.await
    }

    /// [`Collection::update_versioned`]: replaces `key` if it is at `expected`; returns the
    /// record as stored.
    ///
    /// # Errors
    /// As [`Collection::update`].
    pub async fn update_versioned(
        &self,
        key: &str,
        expected: Version,
        value: T,
    ) -> Result<Versioned<T>> {
        let write = (self.collection).write_versioned(key, Expect::Version(expected), value);
        write.await
    }

    /// [`Collection::query`]: one page of the records `query` selects.
    ///
    /// # Errors
    /// As [`Collection::query`].
    pub async fn query(&self, query: &Query) -> Result<Page<T>> {
        self.collection.query_async(query).await
    }
}

/// A store for async code, from [`Store::to_async`]: transactions and the change feed as a
/// [`Stream`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncStore {
    store: Store,
}

impl Store {
    /// This store for async code.
    #[must_use]
    pub fn to_async(&self) -> AsyncStore {
        AsyncStore {
            store: self.clone(),
        }
    }
}

impl AsyncStore {
    /// The same store, for blocking code (opening collections, flushes, verification).
    #[must_use]
    pub fn blocking(&self) -> &Store {
        &self.store
    }

    /// [`Store::flush`] for async code: resolves once every write that returned before this
    /// call is durable. The `fdatasync` runs on a thread of the store's, shared by every task
    /// flushing at the time; the task waits without blocking its thread. On etcd a write is
    /// durable when it returns, and this resolves at once.
    ///
    /// # Errors
    /// [`Error::Poisoned`](crate::Error::Poisoned) if the flush failed (the store then refuses
    /// writes until reopened); [`Error::Io`](crate::Error::Io) if no thread could be started.
    pub async fn flush(&self) -> Result<()> {
        if self.store.shared.engine.commits_are_durable() {
            return Ok(());
        }
        self.store.shared.flusher.flush(&self.store).await
    }

    /// [`Store::transaction`] for async code: runs `body` as one atomic, serializable
    /// transaction across any records and collections of this store, and returns what it
    /// returns. `body` may run more than once (when what it read changes before it commits),
    /// so it should have no other side effects. It returns its future boxed:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Item { stock: u32 }
    /// #[derive(Serialize, Deserialize)]
    /// struct Order { sku: String }
    ///
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # runtime.block_on(async {
    /// let store = revkv::Store::temporary()?;
    /// let items = store.collection::<Item>("items").open()?.to_async();
    /// let orders = store.collection::<Order>("orders").open()?.to_async();
    /// items.insert("sku-1", Item { stock: 1 }).await?;
    ///
    /// let store = store.to_async();
    /// let (items, orders) = (&items, &orders);
    /// let buy = |order_id: &'static str| store.transaction(move |tx| Box::pin(async move {
    ///     let item = tx.get(items, "sku-1").await?.expect("exists");
    ///     if item.value.stock == 0 {
    ///         return Err(revkv::Conflict::rule("out_of_stock", "sku-1 is sold out").into());
    ///     }
    ///     tx.update(items, "sku-1", item.version, Item { stock: item.value.stock - 1 }).await?;
    ///     tx.insert(orders, order_id, Order { sku: "sku-1".into() }).await?;
    ///     Ok(())
    /// }));
    /// buy("o-1").await?;
    /// let sold_out = buy("o-2").await.unwrap_err();
    /// assert_eq!(sold_out.to_string(), "out_of_stock: sku-1 is sold out");
    /// assert!(orders.get("o-2").await?.is_none());
    /// # Ok::<(), revkv::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`Store::transaction`].
    pub async fn transaction<'s, R, F>(&'s self, body: F) -> Result<R>
    where
        F: for<'t> FnMut(&'t mut AsyncTransaction<'s>) -> BoxFuture<'t, Result<R>>,
    {
        self.store.run_transaction(body).await
    }

    /// Every change committed after position `since`, in order, and then each new one as it
    /// is committed: a stream that ends only with an error (the first error it yields, such as
    /// [`Error::HistoryCompacted`](crate::Error::HistoryCompacted) when the feed no longer holds
    /// `since`, is its last item). [`Change::seq`] of the last change taken is where a later
    /// stream resumes.
    ///
    /// # Errors
    /// [`Error::NoChangeFeed`](crate::Error::NoChangeFeed) if the store keeps no change feed.
    pub fn changes(&self, since: u64) -> Result<ChangeStream> {
        self.store.feed()?;
        Ok(ChangeStream::new(self.store.clone(), since))
    }

    /// The changes committed after position `since` up to now, at most `limit`, without waiting
    /// for new ones: [`Store::changes_since`] for async code. On etcd it is two round trips.
    ///
    /// # Errors
    /// As [`Store::changes_since`].
    pub async fn changes_after(&self, since: u64, limit: usize) -> Result<Vec<Change>> {
        let changes = self.store.feed()?.read_after(since, limit).await?;
        let changes = changes
            .into_iter()
            .filter_map(|(seq, write)| Change::of(seq, write));
        Ok(changes.collect())
    }
}

/// A transaction in progress, for async code: handed to the body of
/// [`AsyncStore::transaction`]. Its operations behave as those of [`Transaction`] (and of the
/// collection), against the state the transaction has seen plus its own writes.
pub struct AsyncTransaction<'s> {
    tx: Transaction<'s>,
}

impl<'s> From<Transaction<'s>> for AsyncTransaction<'s> {
    fn from(tx: Transaction<'s>) -> Self {
        Self { tx }
    }
}

impl<'s> From<AsyncTransaction<'s>> for Transaction<'s> {
    fn from(tx: AsyncTransaction<'s>) -> Self {
        tx.tx
    }
}

impl fmt::Debug for AsyncTransaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTransaction").finish_non_exhaustive()
    }
}

impl<'s> AsyncTransaction<'s> {
    /// The same transaction, for blocking code shared with an expiry handler
    /// ([`CollectionBuilder::on_expiry`](crate::CollectionBuilder::on_expiry)), which gets a
    /// [`Transaction`]. Its reads block the task's thread until the engine answers: a poll of
    /// a few microseconds on the local engine, a round trip on etcd.
    pub fn blocking(&mut self) -> &mut Transaction<'s> {
        &mut self.tx
    }

    /// [`Transaction::get`]: the record under `key` as this transaction sees it.
    ///
    /// # Errors
    /// As [`Transaction::get`].
    pub async fn get<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        key: &str,
    ) -> Result<Option<Versioned<T>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.tx.fetch(&collection.collection, key).await
    }

    /// [`Transaction::find_unique`]: the record whose unique index `index` holds `value`, as
    /// this transaction sees it.
    ///
    /// # Errors
    /// As [`Transaction::find_unique`].
    pub async fn find_unique<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        index: &str,
        value: &str,
    ) -> Result<Option<Versioned<T>>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.tx.find(&collection.collection, index, value).await
    }

    /// [`Transaction::query`]: one page of the records `query` selects, as this transaction
    /// sees them; the transaction commits only if the page is still the same then.
    ///
    /// # Errors
    /// As [`Transaction::query`].
    pub async fn query<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        query: &Query,
    ) -> Result<Page<T>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.tx.query_async(&collection.collection, query).await
    }

    /// [`Transaction::insert`]: creates `key`; returns the version it will have.
    ///
    /// # Errors
    /// As [`Transaction::insert`].
    pub async fn insert<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        key: &str,
        value: impl Borrow<T> + Send,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        let collection = &collection.collection;
        self.tx
            .stage(collection, key, Expect::Absent, value, None)
            .await
    }

    /// [`Transaction::insert_expiring`]: creates `key`, expiring `ttl` from the
    /// transaction's start.
    ///
    /// # Errors
    /// As [`Transaction::insert`].
    pub async fn insert_expiring<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        key: &str,
        value: impl Borrow<T> + Send,
        ttl: Duration,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        let collection = &collection.collection;
        self.tx
            .stage(collection, key, Expect::Absent, value, Some(ttl))
            .await
    }

    /// [`Transaction::update`]: replaces `key` if it is at `expected`; returns the version it
    /// will have.
    ///
    /// # Errors
    /// As [`Transaction::update`].
    pub async fn update<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        key: &str,
        expected: Version,
        value: impl Borrow<T> + Send,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        let expect = Expect::Version(expected);
        let collection = &collection.collection;
        self.tx.stage(collection, key, expect, value, None).await
    }

    /// [`Transaction::update_expiring`]: [`Self::update`], expiring `ttl` from the
    /// transaction's start.
    ///
    /// # Errors
    /// As [`Transaction::update`].
    pub async fn update_expiring<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        key: &str,
        expected: Version,
        value: impl Borrow<T> + Send,
        ttl: Duration,
    ) -> Result<Version>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let value = Some(value.borrow());
        let expect = Expect::Version(expected);
        let collection = &collection.collection;
        self.tx
            .stage(collection, key, expect, value, Some(ttl))
            .await
    }

    /// [`Transaction::delete`]: deletes `key` if it is at `expected`.
    ///
    /// # Errors
    /// As [`Transaction::delete`].
    pub async fn delete<T>(
        &mut self,
        collection: &AsyncCollection<T>,
        key: &str,
        expected: Version,
    ) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let expect = Expect::Version(expected);
        let collection = &collection.collection;
        self.tx
            .stage(collection, key, expect, None, None)
            .await
            .map(drop)
    }
}

/// The change feed as a [`Stream`], from [`AsyncStore::changes`]. It reads the feed a batch
/// at a time, each read a future of the engine's: on etcd, one watch that brings the next
/// changes, whether committed already or later.
pub struct ChangeStream {
    /// The position of the last change yielded.
    position: u64,
    changes: BoxStream<'static, Result<Change>>,
}

impl fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeStream")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl ChangeStream {
    /// The changes of `store`'s feed after `since`, ending after the first error.
    fn new(store: Store, since: u64) -> Self {
        let read = Read {
            store,
            since,
            batch: VecDeque::new(),
            ended: false,
        };
        let changes = futures::stream::unfold(read, |mut read| async move {
            let next = read.next().await?;
            Some((next, read))
        });
        Self {
            position: since,
            changes: changes.boxed(),
        }
    }

    /// The position of the last change yielded (or the starting position).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// Where a [`ChangeStream`] is in the feed.
struct Read {
    store: Store,
    /// The position of the last change read from the feed.
    since: u64,
    /// Changes read and not yet yielded.
    batch: VecDeque<FeedChange>,
    ended: bool,
}

impl Read {
    /// The next change of a record, reading the next batch when this one is used up.
    async fn next(&mut self) -> Option<Result<Change>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some((seq, write)) = self.batch.pop_front() {
                self.since = seq;
                match Change::of(seq, write) {
                    Some(change) => return Some(Ok(change)),
                    None => continue,
                }
            }
            let read = match self.store.feed() {
                Ok(feed) => feed.next_changes(self.since).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(changes) => self.batch.extend(changes),
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Stream for ChangeStream {
    type Item = Result<Change>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = std::task::ready!(self.changes.poll_next_unpin(cx));
        if let Some(Ok(change)) = &next {
            self.position = change.seq;
        }
        Poll::Ready(next)
    }
}
