//! When writes become durable, and group commit for the writers that wait for it.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::Result;

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

/// Shares syncs between concurrent waiters: whoever finds no sync running leads one that
/// covers every write handed to the group so far; the others wait for it. When the previous
/// sync covered several writers, the leader first waits (at most [`GATHER`]) for as many to
/// join, since they are likely finishing their writes; a lone writer never waits.
pub(crate) struct GroupCommit {
    state: Mutex<Tickets>,
    synced_changed: Condvar,
    ticket_issued: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// Tickets handed out; each stands for writes that returned before it was taken.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
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
            ticket_issued: Condvar::new(),
        }
    }

    /// Returns once every write that returned before this call is durable; `sync` is what
    /// a leader runs to make them so.
    pub(crate) fn sync(&self, sync: impl Fn() -> Result<()>) -> Result<()> {
        let mut tickets = self.state.lock();
        tickets.issued += 1;
        let mine = tickets.issued;
        // Only the ticket that completes the group wakes a gathering leader: a wake-up per
        // ticket costs more than the sync saves.
        if tickets.issued - tickets.durable == tickets.last_group {
            self.ticket_issued.notify_one();
        }
        loop {
            if tickets.durable >= mine {
                return Ok(());
            }
            if tickets.syncing {
                self.synced_changed.wait(&mut tickets);
                continue;
            }
            // Lead a sync for every ticket issued so far, once the group has gathered.
            tickets.syncing = true;
            let deadline = Instant::now() + GATHER;
            while tickets.issued - tickets.durable < tickets.last_group
                && !self
                    .ticket_issued
                    .wait_until(&mut tickets, deadline)
                    .timed_out()
            {}
            let covered = tickets.issued;
            tickets.last_group = covered - tickets.durable;
            drop(tickets);
            let result = sync();
            tickets = self.state.lock();
            tickets.syncing = false;
            if result.is_ok() {
                tickets.durable = tickets.durable.max(covered);
            }
            self.synced_changed.notify_all();
            drop(tickets);
            // The leader's own ticket was issued before it led, so this sync covered it.
            return result;
        }
    }
}
