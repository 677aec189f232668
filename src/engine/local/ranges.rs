//! Serializable range reads on the local engine: a commit that requires a range to have
//! gained no key holds that range while it checks and writes, and a commit that holds ranges
//! of its own waits before it writes a key into a range another one holds.
//!
//! Key locks alone cannot keep two such commits apart: each may check its range before the
//! other writes into it (two transactions that each insert an open order only if a query finds
//! none). Plain writes never wait here: one that writes into a held range before the holder's
//! check fails that check, and one that writes after it orders after the holder, which read
//! nothing it wrote. So only commits with range reads meet, and only on ranges they share: a
//! hot index value is one small critical section for the queries of that value, never a lock
//! for the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::backend::KeyRange;
use crate::engine::commit::Commit;

/// The ranges held by commits in progress.
#[derive(Default)]
pub(crate) struct RangeLocks {
    held: Mutex<Vec<HeldRange>>,
    released: Condvar,
    ids: AtomicU64,
}

struct HeldRange {
    owner: u64,
    keyspace: Arc<str>,
    range: KeyRange,
}

/// The ranges of one commit, released on drop.
pub(crate) struct Holding<'a> {
    locks: &'a RangeLocks,
    owner: u64,
}

impl RangeLocks {
    /// Waits until no range held by another commit would gain a key that `commit` writes, then
    /// holds `commit`'s ranges. The caller holds its key locks already; a commit that holds
    /// ranges never waits for anything, so waiting here cannot close a cycle.
    pub(crate) fn hold(&self, commit: &Commit<'_>) -> Holding<'_> {
        let owner = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut held = self.held.lock();
        while held.iter().any(|h| {
            commit.writes.iter().any(|w| {
                w.value.is_some() && h.keyspace == w.keyspace.name && h.range.contains(w.key)
            })
        }) {
            self.released.wait(&mut held);
        }
        held.extend(commit.ranges.iter().map(|read| HeldRange {
            owner,
            keyspace: Arc::clone(&read.keyspace.name),
            range: read.range.clone(),
        }));
        Holding { locks: self, owner }
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.locks.held.lock().retain(|h| h.owner != self.owner);
        self.locks.released.notify_all();
    }
}
