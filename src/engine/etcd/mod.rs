//! The etcd engine: revkv's keyspaces in an etcd (v3 API) cluster, each commit one etcd `Txn`
//! whose compares are the commit's and whose writes are applied only if all of them hold.
//!
//! Correctness rests on etcd's compares alone, so any number of processes may share one
//! namespace. An etcd key is the namespace, the keyspace's name, a zero byte, and the key.
//!
//! The engine owns a small tokio runtime whose threads drive its connections. A request is
//! polled by the caller's own task (an async caller's, on whatever runtime it runs) or thread
//! (a blocking caller's, inside a runtime or not), inside that runtime's context, so the caller
//! needs no runtime of its own and no request hops to another thread.
//!
//! A request that fails in transport may or may not have been applied. Reads are retried; a
//! commit is retried too, and if the retry finds its compares failing because its own record
//! is already there (every record write carries a version never written before), it counts
//! as applied.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Txn, TxnOp,
};
use parking_lot::Mutex;

use crate::backend::{Bytes, Entries, Tree};
use crate::blocking::block_on;
use crate::engine::commit::Commit;
use crate::engine::contract::{Engine, EngineFuture, Paused, check_format, done, under_way};
use crate::engine::etcd::cluster::{
    ATTEMPT_TIMEOUT, Cluster, MAX_REQUEST_BYTES, MAX_TXN_OPS, etcd_key, storage_error,
};
use crate::engine::etcd::feed::EtcdFeed;
use crate::engine::feed::ChangeFeed;
use crate::engine::keyspace::Keyspace;
use crate::meta::Meta;
use crate::{Error, Result, Version};

mod cluster;
mod feed;

use self::cluster::DEFAULT_DEADLINE;

/// How many versions a process takes from the shared lease at a time.
const VERSION_BLOCK: u64 = 1 << 16;
/// Keys fetched per request of a scan.
const SCAN_PAGE: i64 = 512;
/// The metadata key of the version lease: every version below its value has been handed out.
const VERSION_LEASE: &str = "version-lease";
/// The metadata key present once the store keeps a change feed.
const CHANGE_FEED: &str = "change-feed";

/// The versions this process may hand out: `next` up to, not including, `end`.
#[derive(Default)]
struct Block {
    next: u64,
    end: u64,
}

pub(crate) struct EtcdEngine {
    cluster: Arc<Cluster>,
    namespace: Vec<u8>,
    meta: Arc<Meta>,
    versions: Mutex<Block>,
    feed: Option<EtcdFeed>,
    /// Removes the namespace when the engine is dropped (a temporary store).
    temporary: bool,
}

/// The etcd engine's own options (set through [`StoreBuilder`](crate::StoreBuilder)): its
/// cluster (none: the store is not on etcd), its name there (none: a temporary store), and how
/// long a request keeps trying (none: [`DEFAULT_DEADLINE`](cluster::DEFAULT_DEADLINE)).
#[derive(Clone, Default)]
pub(crate) struct EtcdOptions {
    pub(crate) endpoints: Option<Vec<String>>,
    pub(crate) namespace: Option<String>,
    pub(crate) deadline: Option<Duration>,
}

impl EtcdEngine {
    /// Connects to the cluster at `endpoints` and opens the store `options` name (a new
    /// temporary one, removed when the engine is dropped, if they name none), recording a
    /// change feed if `feed` or if any process ever opened it with one: a feed that only some
    /// processes record would miss the others' commits.
    pub(crate) fn open(
        endpoints: &[String],
        options: &EtcdOptions,
        feed: bool,
    ) -> Result<(Self, Arc<Meta>)> {
        let (namespace, temporary) = match &options.namespace {
            Some(name) => (name.clone(), false),
            None => (format!("temporary-{:016x}", fastrand::u64(..)), true),
        };
        let deadline = options.deadline.unwrap_or(DEFAULT_DEADLINE);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("revkv-etcd")
            .enable_all()
            .build()?;
        let connect = ConnectOptions::new()
            .with_timeout(ATTEMPT_TIMEOUT)
            .with_connect_timeout(ATTEMPT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_require_leader(true);
        let endpoints = endpoints.to_vec();
        let handle = runtime.handle().clone();
        let client = block_on(async {
            let _entered = handle.enter();
            Client::connect(endpoints, Some(connect)).await
        })
        .map_err(storage_error)?;
        let mut prefix = b"revkv\0".to_vec();
        prefix.extend_from_slice(namespace.as_bytes());
        prefix.push(0);
        let cluster = Arc::new(Cluster {
            kv: client.kv_client(),
            watch: client.watch_client(),
            runtime: Some(runtime),
            handle,
            deadline,
        });
        let meta = Arc::new(Meta::new(keyspace(&cluster, &prefix, "revkv/meta")));
        check_format(&meta)?;
        let feed = match meta.get::<()>(CHANGE_FEED)? {
            Some(()) => true,
            None if feed => {
                meta.put(CHANGE_FEED, &())?;
                true
            }
            None => false,
        };
        let engine = Self {
            feed: feed.then(|| EtcdFeed::new(Arc::clone(&cluster), &prefix)),
            cluster,
            namespace: prefix,
            meta: Arc::clone(&meta),
            versions: Mutex::new(Block::default()),
            temporary,
        };
        Ok((engine, meta))
    }

    /// Takes a new block of versions above `floor` from the lease all processes share.
    fn lease_versions(&self, floor: u64) -> Result<Block> {
        loop {
            let leased = self.meta.get::<u64>(VERSION_LEASE)?;
            let start = leased.unwrap_or(1).max(floor + 1);
            let end = start.saturating_add(VERSION_BLOCK);
            if self.meta.swap(VERSION_LEASE, leased.as_ref(), &end)? {
                return Ok(Block { next: start, end });
            }
        }
    }

    /// The etcd transaction of `commit`, with the change feed's entry for it if the store
    /// keeps a feed, checked against etcd's limits.
    fn txn(&self, commit: &Commit<'_>) -> Result<Txn> {
        let entry = match &self.feed {
            Some(feed) => feed.entry(commit)?,
            None => None,
        };
        let writes = commit.writes.len() + usize::from(entry.is_some());
        let ops = commit.compares.len().max(writes);
        if ops > MAX_TXN_OPS {
            return Err(Error::CommitTooLarge {
                what: "operations",
                found: Some(ops),
                limit: MAX_TXN_OPS,
            });
        }
        let size = |name: &str, key: &[u8], value: Option<&[u8]>| {
            self.namespace.len() + name.len() + 1 + key.len() + value.map_or(0, <[u8]>::len)
        };
        let checked = commit
            .compares
            .iter()
            .map(|c| (&c.keyspace.name, c.key, c.holds));
        let written = commit
            .writes
            .iter()
            .map(|w| (&w.keyspace.name, w.key, w.value));
        let bytes: usize = checked
            .clone()
            .chain(written.clone())
            .map(|(name, key, value)| size(name, key, value))
            .chain(entry.iter().map(|(key, value)| key.len() + value.len()))
            .sum();
        if bytes > MAX_REQUEST_BYTES {
            return Err(Error::CommitTooLarge {
                what: "bytes",
                found: Some(bytes),
                limit: MAX_REQUEST_BYTES,
            });
        }
        let key = |name: &str, key: &[u8]| etcd_key(&self.namespace, name, key);
        let compares: Vec<Compare> = checked
            .map(|(name, k, value)| holds(key(name, k), value))
            .collect();
        let writes: Vec<TxnOp> = written
            .map(|(name, k, value)| write(key(name, k), value))
            .chain(entry.map(|(key, value)| TxnOp::put(key, value, None)))
            .collect();
        Ok(Txn::new().when(compares).and_then(writes))
    }
}

impl Engine for EtcdEngine {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        Ok(keyspace(&self.cluster, &self.namespace, name))
    }

    fn reads_are_round_trips(&self) -> bool {
        true
    }

    fn read<'a>(
        &'a self,
        keyspace: &'a Keyspace,
        key: &'a [u8],
    ) -> EngineFuture<'a, Option<Bytes>> {
        let key = etcd_key(&self.namespace, &keyspace.name, key);
        let read = self.cluster.get(key);
        under_way(
            self.cluster
                .on_runtime(async move { Ok(read.await?.map(Bytes::from)) }),
        )
    }

    fn commit<'a>(&'a self, commit: &'a Commit<'_>) -> EngineFuture<'a, bool> {
        let txn = match self.txn(commit) {
            Ok(txn) => txn,
            Err(e) => return done(Err(e)),
        };
        // What shows that an attempt whose answer was lost was applied: a record it writes
        // (whose bytes carry a version never written before), else its first write.
        let evidence = commit
            .writes
            .iter()
            .find(|w| w.record.is_some() && w.value.is_some())
            .or_else(|| commit.writes.first())
            .filter(|w| w.value.is_some())
            .map(|w| {
                let key = etcd_key(&self.namespace, &w.keyspace.name, w.key);
                (key, w.value.map(<[u8]>::to_vec))
            });
        under_way(self.cluster.on_runtime(self.cluster.txn(txn, evidence)))
    }

    /// Greater than `above`, from this process's block of the shared lease: unique across
    /// every process of the store.
    /// Greater than `above`, from this process's block of the shared lease: unique across
    /// every process of the store. A new block is leased, by a blocking round trip, once per
    /// [`VERSION_BLOCK`] versions.
    fn next_version(&self, above: Option<Version>) -> EngineFuture<'_, Version> {
        let floor = above.map_or(0, Version::get);
        let mut block = self.versions.lock();
        if block.next <= floor {
            // Another process wrote this record with a later block: skip to above it, taking
            // a new block unless this one reaches beyond.
            block.next = floor + 1;
        }
        if block.next >= block.end {
            match self.lease_versions(floor) {
                Ok(leased) => *block = leased,
                Err(e) => return done(Err(e)),
            }
        }
        let version = block.next;
        block.next += 1;
        done(Ok(Version::new(version)))
    }

    /// A quorum of members has a commit on disk when etcd answers it.
    fn commits_are_durable(&self) -> bool {
        true
    }

    /// A commit is durable when etcd answers it: a quorum of members has it on disk.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn make_direct_writes_durable(&self) -> Result<()> {
        Ok(())
    }

    fn feed(&self) -> Option<&dyn ChangeFeed> {
        self.feed.as_ref().map(|feed| feed as &dyn ChangeFeed)
    }

    /// Other processes cannot be paused: nothing is held.
    fn pause_commits(&self) -> Paused<'_> {
        None
    }
}

impl Drop for EtcdEngine {
    fn drop(&mut self) {
        if self.temporary {
            let start = self.namespace.clone();
            let end = prefix_end(&start);
            // Nothing can be reported from here; a temporary namespace left behind is inert.
            let _ = self.cluster.call(move |mut kv| {
                let (start, end) = (start.clone(), end.clone());
                async move {
                    kv.delete(start, Some(DeleteOptions::new().with_range(end)))
                        .await
                }
            });
        }
    }
}

/// The compare that `key` holds `value` (`None`: nothing).
fn holds(key: Vec<u8>, value: Option<&[u8]>) -> Compare {
    match value {
        Some(value) => Compare::value(key, CompareOp::Equal, value),
        None => Compare::version(key, CompareOp::Equal, 0),
    }
}

/// The operation that writes `value` at `key` (`None`: removes it).
fn write(key: Vec<u8>, value: Option<&[u8]>) -> TxnOp {
    match value {
        Some(value) => TxnOp::put(key, value, None),
        None => TxnOp::delete(key, None),
    }
}

/// The first key after every key that starts with `prefix`. Every prefix here holds the zero
/// byte that ends a keyspace's name, so some byte can always be increased.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            break;
        }
    }
    end
}

fn keyspace(cluster: &Arc<Cluster>, namespace: &[u8], name: &str) -> Arc<dyn Tree> {
    Arc::new(EtcdTree {
        cluster: Arc::clone(cluster),
        prefix: etcd_key(namespace, name, b""),
    })
}

/// One keyspace: the etcd keys under a prefix.
struct EtcdTree {
    cluster: Arc<Cluster>,
    prefix: Vec<u8>,
}

impl EtcdTree {
    fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut full = self.prefix.clone();
        full.extend_from_slice(key);
        full
    }

    /// The entries from `start` (a full etcd key) up to, not including, `end`, fetched a page
    /// at a time as the iterator advances.
    fn range(&self, start: Vec<u8>, end: Vec<u8>) -> Entries {
        Box::new(Pages {
            cluster: Arc::clone(&self.cluster),
            prefix_len: self.prefix.len(),
            next: Some(start),
            end,
            page: Vec::new().into_iter(),
        })
    }
}

impl Tree for EtcdTree {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let value = self.cluster.run(self.cluster.get(self.key(key)))?;
        Ok(value.map(Bytes::from))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (key, value) = (self.key(key), value.to_vec());
        self.cluster.call(move |mut kv| {
            let (key, value) = (key.clone(), value.clone());
            async move { kv.put(key, value, None).await }
        })?;
        Ok(())
    }

    fn swap(&self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
        let key = self.key(key);
        let txn = Txn::new()
            .when([holds(key.clone(), old)])
            .and_then([write(key.clone(), new)]);
        // Writing what is there already leaves no evidence of having been applied.
        let evidence = (old != new).then(|| (key, new.map(<[u8]>::to_vec)));
        self.cluster.run(self.cluster.txn(txn, evidence))
    }

    fn remove(&self, key: &[u8]) -> Result<()> {
        let key = self.key(key);
        self.cluster.call(move |mut kv| {
            let key = key.clone();
            async move { kv.delete(key, None).await }
        })?;
        Ok(())
    }

    fn scan(&self, prefix: &[u8]) -> Entries {
        let start = self.key(prefix);
        let end = prefix_end(&start);
        self.range(start, end)
    }

    fn scan_from(&self, start: &[u8]) -> Entries {
        let end = prefix_end(&self.prefix);
        self.range(self.key(start), end)
    }
}

/// A scan's iterator: one request per page of keys.
struct Pages {
    cluster: Arc<Cluster>,
    prefix_len: usize,
    /// Where the next page starts; `None` once the range is exhausted.
    next: Option<Vec<u8>>,
    end: Vec<u8>,
    page: std::vec::IntoIter<(Vec<u8>, Bytes)>,
}

impl Iterator for Pages {
    type Item = Result<(Vec<u8>, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.page.next() {
                return Some(Ok(entry));
            }
            let start = self.next.take()?;
            let end = self.end.clone();
            let answer = self.cluster.call(move |mut kv| {
                let options = GetOptions::new()
                    .with_range(end.clone())
                    .with_limit(SCAN_PAGE);
                let start = start.clone();
                async move { kv.get(start, Some(options)).await }
            });
            let mut response = match answer {
                Ok(response) => response,
                Err(e) => return Some(Err(e)),
            };
            let kvs = response.take_kvs();
            if response.more()
                && let Some(last) = kvs.last()
            {
                let mut after = last.key().to_vec();
                after.push(0);
                self.next = Some(after);
            }
            let prefix_len = self.prefix_len;
            self.page = kvs
                .into_iter()
                .map(|kv| {
                    let (mut key, value) = kv.into_key_value();
                    (key.split_off(prefix_len), Bytes::from(value))
                })
                .collect::<Vec<_>>()
                .into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::etcd::*;

    #[test]
    fn keys_of_one_keyspace_stay_within_its_prefix() {
        let ns = b"revkv\0shop\0";
        let start = etcd_key(ns, "c/users", b"");
        let end = prefix_end(&start);
        for key in [&b""[..], b"a", b"\xff\xff", b"zzz"] {
            let full = etcd_key(ns, "c/users", key);
            assert!(full >= start && full < end, "{key:?}");
        }
        // A keyspace whose name extends another's never falls in its range.
        let other = etcd_key(ns, "c/users2", b"a");
        assert!(!(other >= start && other < end));
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
    }
}
