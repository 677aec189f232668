//! The change feed: every committed write, in commit order, resumable from any position still
//! retained.
//!
//! Each commit (a single write or a transaction) appends one *entry* before it applies its
//! writes: the entry lists every single-key write of the commit and, for the records among
//! them, the change a reader sees. The entry is also the commit's redo record: after a crash,
//! reopening the store re-applies, in order, the writes of every entry not yet known to be
//! applied, so a commit is wholly there or not at all, and the feed never shows a change that
//! was lost or misses one that was kept.
//!
//! Positions come from a leased sequence like versions: strictly increasing, never reused, not
//! contiguous (a restart skips ahead). A reader only ever sees positions below the oldest
//! commit still in flight, so it can resume from the last position it saw without missing a
//! commit that finished later with a smaller one.
//!
//! That is the local engine's feed. What a reader sees ([`Change`], [`Changes`], the
//! [`ChangeFeed`] it reads) is shared with the etcd engine, which keeps its feed in etcd
//! (`engine/etcd/feed.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Entries, Tree};
use crate::codec::{self, FEED};
use crate::commit::{Commit, Write};
use crate::meta::Meta;
use crate::sequence::Sequence;
use crate::txn::intent::{self, OwnedWrite};
use crate::{Error, Result, Version};

/// How much of the change feed a store keeps (see [`StoreBuilder::change_feed`]).
///
/// [`StoreBuilder::change_feed`]: crate::StoreBuilder::change_feed
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    max_changes: u64,
    max_age: Duration,
}

impl Retention {
    /// Keep changes whose position is within the last `max_changes` positions and that are
    /// younger than `max_age`.
    #[must_use]
    pub const fn new(max_changes: u64, max_age: Duration) -> Self {
        Self {
            max_changes,
            max_age,
        }
    }
}

impl Default for Retention {
    /// The last million positions, for up to seven days.
    fn default() -> Self {
        Self::new(1_000_000, Duration::from_secs(7 * 24 * 3600))
    }
}

/// What a change did to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The record was created.
    Insert,
    /// The record was replaced.
    Update,
    /// The record was deleted (or expired and was swept).
    Delete,
}

impl ChangeKind {
    /// The kind of a write that finds the record existing or not and leaves it there or not;
    /// `None` for a record created and deleted within one transaction, which changed nothing.
    pub(crate) fn of(existed: bool, exists: bool) -> Option<Self> {
        match (existed, exists) {
            (false, true) => Some(Self::Insert),
            (true, true) => Some(Self::Update),
            (true, false) => Some(Self::Delete),
            (false, false) => None,
        }
    }
}

/// One committed change, from [`Store::changes_since`](crate::Store::changes_since).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Change {
    /// Its position in the feed.
    pub seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's key.
    pub key: String,
    /// The version the change gave the record (for a delete, the version of the deletion).
    pub version: Version,
    /// What the change did.
    pub kind: ChangeKind,
    /// The record as written (`None` for a delete), still encoded: see [`Change::value`].
    record: Option<Vec<u8>>,
}

impl Change {
    /// The record's new value decoded as `T`, `None` for a delete.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the value does not decode as `T`.
    pub fn value<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let location = || format!("change {} of {}/{}", self.seq, self.collection, self.key);
        self.record
            .as_deref()
            .map(|bytes| {
                let (_, payload) =
                    codec::decode_record(bytes).map_err(|e| Error::decode(e, location()))?;
                codec::decode_payload(payload).map_err(|e| Error::decode(e, location()))
            })
            .transpose()
    }
}

/// One single-key write of a commit; `change` is set for the record writes a reader sees.
#[derive(Serialize, Deserialize)]
pub(crate) struct EntryWrite {
    pub(crate) tree: String,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) change: Option<(ChangeKind, Version)>,
}

/// A commit: its writes in the order they are applied. Stored under the position of its last
/// change, so that the entry holding any position is the first at or after it.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    first: u64,
    committed: u64,
    writes: Vec<EntryWrite>,
}

/// The engine tree of the entries.
const TREE: &str = "revkv/feed";
const APPLIED_KEY: &str = "feed-applied";
const PRUNED_KEY: &str = "feed-pruned";
/// Every this many commits, the next sync prunes at most `PRUNE_BATCH` old entries.
const PRUNE_EVERY: u64 = 1024;
const PRUNE_BATCH: usize = 256;

pub(crate) struct Feed {
    tree: Arc<dyn Tree>,
    positions: Sequence,
    retention: Retention,
    meta: Arc<Meta>,
    state: Mutex<InFlight>,
    advanced: Condvar,
    /// Every entry up to this position is known applied and durable (persisted at flush and
    /// close); older entries may be pruned, newer ones are replayed after a crash.
    applied: AtomicU64,
    /// The last position retention removed: a reader behind it has missed changes.
    pruned: AtomicU64,
    commits: AtomicU64,
    /// `PRUNE_EVERY` commits went by since the last prune.
    prune_due: AtomicBool,
}

#[derive(Default)]
struct InFlight {
    /// First positions of the commits between writing their entry and finishing.
    commits: BTreeSet<u64>,
    /// The last position handed out.
    issued: u64,
}

impl InFlight {
    /// Every commit at or below this position has finished.
    fn stable(&self) -> u64 {
        self.commits
            .first()
            .map_or(self.issued, |oldest| oldest - 1)
    }
}

/// A commit's entry, to be stored ahead of the commit's writes; dropping it marks the commit
/// finished.
pub(crate) struct Recorded<'f> {
    feed: &'f Feed,
    first: u64,
    key: [u8; 8],
    entry: Vec<u8>,
}

impl Recorded<'_> {
    /// Stores the entry.
    pub(crate) fn store(&self) -> Result<()> {
        self.feed.tree.put(&self.key, &self.entry)
    }

    /// The entry's write, as a journal frame lists it.
    pub(crate) fn write(&self) -> OwnedWrite {
        intent::owned((TREE, &self.key, Some(&self.entry)))
    }
}

impl Drop for Recorded<'_> {
    fn drop(&mut self) {
        let mut state = self.feed.state.lock();
        state.commits.remove(&self.first);
        drop(state);
        self.feed.advanced.notify_all();
    }
}

impl Feed {
    /// Opens the feed; after a crash (`replay`), re-applies every entry not known applied.
    pub(crate) fn open(
        backend: &Arc<dyn Backend>,
        meta: Arc<Meta>,
        retention: Retention,
        replay: bool,
    ) -> Result<Self> {
        let tree = backend.tree(TREE)?;
        let applied = meta.get::<u64>(APPLIED_KEY)?.unwrap_or(0);
        let pruned = meta.get::<u64>(PRUNED_KEY)?.unwrap_or(0);
        if replay {
            for entry in tree.scan_from(&(applied + 1).to_be_bytes()) {
                let (position, bytes) = entry?;
                for write in decode_entry(&position, &bytes)?.writes {
                    let value = write.value.as_deref();
                    intent::redo(backend.as_ref(), &write.tree, &write.key, value)?;
                }
            }
        }
        let positions = Sequence::resume("feed-lease", Arc::clone(&meta), Arc::clone(backend))?;
        // Everything of earlier sessions is below the first position of this one.
        let issued = positions.upcoming() - 1;
        Ok(Self {
            tree,
            positions,
            retention,
            meta,
            state: Mutex::new(InFlight {
                commits: BTreeSet::new(),
                issued,
            }),
            advanced: Condvar::new(),
            applied: AtomicU64::new(applied),
            pruned: AtomicU64::new(pruned),
            commits: AtomicU64::new(0),
            prune_due: AtomicBool::new(false),
        })
    }

    /// Makes the entry of a commit made of `writes`, in the order the caller then applies
    /// them; the local engine stores it first. The commit counts as finished when the
    /// returned guard drops.
    pub(crate) fn record(&self, writes: Vec<EntryWrite>, now: SystemTime) -> Result<Recorded<'_>> {
        let changes = writes.iter().filter(|w| w.change.is_some()).count();
        let count = u64::try_from(changes.max(1)).unwrap_or(u64::MAX);
        // Positions are handed out and marked in flight in one step, so a reader never sees
        // a later position while an earlier one is still being written.
        let first = {
            let mut state = self.state.lock();
            let first = self.positions.next_block(count)?;
            state.issued = state.issued.max(first + count - 1);
            state.commits.insert(first);
            first
        };
        let mut recorded = Recorded {
            feed: self,
            first,
            key: (first + count - 1).to_be_bytes(),
            entry: Vec::new(),
        };
        let entry = Entry {
            first,
            committed: codec::micros(now),
            writes,
        };
        recorded.entry = codec::encode_tagged(FEED, &entry)
            .map_err(|e| Error::encode(e, format!("change feed entry {first}")))?;
        if self.commits.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune_due.store(true, Ordering::Release);
        }
        Ok(recorded)
    }

    /// Every commit at or below this position has finished.
    fn stable(&self) -> u64 {
        self.state.lock().stable()
    }

    /// Records that every commit up to the current stable position is applied, and prunes
    /// when it is due; call before a sync, which then makes both durable together with those
    /// commits. Pruning runs here, outside every commit, since it only removes applied entries.
    pub(crate) fn mark_applied(&self, now: SystemTime) -> Result<()> {
        let stable = self.stable();
        self.meta.put(APPLIED_KEY, &stable)?;
        self.applied.fetch_max(stable, Ordering::AcqRel);
        if self.prune_due.swap(false, Ordering::AcqRel) {
            self.prune(now)?;
        }
        Ok(())
    }

    /// Removes a bounded number of the oldest entries that retention no longer keeps. Entries
    /// not yet known applied are kept whatever their age, for crash recovery.
    fn prune(&self, now: SystemTime) -> Result<()> {
        let applied = self.applied.load(Ordering::Acquire);
        let newest = self.state.lock().issued;
        let keep_from = newest.saturating_sub(self.retention.max_changes);
        let too_old = codec::micros(now)
            .saturating_sub(u64::try_from(self.retention.max_age.as_micros()).unwrap_or(u64::MAX));
        let mut prunable = Vec::new();
        for entry in self.tree.scan_from(&[]).take(PRUNE_BATCH) {
            let (position, bytes) = entry?;
            let last = position_of(&position)?;
            let committed = decode_entry(&position, &bytes)?.committed;
            if last > applied || (last >= keep_from && committed >= too_old) {
                break;
            }
            prunable.push((last, position));
        }
        if let Some(&(last, _)) = prunable.last() {
            // Recorded before anything is removed, so a reader is never told too little.
            self.meta.put(PRUNED_KEY, &last)?;
            self.pruned.fetch_max(last, Ordering::AcqRel);
            for (_, position) in &prunable {
                self.tree.remove(position)?;
            }
        }
        Ok(())
    }
}

/// Reads a change feed, on either engine.
pub(crate) trait ChangeFeed: Send + Sync {
    /// The changes committed after position `since`, up to the last commit finished now.
    fn since(&self, since: u64) -> Result<Changes>;

    /// Waits until a change after `position` is committed, or `timeout` passes; whether one
    /// is (or the feed no longer holds `position`, which reading from it reports).
    fn wait_past(&self, position: u64, timeout: Duration) -> Result<bool>;
}

impl ChangeFeed for Feed {
    fn wait_past(&self, position: u64, timeout: Duration) -> Result<bool> {
        let mut state = self.state.lock();
        let deadline = std::time::Instant::now() + timeout;
        while state.stable() <= position {
            if self.advanced.wait_until(&mut state, deadline).timed_out() {
                return Ok(state.stable() > position);
            }
        }
        Ok(true)
    }

    fn since(&self, since: u64) -> Result<Changes> {
        let stable = self.stable();
        if since < self.pruned.load(Ordering::Acquire) {
            let oldest = match self.tree.scan_from(&[]).next().transpose()? {
                Some((position, bytes)) => decode_entry(&position, &bytes)?.first,
                None => stable + 1,
            };
            return Err(Error::HistoryCompacted { oldest });
        }
        let retained = Retained {
            entries: self.tree.scan_from(&since.saturating_add(1).to_be_bytes()),
            since,
            stable,
            pending: Vec::new().into_iter(),
        };
        Ok(Changes::new(since, retained))
    }
}

/// Iterator over changes, from [`Store::changes_since`](crate::Store::changes_since).
pub struct Changes {
    since: u64,
    changes: Box<dyn Iterator<Item = Result<Change>> + Send>,
}

impl Changes {
    /// The changes after `since` that an engine reads.
    pub(crate) fn new(
        since: u64,
        changes: impl Iterator<Item = Result<Change>> + Send + 'static,
    ) -> Self {
        Self {
            since,
            changes: Box::new(changes),
        }
    }
}

impl Iterator for Changes {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        self.changes.next()
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

/// The local feed's changes after `since` up to the commits finished at `stable`, read from
/// its entries.
struct Retained {
    entries: Entries,
    since: u64,
    stable: u64,
    pending: std::vec::IntoIter<Change>,
}

impl Iterator for Retained {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(change) = self.pending.next() {
                return Some(Ok(change));
            }
            let (position, bytes) = match self.entries.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let entry = match decode_entry(&position, &bytes) {
                Ok(entry) if entry.first > self.stable => return None,
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            self.pending = changes_of(entry.writes, entry.first, self.since).into_iter();
        }
    }
}

/// The changes among a commit's `writes`, at positions counted from `first`, that come after
/// `since`.
pub(crate) fn changes_of(writes: Vec<EntryWrite>, first: u64, since: u64) -> Vec<Change> {
    writes
        .into_iter()
        .filter_map(|write| Some((write.change?, write.tree, write.key, write.value)))
        .zip(first..)
        .filter(|(_, seq)| *seq > since)
        .filter_map(|((change, tree, key, record), seq)| {
            Some(Change {
                seq,
                collection: tree.strip_prefix("c/")?.to_owned(),
                key: String::from_utf8(key).ok()?,
                version: change.1,
                kind: change.0,
                record,
            })
        })
        .collect()
}

/// The writes of a commit as the local feed records them: all of them, since its entry is
/// also their redo record.
pub(crate) fn entry_writes(commit: &Commit<'_>) -> Vec<EntryWrite> {
    commit.writes.iter().map(entry_write).collect()
}

/// The writes of a commit that change records as a reader sees them: what the etcd engine's
/// feed records.
#[cfg(feature = "etcd")]
pub(crate) fn record_changes(commit: &Commit<'_>) -> Vec<EntryWrite> {
    let records = commit.writes.iter().filter(|w| w.record.is_some());
    records
        .map(entry_write)
        .filter(|w| w.change.is_some())
        .collect()
}

fn entry_write(w: &Write<'_>) -> EntryWrite {
    EntryWrite {
        tree: w.keyspace.name.to_string(),
        key: w.key.to_vec(),
        value: w.value.map(<[u8]>::to_vec),
        change: w.record.and_then(|record| {
            let kind = ChangeKind::of(record.existed, w.value.is_some())?;
            Some((kind, record.version))
        }),
    }
}

fn position_of(key: &[u8]) -> Result<u64> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Corrupt {
            location: "the change feed".into(),
            reason: format!("an entry has a {}-byte position", key.len()),
        })
}

fn decode_entry(position: &[u8], bytes: &[u8]) -> Result<Entry> {
    let last = position_of(position)?;
    codec::decode_tagged(FEED, bytes)
        .map_err(|e| Error::decode(e, format!("change feed entry {last}")))
}
