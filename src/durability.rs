//! When writes become durable, and group commit for the writers that wait for it.

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::Result;
use crate::spin;

/// When a successful write is durable (survives a process crash and a power loss).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Writes are durable once a later [`Store::flush`](crate::Store::flush) returns. Until
    /// then a crash may lose the most recent writes, always a suffix: never a later write
    /// without every earlier one.
    #[default]
    OnFlush,
    /// Every write returns only once it is durable: in revkv's journal, before the engine
    /// applies it. Writers that wait at the same time share one sync (group commit), so
    /// throughput grows with concurrency.
    Immediate,
}

/// How long a sync waits for the writers of the previous group to join the next one.
const GATHER: Duration = Duration::from_micros(100);
/// How long a writer waiting for someone else's sync yields its core before it sleeps: about
/// ten syncs of this project's disk. A longer wait means the disk is in a slow spell, and
/// then the cost of sleeping and being woken is small next to it.
const SPIN: Duration = Duration::from_millis(1);

/// Shares syncs between concurrent waiters: whoever finds no sync running leads one that
/// covers every write handed to the group so far; the others wait for it. When the previous
/// sync covered several writers, the leader first waits (at most [`GATHER`]) for as many to
/// join, since they are likely finishing their writes; a lone writer never waits.
///
/// Both waits yield the core rather than sleep; a writer waiting for a sync does so for at
/// most [`SPIN`]. With many writers on few cores, putting every one of them to sleep and
/// waking it for each sync cost more than the sync itself (8 writers on 2 cores: 1.4 context
/// switches and 20 µs of CPU per commit, mostly the kernel's). Yielding gave 40-60% more
/// commits per second there, for about 30 µs of CPU per commit: the cores stay busy while
/// writers wait.
pub(crate) struct GroupCommit {
    state: Mutex<Tickets>,
    synced_changed: Condvar,
    /// Every ticket up to this one is durable. Written under `state`; read without it by
    /// waiters that spin.
    durable: AtomicU64,
    /// Syncs ended, successful or not: a spinning waiter whose ticket a sync did not cover
    /// stops spinning to lead the next.
    syncs_ended: AtomicU64,
}

#[derive(Default)]
struct Tickets {
    /// Tickets handed out; each stands for writes that returned before it was taken.
    issued: u64,
    /// A leader is gathering or syncing.
    syncing: bool,
    /// How many tickets the last sync covered.
    last_group: u64,
}

impl GroupCommit {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(Tickets::default()),
            synced_changed: Condvar::new(),
            durable: AtomicU64::new(0),
            syncs_ended: AtomicU64::new(0),
        }
    }

    /// Returns once every write that returned before this call is durable; `sync` is what
    /// a leader runs to make them so.
    pub(crate) fn sync(&self, sync: impl Fn() -> Result<()>) -> Result<()> {
        let mut tickets = self.state.lock();
        tickets.issued += 1;
        let mine = tickets.issued;
        loop {
            if self.durable.load(Ordering::Acquire) >= mine {
                return Ok(());
            }
            if tickets.syncing {
                spin::wait_for_change(&mut tickets, &self.synced_changed, &self.syncs_ended, SPIN);
                continue;
            }
            // Lead a sync for every ticket issued so far, once the group has gathered.
            tickets.syncing = true;
            let durable = self.durable.load(Ordering::Acquire);
            let deadline = Instant::now() + GATHER;
            while tickets.issued - durable < tickets.last_group && Instant::now() < deadline {
                MutexGuard::unlocked(&mut tickets, std::thread::yield_now);
            }
            let covered = tickets.issued;
            tickets.last_group = covered - durable;
            #[expect(clippy::cast_precision_loss, reason = "a group's size, far below 2^52")]
            metrics::histogram!("revkv_group_commit_writes").record(tickets.last_group as f64);
            drop(tickets);
            let result = sync();
            tickets = self.state.lock();
            tickets.syncing = false;
            if result.is_ok() {
                self.durable.fetch_max(covered, Ordering::Release);
            }
            self.syncs_ended.fetch_add(1, Ordering::Release);
            self.synced_changed.notify_all();
            drop(tickets);
            // The leader's own ticket was issued before it led, so this sync covered it.
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    use super::GroupCommit;
    use crate::Error;

    /// Eight threads each take the next write number, then wait for the group; a sync makes
    /// durable every number taken before it began, and every third sync fails. A writer told
    /// "durable" must be: a failed sync acknowledges nobody, and a spinning waiter whose write
    /// came too late for the running sync must get a sync of its own.
    #[test]
    fn a_writer_is_acknowledged_only_by_a_successful_sync_that_began_after_its_write() {
        let group = GroupCommit::new();
        let (taken, durable, syncs, acknowledged) = (
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
        );
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        let mine = taken.fetch_add(1, SeqCst) + 1;
                        let result = group.sync(|| {
                            let upto = taken.load(SeqCst);
                            if syncs.fetch_add(1, SeqCst) % 3 == 2 {
                                return Err(Error::Io(io::Error::other("injected")));
                            }
                            durable.fetch_max(upto, SeqCst);
                            Ok(())
                        });
                        if result.is_ok() {
                            assert!(durable.load(SeqCst) >= mine, "write {mine} acknowledged");
                            acknowledged.fetch_add(1, SeqCst);
                        }
                    }
                });
            }
        });
        let acknowledged = acknowledged.load(SeqCst);
        assert!(
            acknowledged > 0 && acknowledged < 16_000,
            "{acknowledged} of 16,000"
        );
    }
}
