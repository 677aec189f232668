//! The etcd engine: revkv's keyspaces in an etcd (v3 API) cluster, each commit one etcd `Txn`
//! whose compares are the commit's and whose writes are applied only if all of them hold.
//!
//! Correctness rests on etcd's compares alone, so any number of processes may share one
//! namespace. An etcd key is `revkv/<namespace>/`, the keyspace's name, a zero byte, and the
//! key: every key of a store lies under one printable prefix, which an operator can grant a
//! role with `etcdctl role grant-permission --prefix=true`.
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

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, SortOrder, SortTarget,
    Txn, TxnOp, TxnOpResponse,
};
use parking_lot::Mutex;

use crate::backend::{Bytes, Entries, KeyRange, Tree, prefix_end};
use crate::blocking::block_on;
use crate::engine::commit::Commit;
use crate::engine::contract::{
    Engine, EngineFuture, Paused, Scanned, check_format, done, under_way,
};
use crate::engine::etcd::cluster::{
    ATTEMPT_TIMEOUT, Cluster, MAX_REQUEST_BYTES, MAX_TXN_OPS, etcd_key, storage_error,
};
use crate::engine::etcd::feed::EtcdFeed;
use crate::engine::feed::ChangeFeed;
use crate::engine::keyspace::Keyspace;
use crate::engine::snapshot::{Snapshot, SnapshotBatch};
use crate::meta::Meta;
use crate::name::validate_name;
use crate::{Error, Result, Version};

mod access;
mod cluster;
mod feed;

pub use self::access::EtcdTls;

use self::cluster::DEFAULT_DEADLINE;

/// How many versions a process takes from the shared lease at a time.
const VERSION_BLOCK: u64 = 1 << 16;
/// Keys fetched per request of a scan.
const SCAN_PAGE: usize = 512;
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
    /// Keys under `revkv\0<namespace>\0`, as revkv laid them out before `revkv/<namespace>/`.
    pub(crate) legacy_layout: bool,
    pub(crate) tls: Option<EtcdTls>,
    /// An etcd user's name and password.
    pub(crate) user: Option<(String, String)>,
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
        validate_name(&namespace)?;
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
        let connect = access::secured(connect, options.tls.as_ref(), options.user.as_ref());
        let legacy = format!("revkv\0{namespace}\0");
        let prefix = if options.legacy_layout {
            legacy.clone()
        } else {
            format!("revkv/{namespace}/")
        };
        let endpoints = endpoints.to_vec();
        let handle = runtime.handle().clone();
        let connected = block_on(async {
            let _entered = handle.enter();
            Client::connect(endpoints, Some(connect)).await
        });
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                // Without waiting: the caller may be a task of another runtime, where a
                // runtime may not be dropped by blocking.
                runtime.shutdown_background();
                return Err(access::refusal(&e, &prefix).unwrap_or_else(|| storage_error(e)));
            }
        };
        let cluster = Arc::new(Cluster {
            kv: client.kv_client(),
            watch: client.watch_client(),
            runtime: Some(runtime),
            handle,
            deadline,
            prefix: prefix.clone(),
        });
        if !options.legacy_layout {
            let legacy = legacy.into_bytes();
            let (start, end) = etcd_range(&legacy, &KeyRange::prefix(b""));
            match cluster.run(scan_page(&cluster, (&start, &end), false, 1, 0)) {
                Ok((found, _, _)) if !found.is_empty() => {
                    return Err(Error::LegacyLayout { namespace });
                }
                // A user granted only the store's prefix cannot see an earlier layout's keys,
                // nor use them.
                Ok(_) | Err(Error::EtcdPermission { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let prefix = prefix.into_bytes();
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
        let ops = (commit.compares.len() + commit.ranges.len()).max(writes);
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
        let ranges = commit.ranges.iter().map(|read| {
            let prefix = key(&read.keyspace.name, b"");
            let (start, end) = etcd_range(&prefix, &read.range);
            // No key in the range written since: neither added nor replaced.
            Compare::mod_revision(start, CompareOp::Less, read.revision + 1).with_range(end)
        });
        let compares: Vec<Compare> = checked
            .map(|(name, k, value)| holds(key(name, k), value))
            .chain(ranges)
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

    /// One request.
    fn scan<'a>(
        &'a self,
        keyspace: &'a Keyspace,
        range: &'a KeyRange,
        reverse: bool,
        limit: usize,
    ) -> EngineFuture<'a, Scanned> {
        if range.is_empty() || limit == 0 {
            return done(Ok(Scanned {
                entries: Vec::new(),
                more: !range.is_empty(),
                revision: 0,
            }));
        }
        let prefix = etcd_key(&self.namespace, &keyspace.name, b"");
        let cluster = &self.cluster;
        under_way(cluster.on_runtime(async move {
            let (start, end) = etcd_range(&prefix, range);
            let (entries, more, revision) =
                scan_page(cluster, (&start, &end), reverse, limit, 0).await?;
            let entries = entries
                .into_iter()
                .map(|(mut key, value)| (key.split_off(prefix.len()), value))
                .collect();
            Ok(Scanned {
                entries,
                more,
                revision,
            })
        }))
    }

    /// One transaction of reads (per [`MAX_TXN_OPS`] keys).
    fn read_many<'a>(
        &'a self,
        keys: Vec<(&'a Keyspace, &'a [u8])>,
    ) -> EngineFuture<'a, Vec<Option<Bytes>>> {
        if let [(keyspace, key)] = keys[..] {
            // The commonest read, as a plain request.
            let read = self
                .cluster
                .get(etcd_key(&self.namespace, &keyspace.name, key));
            return under_way(
                self.cluster
                    .on_runtime(async move { Ok(vec![read.await?.map(Bytes::from)]) }),
            );
        }
        let keys: Vec<Vec<u8>> = (keys.iter())
            .map(|(keyspace, key)| etcd_key(&self.namespace, &keyspace.name, key))
            .collect();
        let cluster = &self.cluster;
        under_way(cluster.on_runtime(async move {
            let mut values = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(MAX_TXN_OPS) {
                let gets: Vec<TxnOp> = (chunk.iter())
                    .map(|key| TxnOp::get(key.clone(), None))
                    .collect();
                let response = cluster
                    .retry(&cluster.kv, |mut kv| {
                        let txn = Txn::new().and_then(gets.clone());
                        async move { kv.txn(txn).await }
                    })
                    .await?;
                for answer in response.op_responses() {
                    let TxnOpResponse::Get(mut got) = answer else {
                        return Err(Error::Storage("etcd answered a read with a write".into()));
                    };
                    let value = got.take_kvs().into_iter().next();
                    values.push(value.map(|kv| Bytes::from(kv.into_key_value().1)));
                }
            }
            Ok(values)
        }))
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
        let sent = self.cluster.txn(txn, evidence);
        under_way(self.cluster.on_runtime(async move {
            let started = std::time::Instant::now();
            let committed = sent.await;
            metrics::histogram!("revkv_commit_seconds", "engine" => "etcd")
                .record(started.elapsed().as_secs_f64());
            committed
        }))
    }

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

    /// etcd's own: every keyspace read at one revision (until the cluster compacts it).
    fn snapshot(&self, keyspaces: Vec<Keyspace>) -> Result<Box<dyn Snapshot>> {
        let meta = etcd_key(&self.namespace, "revkv/meta", b"");
        let (start, end) = etcd_range(&meta, &KeyRange::prefix(b""));
        let cluster = &self.cluster;
        let (_, _, revision) = cluster.run(scan_page(cluster, (&start, &end), false, 1, 0))?;
        let pages = keyspaces
            .iter()
            .map(|keyspace| {
                let tree = EtcdTree {
                    cluster: Arc::clone(cluster),
                    prefix: etcd_key(&self.namespace, &keyspace.name, b""),
                };
                Pages::new(&tree, &KeyRange::prefix(b""), false, revision)
            })
            .collect();
        Ok(Box::new(EtcdSnapshot { pages, at: 0 }))
    }

    fn version_mark(&self) -> Result<u64> {
        Ok(self.meta.get::<u64>(VERSION_LEASE)?.unwrap_or(1))
    }

    fn raise_versions(&self, floor: u64) -> Result<()> {
        let mut block = self.versions.lock();
        block.next = block.next.max(floor);
        loop {
            let leased = self.meta.get::<u64>(VERSION_LEASE)?;
            if leased.is_some_and(|leased| leased >= floor)
                || self.meta.swap(VERSION_LEASE, leased.as_ref(), &floor)?
            {
                return Ok(());
            }
        }
    }
}

impl Drop for EtcdEngine {
    fn drop(&mut self) {
        // Gives back the rest of this process's block of versions, unless another process
        // leased one after it: the next block then continues after the last version issued
        // instead of a block later. Nothing can be reported from here; a block kept only
        // skips versions.
        let block = self.versions.get_mut();
        if !self.temporary && block.next < block.end {
            let _ = self.meta.swap(VERSION_LEASE, Some(&block.end), &block.next);
        }
        if self.temporary {
            let (start, end) = etcd_range(&self.namespace, &KeyRange::prefix(b""));
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

    /// Fetched a page at a time as the iterator advances.
    fn range(&self, range: &KeyRange, reverse: bool) -> Entries {
        Box::new(Pages::new(self, range, reverse, 0))
    }
}

/// The etcd keys `[start, end)` of `range` in the keyspace whose keys start with `prefix`.
fn etcd_range(prefix: &[u8], range: &KeyRange) -> (Vec<u8>, Vec<u8>) {
    let full = |key: &[u8], after: bool| {
        let mut full = [prefix, key].concat();
        if after {
            full.push(0); // the first key after `key`
        }
        full
    };
    let start = match &range.lower {
        Bound::Included(key) => full(key, false),
        Bound::Excluded(key) => full(key, true),
        Bound::Unbounded => prefix.to_vec(),
    };
    let end = match &range.upper {
        Bound::Included(key) => full(key, true),
        Bound::Excluded(key) => full(key, false),
        // Every prefix holds the zero byte that ends a keyspace's name, so it has an end.
        Bound::Unbounded => prefix_end(prefix).unwrap_or_else(|| vec![0]),
    };
    (start, end)
}

/// One page of the etcd keys in `[start, end)`: at most `limit` entries from the start (or,
/// `reverse`, from the end), whether more follow, and the revision they were read at. Read at
/// `revision`, or at the latest where that is 0.
async fn scan_page(
    cluster: &Cluster,
    (start, end): (&[u8], &[u8]),
    reverse: bool,
    limit: usize,
    revision: i64,
) -> Result<(Vec<(Vec<u8>, Bytes)>, bool, i64)> {
    let mut response = cluster
        .retry(&cluster.kv, |mut kv| {
            let mut options = GetOptions::new()
                .with_range(end)
                .with_limit(i64::try_from(limit).unwrap_or(i64::MAX))
                .with_revision(revision);
            if reverse {
                // etcd sorts the whole range before it applies the limit.
                options = options.with_sort(SortTarget::Key, SortOrder::Descend);
            }
            let start = start.to_vec();
            async move { kv.get(start, Some(options)).await }
        })
        .await?;
    let revision = response
        .header()
        .map_or(0, etcd_client::ResponseHeader::revision);
    let more = response.more();
    let entries = response.take_kvs().into_iter().map(|kv| {
        let (key, value) = kv.into_key_value();
        (key, Bytes::from(value))
    });
    Ok((entries.collect(), more, revision))
}

/// A scan's iterator: one request per page of keys.
struct Pages {
    cluster: Arc<Cluster>,
    prefix_len: usize,
    /// The etcd keys `[start, end)` not read yet; `None` once the range is exhausted.
    rest: Option<(Vec<u8>, Vec<u8>)>,
    reverse: bool,
    /// The revision every page is read at; 0: each at the latest.
    revision: i64,
    page: std::vec::IntoIter<(Vec<u8>, Bytes)>,
}

impl Pages {
    fn new(tree: &EtcdTree, range: &KeyRange, reverse: bool, revision: i64) -> Self {
        Self {
            cluster: Arc::clone(&tree.cluster),
            prefix_len: tree.prefix.len(),
            rest: (!range.is_empty()).then(|| etcd_range(&tree.prefix, range)),
            reverse,
            revision,
            page: Vec::new().into_iter(),
        }
    }
}

impl Iterator for Pages {
    type Item = Result<(Vec<u8>, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((mut key, value)) = self.page.next() {
                return Some(Ok((key.split_off(self.prefix_len), value)));
            }
            let (start, end) = self.rest.take()?;
            let fetched = self.cluster.run(scan_page(
                &self.cluster,
                (&start, &end),
                self.reverse,
                SCAN_PAGE,
                self.revision,
            ));
            let (entries, more, _) = match fetched {
                Ok(page) => page,
                Err(e) => return Some(Err(e)),
            };
            if more && let Some((last, _)) = entries.last() {
                self.rest = Some(if self.reverse {
                    (start, last.clone())
                } else {
                    ([&last[..], &[0]].concat(), end)
                });
            }
            self.page = entries.into_iter();
        }
    }
}

/// A snapshot: each keyspace's pages at one revision, in turn.
struct EtcdSnapshot {
    pages: Vec<Pages>,
    /// The keyspace being read.
    at: usize,
}

impl Snapshot for EtcdSnapshot {
    fn next_batch(&mut self, limit: usize) -> Result<Option<SnapshotBatch>> {
        let limit = limit.max(1);
        while let Some(pages) = self.pages.get_mut(self.at) {
            let keyspace = self.at;
            let entries: Vec<_> = pages.by_ref().take(limit).collect::<Result<_>>()?;
            if entries.len() < limit {
                self.at += 1;
            }
            if !entries.is_empty() {
                return Ok(Some((keyspace, entries)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::etcd::*;

    #[test]
    fn keys_of_one_keyspace_stay_within_its_prefix() {
        let ns = b"revkv\0shop\0";
        let (start, end) = etcd_range(&etcd_key(ns, "c/users", b""), &KeyRange::prefix(b""));
        for key in [&b""[..], b"a", b"\xff\xff", b"zzz"] {
            let full = etcd_key(ns, "c/users", key);
            assert!(full >= start && full < end, "{key:?}");
        }
        // A keyspace whose name extends another's never falls in its range.
        let other = etcd_key(ns, "c/users2", b"a");
        assert!(!(other >= start && other < end));
    }
}
