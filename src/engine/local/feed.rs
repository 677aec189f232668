//! The local engine's change feed: every committed write, in commit order, resumable from any position still
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
//! That is the local engine's feed; what a feed is to either engine is `engine/feed.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use event_listener::Event;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Entries, KeyRange, Tree};
use crate::codec::{self, FEED};
use crate::engine::commit::{EntryWrite, LoggedWrite};
use crate::engine::feed::{ChangeFeed, FeedChange, FeedChanges, Retention, numbered};
use crate::engine::local::sequence::Sequence;
use crate::meta::Meta;
use crate::{Error, Result};

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
/// Most changes one [`ChangeFeed::next_changes`] returns.
const PAGE: usize = 256;

pub(crate) struct Feed {
    tree: Arc<dyn Tree>,
    positions: Sequence,
    retention: Retention,
    meta: Arc<Meta>,
    state: Mutex<InFlight>,
    /// Notified whenever a commit finishes.
    advanced: Event,
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
    pub(crate) fn write(&self) -> LoggedWrite {
        LoggedWrite {
            tree: TREE.to_owned(),
            key: self.key.to_vec(),
            value: Some(self.entry.clone()),
        }
    }
}

impl Drop for Recorded<'_> {
    fn drop(&mut self) {
        let mut state = self.feed.state.lock();
        state.commits.remove(&self.first);
        drop(state);
        self.feed.advanced.notify(usize::MAX);
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
                for logged in decode_entry(&position, &bytes)?.writes {
                    logged.write.redo(backend.as_ref())?;
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
            advanced: Event::new(),
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

impl ChangeFeed for Feed {
    fn changed_past(&self, position: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            loop {
                if self.stable() > position {
                    return Ok(());
                }
                // Listening before the second look: a commit in between still wakes it.
                let advanced = self.advanced.listen();
                if self.stable() > position {
                    return Ok(());
                }
                advanced.await;
            }
        })
    }

    /// At once, from the entries.
    fn read_after(&self, since: u64, limit: usize) -> BoxFuture<'_, Result<Vec<FeedChange>>> {
        let read = self
            .since(since)
            .and_then(|changes| changes.take(limit).collect());
        Box::pin(futures::future::ready(read))
    }

    /// Up to [`PAGE`] changes a call, read at once from the entries.
    fn next_changes(&self, since: u64) -> BoxFuture<'_, Result<Vec<FeedChange>>> {
        Box::pin(async move {
            loop {
                let changes = self.read_after(since, PAGE).await?;
                if !changes.is_empty() {
                    return Ok(changes);
                }
                self.changed_past(since).await?;
            }
        })
    }

    fn since(&self, since: u64) -> Result<FeedChanges> {
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
        Ok(Box::new(retained))
    }
}

/// The local feed's changes after `since` up to the commits finished at `stable`, read from
/// its entries.
struct Retained {
    entries: Entries,
    since: u64,
    stable: u64,
    pending: std::vec::IntoIter<FeedChange>,
}

impl Iterator for Retained {
    type Item = Result<FeedChange>;

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
            self.pending = numbered(entry.writes, entry.first, self.since).into_iter();
        }
    }
}

/// The position of the newest change in the feed `backend` keeps, whether or not this
/// session records one; `None` without a feed or changes.
pub(crate) fn newest_position(backend: &dyn Backend) -> Result<Option<u64>> {
    let newest = backend.tree(TREE)?.range(&KeyRange::from(b""), true).next();
    newest.map(|entry| position_of(&entry?.0)).transpose()
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
