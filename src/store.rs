//! The store handle: opening, crash recovery, flushing and shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tempfile::TempDir;

use crate::backend::Memory;
use crate::clock::{Clock, StoreClock, SystemClock};
use crate::collection::schema::Limits;
use crate::collection::{CollectionBuilder, Combiners, Registered};
use crate::durability::Durability;
use crate::engine::{ChangeFeed, Retention};
use crate::engine::{Engine, LocalEngine, LocalOptions, Storage};
#[cfg(feature = "etcd")]
use crate::engine::{EtcdEngine, EtcdOptions};
use crate::feed::Changes;
use crate::flusher::Flusher;
use crate::locks::Turns;
use crate::meta::Meta;
use crate::stats::{Observer, Stats};
use crate::verify::Report;
use crate::watch::Watch;
use crate::{Error, Result};

/// An open revkv store. Cheap to clone; all clones share one database.
///
/// The store's directory is held exclusively while any clone (or collection opened from it)
/// is alive; opening it a second time, in this process or another, is [`Error::Locked`].
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

/// Options for opening a [`Store`]; start from [`Store::builder`].
#[must_use]
pub struct StoreBuilder {
    path: Option<PathBuf>,
    memory: Option<Memory>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    sweep_every: Option<Duration>,
    change_feed: Option<Retention>,
    /// Each engine's own options: the one the store opens on reads its own.
    local: LocalOptions,
    #[cfg(feature = "etcd")]
    etcd: EtcdOptions,
}

pub(crate) struct Shared {
    pub(crate) engine: Box<dyn Engine>,
    pub(crate) meta: Arc<Meta>,
    pub(crate) turns: Turns,
    pub(crate) combiners: Combiners,
    pub(crate) limits: Limits,
    pub(crate) clock: StoreClock,
    pub(crate) observer: Observer,
    pub(crate) flusher: Flusher,
    /// Open collections by name, for `verify`, sweeping and opening a name a second time.
    /// Weak: a collection is open while a handle on it lives, and an expiry handler that holds
    /// another collection must not keep the store alive through the store itself.
    pub(crate) registry: Mutex<BTreeMap<String, Weak<dyn Registered>>>,
    // Declared last: a temporary store's directory is removed after everything above is closed.
    _temporary: Option<TempDir>,
}

impl Store {
    /// Opens (creating if needed) the store in the directory `path`, with default limits.
    ///
    /// # Errors
    /// [`Error::Locked`] if the store is already open, [`Error::UnsupportedFormat`] if a newer
    /// revkv wrote it, [`Error::Io`] or [`Error::Corrupt`] if it cannot be read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().path(path).open()
    }

    /// Opens a new, empty store in a fresh temporary directory that is removed when the last
    /// clone of the store (and of its collections) is dropped. For tests and examples.
    ///
    /// With the `etcd` feature and the environment variable `REVKV_ETCD_ENDPOINTS` set (the
    /// client URLs of an etcd cluster, separated by commas), the store is a fresh namespace
    /// on that cluster instead, removed in the same way: so one test suite runs on either
    /// engine, revkv's own included. A [`StoreBuilder`] given no path does the same.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created; for etcd, as [`StoreBuilder::open`].
    pub fn temporary() -> Result<Self> {
        Self::builder().open()
    }

    /// Options for opening a store: where, and the size limits.
    ///
    /// ```
    /// let store = revkv::Store::builder().max_value_len(64 * 1024).open()?;
    /// # Ok::<(), revkv::Error>(())
    /// ```
    pub fn builder() -> StoreBuilder {
        StoreBuilder {
            path: None,
            memory: None,
            limits: Limits {
                max_key_len: 1024,
                max_value_len: 16 * 1024 * 1024,
            },
            clock: Arc::new(SystemClock),
            sweep_every: None,
            change_feed: None,
            local: LocalOptions::default(),
            #[cfg(feature = "etcd")]
            etcd: EtcdOptions::default(),
        }
    }

    /// Starts declaring the collection `name` of values of type `T`; finish with
    /// [`CollectionBuilder::open`].
    ///
    /// Names are 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
    pub fn collection<T>(&self, name: &str) -> CollectionBuilder<T>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        CollectionBuilder::new(self.clone(), name)
    }

    /// Makes every write that returned before this call durable: it survives a process crash
    /// and a power loss. This is a full barrier (`fdatasync` of the engine's log and of any
    /// large-value files), not only the engine's own flush.
    ///
    /// # Errors
    /// [`Error::Io`] if the operating system cannot write or sync.
    ///
    /// Concurrent calls share syncs (group commit).
    pub fn flush(&self) -> Result<()> {
        self.shared.engine.sync()
    }

    /// Conflict and retry counters since the store was opened, and the keys with the most
    /// conflicts lately. Every conflict is also a `tracing` event at target `revkv::conflict`.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.observer.snapshot(self.shared.clock.now())
    }

    /// The changes committed after position `since`, in commit order, up to the last commit
    /// finished now. Start from 0; then resume from the `seq` of the last change seen: no
    /// change is ever skipped or repeated, across restarts too. (The changes of one
    /// transaction come together, in no particular order among themselves.) Once retention
    /// has pruned anything, 0 too is older than the feed: read the records in full, then
    /// follow the feed from the oldest position it holds.
    ///
    /// # Errors
    /// [`Error::NoChangeFeed`] without [`StoreBuilder::change_feed`];
    /// [`Error::HistoryCompacted`] if changes after `since` were pruned.
    pub fn changes_since(&self, since: u64) -> Result<Changes> {
        Ok(Changes::new(since, self.feed()?.since(since)?))
    }

    /// Follows the change feed from position `since`, waiting for new commits without polling.
    ///
    /// # Errors
    /// As [`Store::changes_since`].
    pub fn watch(&self, since: u64) -> Result<Watch> {
        self.feed()?;
        Ok(Watch::new(self.clone(), since))
    }

    pub(crate) fn feed(&self) -> Result<&dyn ChangeFeed> {
        self.shared.engine.feed().ok_or(Error::NoChangeFeed)
    }

    /// Removes every record of the open collections whose time to live has passed, each in a
    /// transaction with its collection's expiry handler; returns how many. A store opened with
    /// [`StoreBuilder::sweep_every`] also does this in the background.
    ///
    /// # Errors
    /// Storage errors, and whatever an expiry handler returns (that record then stays until
    /// the next sweep).
    pub fn sweep_expired(&self) -> Result<usize> {
        let collections = self.shared.open_collections();
        collections
            .into_iter()
            .map(|collection| collection.sweep_expired(self))
            .sum()
    }

    /// Checks every open collection: each record's unique values have index entries pointing
    /// at it, every index entry points at a record that holds its value, and every record is
    /// in a state its state machine can reach. Writers wait while it runs, so the report is
    /// exact even under load.
    ///
    /// Collections the store holds but this process has not opened are checked as far as
    /// that can be done without their code (the `revkv verify` command's check): every record
    /// decodes, and each index has exactly one entry per record, naming a record that exists.
    ///
    /// # Errors
    /// Storage errors; problems with the data itself are reported, not returned as errors.
    pub fn verify(&self) -> Result<Report> {
        let collections = self.shared.open_collections();
        let _all = self.shared.engine.pause_commits();
        let mut report = Report::default();
        let now = self.shared.clock.now();
        for collection in collections {
            collection.verify_into(&mut report, now)?;
        }
        self.verify_stored(&mut report)?;
        Ok(report)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl StoreBuilder {
    /// Keep the store in `path` (created if needed). Without a path, the store is temporary,
    /// as [`Store::temporary`] says.
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self.memory = None;
        self
    }

    /// Keep the store in `memory` instead of a directory (see [`Memory`]): nothing is durable
    /// beyond the process, so the durability mode, cache size and free-space reserve do not
    /// apply. Replaces an earlier [`StoreBuilder::path`].
    pub fn memory(mut self, memory: &Memory) -> Self {
        self.memory = Some(memory.clone());
        self.path = None;
        self
    }

    /// The longest key, and unique-index value, accepted, in bytes (default 1 KiB).
    pub fn max_key_len(mut self, bytes: usize) -> Self {
        self.limits.max_key_len = bytes;
        self
    }

    /// The largest encoded value accepted, in bytes (default 16 MiB).
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.limits.max_value_len = bytes;
        self
    }

    /// Free space to keep on the store's file system (default 64 MiB): writes are refused with
    /// [`Error::DiskFull`] below it, because the storage engine does not recover cleanly
    /// from a full disk. 0 turns the check off.
    pub fn min_free_bytes(mut self, bytes: u64) -> Self {
        self.local.min_free_bytes = bytes;
        self
    }

    /// When writes become durable (default: [`Durability::OnFlush`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.local.durability = durability;
        self
    }

    /// The clock for modification times and expiry (default: the system clock). Tests pass a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sweeps expired records in a background thread every `interval` (by default there is
    /// no background sweeper; [`Store::sweep_expired`] sweeps on demand). The thread holds
    /// the store only while it sweeps and ends after the store is dropped.
    pub fn sweep_every(mut self, interval: Duration) -> Self {
        self.sweep_every = Some(interval);
        self
    }

    /// Keeps a change feed of every committed write ([`Store::changes_since`],
    /// [`Store::watch`]), retaining what `retention` says. Each commit then also writes one
    /// feed entry, which doubles as its redo record. On etcd, once one process opens a store
    /// with a change feed, every process that opens it records the feed (see
    /// `StoreBuilder::etcd`, feature `etcd`, for retention).
    pub fn change_feed(mut self, retention: Retention) -> Self {
        self.change_feed = Some(retention);
        self
    }

    /// Memory the storage engine may use for its page cache (default 256 MiB).
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.local.cache_bytes = bytes;
        self
    }

    /// Simulates a crash for tests: after `writes` single-key writes to the engine (revkv's
    /// own bookkeeping at open included), every write fails with [`Error::Io`], so the engine
    /// keeps exactly the writes before that point. Drop the store and reopen it without this
    /// option to run crash recovery. Needs the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn crash_after_writes(mut self, writes: u64) -> Self {
        self.local.crash_after_writes = Some(writes);
        self
    }

    /// Keeps the store in an etcd (v3 API) cluster instead of a local directory. `endpoints`
    /// are the client URLs of its members (`http://127.0.0.1:2379`); the client spreads
    /// requests over them and carries on through the others when one fails. Any number of
    /// processes may open the same store (see [`StoreBuilder::namespace`]) at once: every
    /// write is one etcd transaction whose compares decide it, so unique indexes, state
    /// machines and transactions hold across processes. Needs the `etcd` feature.
    ///
    /// A write is durable when it returns (a quorum of members has it on disk), so
    /// [`Store::flush`] does nothing and the durability mode, cache size and free-space
    /// reserve do not apply. A commit is limited by etcd's transaction and request sizes
    /// ([`Error::CommitTooLarge`]). The change feed's retention does not apply either: the
    /// feed keeps what etcd keeps, until the cluster compacts its history (`etcd
    /// --auto-compaction-retention`, `etcdctl compact`); reading from a position before that
    /// is [`Error::HistoryCompacted`] if changes after it were compacted away.
    ///
    /// Round trips: a read is one; an insert is one transaction; an update or delete of a
    /// version this process has read or written is one transaction, without reading the
    /// record again (the transaction compares the record as this process saw it, and reads
    /// again only when someone else changed it). A call rides out a member's failure or a
    /// leader election, and fails with [`Error::Unavailable`] only when the cluster stays
    /// unavailable past [`StoreBuilder::etcd_deadline`].
    ///
    /// Versions come from blocks every process leases from the store: unique across
    /// processes, so never reused for a key, and above the version of the record a write
    /// replaces; a key deleted and created again may start below the version it had before,
    /// but never at a version it had. [`Store::verify`] cannot pause other processes: it is
    /// exact only while none of them writes. Every process must declare a collection's
    /// unique indexes alike: one that opens it without an index drops that index for all of
    /// them.
    #[cfg(feature = "etcd")]
    pub fn etcd<E: Into<String>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        self.etcd.endpoints = Some(endpoints.into_iter().map(Into::into).collect());
        self
    }

    /// The store's name in its etcd cluster ([`StoreBuilder::etcd`], before or after this),
    /// which every process of the store opens. Without a name the store is temporary: a
    /// fresh namespace, removed when the store is dropped.
    ///
    /// Names are 1 to 64 ASCII letters, digits, `_`, `-` or `.` ([`Error::InvalidName`] when
    /// the store opens otherwise). Every key of the store lies under the prefix
    /// `revkv/<name>/`, so that an operator grants a role exactly one store with
    /// `etcdctl role grant-permission --prefix=true ROLE readwrite revkv/<name>/`.
    #[cfg(feature = "etcd")]
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.etcd.namespace = Some(name.into());
        self
    }

    /// Connects to the etcd cluster over TLS (`https://` endpoints), trusting the certificate
    /// authority `tls` names and presenting its client certificate if it has one. A cluster
    /// that maps a client certificate's common name to a user (`etcd --client-cert-auth` with
    /// auth enabled) needs nothing more. Needs the `etcd` feature.
    ///
    /// A handshake that fails (a certificate authority that did not sign the members'
    /// certificates, an expired certificate) is [`Error::EtcdCertificate`] at once, never
    /// retried.
    #[cfg(feature = "etcd")]
    pub fn etcd_tls(mut self, tls: crate::EtcdTls) -> Self {
        self.etcd.tls = Some(tls);
        self
    }

    /// Authenticates to the etcd cluster as the user `name` with `password`; the client
    /// renews its token as it expires. A wrong name or password is
    /// [`Error::EtcdAuthentication`]; a user whose roles do not grant the store's prefix
    /// `revkv/<namespace>/` is [`Error::EtcdPermission`], which names the prefix to grant.
    /// Neither is retried. Needs the `etcd` feature.
    #[cfg(feature = "etcd")]
    pub fn etcd_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.etcd.user = Some((name.into(), password.into()));
        self
    }

    /// Opens an etcd store in the key layout revkv used before its namespaces became the
    /// prefixes `revkv/<namespace>/` that an operator can grant (see [`Error::LegacyLayout`]),
    /// so that `revkv copy` can move it to the current layout. Needs the `etcd` feature.
    #[cfg(feature = "etcd")]
    pub fn etcd_legacy_layout(mut self) -> Self {
        self.etcd.legacy_layout = true;
        self
    }

    /// How long a call on an etcd store keeps trying while the cluster cannot answer (default
    /// 15 seconds). A member that dies, or a leader election, holds a call up until the other
    /// members answer, typically about one election timeout; a cluster that stays
    /// unavailable past the deadline fails the call with [`Error::Unavailable`].
    #[cfg(feature = "etcd")]
    pub fn etcd_deadline(mut self, deadline: Duration) -> Self {
        self.etcd.deadline = Some(deadline);
        self
    }

    /// Opens the store, completing any transaction a crash interrupted.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open(self) -> Result<Store> {
        #[cfg(feature = "etcd")]
        if self.path.is_none()
            && self.memory.is_none()
            && self.etcd.endpoints.is_none()
            && let Ok(endpoints) = std::env::var("REVKV_ETCD_ENDPOINTS")
            && !endpoints.is_empty()
        {
            return self.etcd(endpoints.split(',')).open();
        }
        let clock = StoreClock::new(self.clock.clone());
        #[cfg(feature = "etcd")]
        if let Some(endpoints) = &self.etcd.endpoints {
            let feed = self.change_feed.is_some();
            let (engine, meta) = EtcdEngine::open(endpoints, &self.etcd, feed)?;
            return self.finish(Box::new(engine), meta, clock, None);
        }
        let open =
            |storage| LocalEngine::open(storage, self.local, self.change_feed, clock.clone());
        let ((engine, meta), temporary) = match (&self.memory, &self.path) {
            (Some(memory), _) => (open(Storage::Memory(memory))?, None),
            (None, Some(path)) => (open(Storage::Dir(path))?, None),
            (None, None) => {
                let temp = tempfile::Builder::new().prefix("revkv-").tempdir()?;
                (open(Storage::Dir(temp.path()))?, Some(temp))
            }
        };
        self.finish(Box::new(engine), meta, clock, temporary)
    }

    /// The store on `engine`, with what every engine shares.
    fn finish(
        self,
        engine: Box<dyn Engine>,
        meta: Arc<Meta>,
        clock: StoreClock,
        temporary: Option<TempDir>,
    ) -> Result<Store> {
        let store = Store {
            shared: Arc::new(Shared {
                engine,
                meta,
                turns: Turns::new(),
                combiners: Combiners::new(),
                limits: self.limits,
                clock,
                observer: Observer::default(),
                flusher: Flusher::default(),
                registry: Mutex::new(BTreeMap::new()),
                _temporary: temporary,
            }),
        };
        if let Some(interval) = self.sweep_every {
            spawn_sweeper(Arc::downgrade(&store.shared), interval)?;
        }
        Ok(store)
    }
}

/// Sweeps expired records every `interval` until the store is gone.
fn spawn_sweeper(store: Weak<Shared>, interval: Duration) -> Result<()> {
    std::thread::Builder::new()
        .name("revkv-sweeper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(shared) = store.upgrade() else {
                    return;
                };
                if let Err(error) = (Store { shared }).sweep_expired() {
                    tracing::warn!(target: "revkv::expiry", %error, "sweeping expired records failed");
                }
            }
        })?;
    Ok(())
}

impl Shared {
    /// The collections with a live handle.
    pub(crate) fn open_collections(&self) -> Vec<Arc<dyn Registered>> {
        self.registry
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Passes `result` through, counting and logging it if it is a conflict.
    pub(crate) fn observe<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(Error::Conflict(conflict)) = &result {
            self.observer.conflict(conflict, self.clock.now());
        }
        result
    }
}
