//! The embedded engine: sled 0.34 in a local directory, with revkv's own protocol making its
//! single-key writes into atomic conditional commits.
//!
//! sled's own transactions and batches are not used (see [`crate::backend`]). Instead a commit
//! holds the striped locks of every key it compares or writes, checks its compares, and writes
//! in an order that a crash cannot split visibly: behind a change feed entry or a journal
//! frame that lists all of its writes, or behind an intent when several records change (see
//! [`intent`]). Versions come from a store-wide leased [`Sequence`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

mod copy_on_write;
pub(crate) mod feed;
pub(crate) mod intent;
mod journal;
mod ranges;
mod sequence;

use self::copy_on_write::Snapshots;
use self::feed::{Feed, Recorded};
use self::journal::Journal;
use self::ranges::RangeLocks;
use self::sequence::Sequence;
use crate::backend::{Backend, Memory, SledBackend, Tree};
use crate::clock::StoreClock;
use crate::durability::{Durability, GroupCommit};
use crate::engine::commit::{Commit, LoggedWrite, Route, Write};
use crate::engine::contract::{Engine, EngineFuture, Paused, check_format, done, under_way};
use crate::engine::feed::{ChangeFeed, Retention};
use crate::engine::keyspace::Keyspace;
use crate::engine::snapshot::Snapshot;
use crate::locks::LockTable;
use crate::meta::Meta;
use crate::{Error, Result, Version};

/// The file that marks a store whose first open was durable (see [`LocalEngine::open`]).
const CREATED: &str = "revkv.created";

/// The local engine's own options (set through [`StoreBuilder`](crate::StoreBuilder)).
#[derive(Clone, Copy)]
pub(crate) struct LocalOptions {
    pub(crate) cache_bytes: u64,
    pub(crate) min_free_bytes: u64,
    pub(crate) durability: Durability,
    #[cfg(feature = "fault-injection")]
    pub(crate) crash_after_writes: Option<u64>,
}

impl Default for LocalOptions {
    /// A 256 MiB page cache, a 64 MiB free-space reserve, durable at each flush.
    fn default() -> Self {
        Self {
            cache_bytes: 256 * 1024 * 1024,
            min_free_bytes: 64 * 1024 * 1024,
            durability: Durability::OnFlush,
            #[cfg(feature = "fault-injection")]
            crash_after_writes: None,
        }
    }
}

/// Where the local engine keeps its trees.
#[derive(Clone, Copy)]
pub(crate) enum Storage<'a> {
    /// sled, in this directory.
    Dir(&'a Path),
    /// In memory, with nothing durable: no journal, whatever the durability mode.
    Memory(&'a Memory),
}

/// Whether the previous session ended by closing the store (meta key `session`).
#[derive(Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) enum Session {
    Open,
    Closed,
}

/// The local engine: its state behind an `Arc`, which a durable write of an async caller
/// takes to the thread that waits for its group commit.
pub(crate) struct LocalEngine(Arc<Core>);

impl std::ops::Deref for LocalEngine {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

pub(crate) struct Core {
    backend: Arc<dyn Backend>,
    meta: Arc<Meta>,
    intents: Arc<dyn Tree>,
    /// Names the intents of this session; those of earlier sessions are gone once open.
    intent_ids: AtomicU64,
    locks: LockTable,
    ranges: RangeLocks,
    snapshots: Arc<Snapshots>,
    versions: Sequence,
    feed: Option<Feed>,
    clock: StoreClock,
    /// Present in [`Durability::Immediate`] mode: writes are durable in it before they are
    /// applied.
    journal: Option<Journal>,
    group_commit: GroupCommit,
    poisoned: AtomicBool,
}

impl LocalEngine {
    /// Opens the engine on `storage`, completing whatever a crash interrupted: intents, the
    /// change feed's redo entries and the journal's frames.
    pub(crate) fn open(
        storage: Storage<'_>,
        options: LocalOptions,
        change_feed: Option<Retention>,
        clock: StoreClock,
    ) -> Result<(Self, Arc<Meta>)> {
        // Present once a first open of the store was durable: from then on the engine must
        // find revkv's data in it.
        let created = match storage {
            Storage::Dir(dir) => Some(dir.join(CREATED)),
            Storage::Memory(_) => None,
        };
        let backend: Arc<dyn Backend> = match storage {
            Storage::Dir(dir) => Arc::new(SledBackend::open(
                dir,
                options.cache_bytes,
                options.min_free_bytes,
            )?),
            Storage::Memory(memory) => Arc::new(memory.claim()?),
        };
        #[cfg(feature = "fault-injection")]
        let backend: Arc<dyn Backend> = match options.crash_after_writes {
            Some(writes) => Arc::new(crate::backend::CrashPoint::new(backend, writes)),
            None => backend,
        };
        let meta = Arc::new(Meta::new(backend.tree("revkv/meta")?));
        let was_created = created.as_ref().is_some_and(|created| created.exists());
        if was_created && meta.get::<u8>("format")?.is_none() {
            // sled 0.34 reads a log it cannot make sense of as an empty store.
            return Err(Error::Corrupt {
                location: "the store's log".into(),
                reason: "it holds bytes but no revkv store: damaged, or not revkv's".into(),
            });
        }
        check_format(&meta)?;
        let intents = backend.tree("revkv/intents")?;
        intent::replay(backend.as_ref(), intents.as_ref())?;
        let crashed = meta.get::<Session>("session")? == Some(Session::Open);
        let feed = change_feed
            .map(|retention| Feed::open(&backend, Arc::clone(&meta), retention, crashed))
            .transpose()?;
        if crashed {
            // The last session crashed: index entries of writes it was doing may be left over.
            for name in meta.names("collection/")? {
                meta.put(&format!("sweep/{name}"), &())?;
            }
        }
        let mark_feed_applied = || mark_applied(feed.as_ref(), &clock);
        let journal = match (storage, options.durability) {
            (Storage::Memory(_), _) => None,
            (Storage::Dir(dir), Durability::Immediate) => Some(Journal::open(
                dir,
                Arc::clone(&meta),
                Arc::clone(&backend),
                &mark_feed_applied,
            )?),
            (Storage::Dir(dir), Durability::OnFlush) => {
                // Last opened in Immediate mode, its journal may hold writes the engine lost.
                journal::recover_and_remove(dir, &meta, backend.as_ref(), &mark_feed_applied)?;
                None
            }
        };
        meta.put("session", &Session::Open)?;
        // Resuming the sequence syncs, which also makes the marks above durable.
        let versions = Sequence::resume("version-lease", Arc::clone(&meta), Arc::clone(&backend))?;
        if let Some(created) = created.filter(|_| !was_created) {
            std::fs::File::create(created)?;
        }
        let engine = Core {
            backend,
            meta: Arc::clone(&meta),
            intents,
            intent_ids: AtomicU64::new(1),
            locks: LockTable::new(),
            ranges: RangeLocks::default(),
            snapshots: Arc::default(),
            versions,
            feed,
            clock,
            journal,
            group_commit: GroupCommit::new(),
            poisoned: AtomicBool::new(false),
        };
        Ok((Self(Arc::new(engine)), meta))
    }
}

impl Core {
    /// Runs `apply`, the single-key writes of one logical write, as [`Self::write_all`] does,
    /// after storing `entry`, the change feed's entry for them, if there is one: the entry goes
    /// first because it is also their redo record. On the [`Route::Logged`] route in
    /// [`Durability::Immediate`] mode, the entry and `writes` are made durable in one journal
    /// frame before any is applied.
    fn commit<R>(
        &self,
        route: Route,
        entry: Option<&Recorded<'_>>,
        writes: &[Write<'_>],
        apply: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        let apply = || {
            entry.map_or(Ok(()), Recorded::store)?;
            apply()
        };
        match &self.journal {
            Some(journal) if route == Route::Logged => {
                let frame: Vec<LoggedWrite> = (entry.map(Recorded::write).into_iter())
                    .chain(writes.iter().map(LoggedWrite::of))
                    .collect();
                self.write_all(|| journal.commit(&frame, apply, &|| self.mark_feed_applied()))
            }
            _ => self.write_all(apply),
        }
    }

    /// Whether writes on the [`Route::Logged`] route go through the journal.
    fn logs_writes(&self) -> bool {
        self.journal.is_some()
    }

    /// Runs the single-key writes of one logical write, if the engine takes it
    /// ([`Backend::admit`]: a refusal stores nothing and leaves the store writable). If one
    /// of them fails, the store is poisoned until reopened: another write of the same logical
    /// write may have succeeded, and after an I/O error the engine itself cannot be trusted to
    /// persist what it accepts (sled 0.34 can hang in its next flush once a write failed on a
    /// full disk).
    fn write_all<R>(&self, writes: impl FnOnce() -> Result<R>) -> Result<R> {
        self.backend.admit()?;
        writes().inspect_err(|_| self.poisoned.store(true, Ordering::Release))
    }

    /// The commonest commit, one write to the one key it compares, as one compare-and-swap,
    /// the engine's cheapest write; `None` for any other commit, or where a feed entry or a
    /// journal frame must precede the write.
    fn swap_one(&self, commit: &Commit<'_>) -> Result<Option<bool>> {
        let ([compare], [write], []) = (&commit.compares[..], &commit.writes[..], commit.ranges)
        else {
            return Ok(None);
        };
        let logged = commit.route == Route::Logged && self.logs_writes();
        let same_key = compare.keyspace.name == write.keyspace.name && compare.key == write.key;
        if !same_key || self.feed.is_some() || logged {
            return Ok(None);
        }
        self.check_writable()?;
        self.snapshots.preserve(&commit.writes)?;
        let tree = &write.keyspace.tree;
        self.write_all(|| tree.swap(write.key, compare.holds, write.value))
            .map(Some)
    }

    /// Holds the lock of every key the commit compares or writes, and the ranges it reads
    /// ([`RangeLocks`]), from the first compare until the last write; see the module docs for
    /// crashes.
    fn commit_now(&self, commit: &Commit<'_>) -> Result<bool> {
        let started = Instant::now();
        let committed = self.commit_locked(commit);
        metrics::histogram!("revkv_commit_seconds", "engine" => "local")
            .record(started.elapsed().as_secs_f64());
        committed
    }

    /// [`Self::commit_now`], untimed.
    fn commit_locked(&self, commit: &Commit<'_>) -> Result<bool> {
        let locks = &self.locks;
        let ids = commit
            .compares
            .iter()
            .map(|c| c.keyspace.lock_id(locks, c.key))
            .chain(
                commit
                    .writes
                    .iter()
                    .map(|w| w.keyspace.lock_id(locks, w.key)),
            );
        let mut rest = ids.clone();
        let _held = match rest.next() {
            None if commit.ranges.is_empty() => return Ok(true), // compares, writes nothing
            None => None,
            // One key, the commonest commit, takes its lock without collecting the ids.
            Some(first) if rest.all(|id| id == first) => Some(locks.lock(first)),
            Some(_) => Some(locks.lock_all(ids.collect())),
        };
        if let Some(swapped) = self.swap_one(commit)? {
            return Ok(swapped);
        }
        let _ranges = (!commit.ranges.is_empty()).then(|| self.ranges.hold(commit));
        for compare in &commit.compares {
            if compare.keyspace.tree.get(compare.key)?.as_deref() != compare.holds {
                return Ok(false);
            }
        }
        if !ranges_unchanged(commit)? {
            return Ok(false);
        }
        if commit.writes.is_empty() {
            return Ok(true);
        }
        self.check_writable()?;
        self.snapshots.preserve(&commit.writes)?;
        // With a change feed, the commit's entry, which `Self::commit` stores first.
        let recorded = match &self.feed {
            Some(feed) => Some(feed.record(commit.entry_writes(), commit.modified)?),
            None => None,
        };
        let records = commit.writes.iter().filter(|w| w.record.is_some()).count();
        self.commit(commit.route, recorded.as_ref(), &commit.writes, || {
            if recorded.is_none() && records > 1 && !self.logs_writes() {
                // Without a feed entry or a journal frame, several records need an intent.
                let id = self.intent_ids.fetch_add(1, Ordering::Relaxed);
                intent::apply_atomically(self.intents.as_ref(), id, &commit.writes)
            } else {
                intent::apply_in_order(&commit.writes)
            }
        })?;
        Ok(true)
    }

    fn mark_feed_applied(&self) -> Result<()> {
        mark_applied(self.feed.as_ref(), &self.clock)
    }

    /// Fails fast once a multi-key write has failed halfway (see [`Error::Poisoned`]).
    fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }
}

impl Engine for LocalEngine {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        self.backend.tree(name)
    }

    /// At once, but for a durable write of an async caller: its group commit is waited for
    /// on a thread of a pool, not on the caller's (a blocking caller's thread joins the group
    /// itself). The pool's thread takes its own copy of the commit, so a caller that stops
    /// waiting leaves the commit to complete or fail as a whole.
    fn commit<'a>(&'a self, commit: &'a Commit<'_>) -> EngineFuture<'a, bool> {
        let durable = commit.route == Route::Logged && self.logs_writes();
        if !durable || commit.writes.is_empty() || crate::blocking::on_blocking_thread() {
            return done(self.commit_now(commit));
        }
        let (core, commit) = (Arc::clone(&self.0), commit.to_owned());
        under_way(::blocking::unblock(move || {
            core.commit_now(&commit.commit())
        }))
    }

    fn commit_if(&self, commit: &Commit<'_>) -> Result<bool> {
        self.commit_now(commit)
    }

    /// From the store-wide sequence: above every version issued before, so above `above`,
    /// which was read before this call.
    fn next_version(&self, _above: Option<Version>) -> EngineFuture<'_, Version> {
        done(self.versions.next())
    }

    /// A failed sync poisons the store: after `fsync` fails, the kernel may already have
    /// dropped the unsynced pages, so a later successful sync would prove nothing.
    fn sync(&self) -> Result<()> {
        match &self.journal {
            // Everything acknowledged is durable already; this makes the engine durable on
            // its own, so that the journal can start over.
            Some(journal) => journal.checkpoint(&|| self.mark_feed_applied()),
            None => self.group_commit.sync(|| {
                self.mark_feed_applied()?;
                self.backend.sync()
            }),
        }
        .inspect_err(|_| self.poisoned.store(true, Ordering::Release))
    }

    /// In [`Durability::Immediate`] mode, syncs; writes are otherwise durable at the next
    /// sync anyway.
    fn make_direct_writes_durable(&self) -> Result<()> {
        match self.journal {
            Some(_) => self.sync(),
            None => Ok(()),
        }
    }

    fn feed(&self) -> Option<&dyn ChangeFeed> {
        self.feed.as_ref().map(|feed| feed as &dyn ChangeFeed)
    }

    fn pause_commits(&self) -> Paused<'_> {
        Some(self.locks.lock_everything())
    }

    /// Copy-on-write (see [`copy_on_write`]), taken between two commits.
    fn snapshot(&self, keyspaces: Vec<Keyspace>) -> Result<Box<dyn Snapshot>> {
        let _between_commits = self.locks.lock_everything();
        Ok(Box::new(self.snapshots.take(keyspaces)))
    }

    fn version_mark(&self) -> Result<u64> {
        Ok(self.versions.upcoming())
    }

    fn feed_position(&self) -> Result<Option<u64>> {
        feed::newest_position(self.backend.as_ref())
    }

    fn raise_versions(&self, floor: u64) -> Result<()> {
        self.versions.raise(floor)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Mark a clean close, so the next open skips the crash sweep. A poisoned store is
        // left marked open on purpose. Errors cannot be reported from here; the next open
        // then simply sweeps.
        let applied = self.mark_feed_applied();
        if !self.poisoned.load(Ordering::Acquire)
            && applied.is_ok()
            && self
                .journal
                .as_ref()
                .map_or(Ok(()), Journal::retire)
                .is_ok()
            && self.versions.retire().is_ok()
            && self.meta.put("session", &Session::Closed).is_ok()
        {
            let _ = self.backend.sync();
        }
    }
}

/// Whether no key entered a range the commit read: each holds only keys its scan saw.
fn ranges_unchanged(commit: &Commit<'_>) -> Result<bool> {
    for read in commit.ranges {
        for entry in read.keyspace.tree.range(&read.range, false) {
            let (key, _) = entry?;
            if read.keys.binary_search(&key).is_err() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Records that the change feed's finished entries are applied (see [`Feed::mark_applied`]).
fn mark_applied(feed: Option<&Feed>, clock: &StoreClock) -> Result<()> {
    feed.map_or(Ok(()), |feed| feed.mark_applied(clock.now()))
}
