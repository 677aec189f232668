//! When writes become durable, and group commit for the writers that wait for it.

use parking_lot::{Condvar, Mutex};

use crate::Result;
use crate::backend::Backend;

/// When a successful write is durable (survives a process crash and a power loss).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Writes are durable once a later [`Store::flush`](crate::Store::flush) returns. Until
    /// then a crash may lose the most recent writes, always a suffix: never a later write
    /// without every earlier one.
    #[default]
    OnFlush,
    /// Every write returns only once it is durable. Writers that wait at the same time share
    /// one sync (group commit), so throughput grows with concurrency.
    Immediate,
}

/// Shares syncs between concurrent waiters: whoever finds no sync running starts one that
/// covers every write acknowledged to the group so far; the others wait for it.
pub(crate) struct GroupCommit {
    state: Mutex<Tickets>,
    synced_changed: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// Tickets handed out; each stands for writes that returned before it was taken.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    syncing: bool,
}

impl GroupCommit {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(Tickets::default()),
            synced_changed: Condvar::new(),
        }
    }

    /// Returns once every write that returned before this call is durable.
    pub(crate) fn sync(&self, backend: &dyn Backend) -> Result<()> {
        let mut tickets = self.state.lock();
        tickets.issued += 1;
        let mine = tickets.issued;
        loop {
            if tickets.durable >= mine {
                return Ok(());
            }
            if tickets.syncing {
                self.synced_changed.wait(&mut tickets);
                continue;
            }
            // Lead a sync for every ticket issued so far.
            let covered = tickets.issued;
            tickets.syncing = true;
            drop(tickets);
            let result = backend.sync();
            tickets = self.state.lock();
            tickets.syncing = false;
            if result.is_ok() {
                tickets.durable = tickets.durable.max(covered);
            }
            self.synced_changed.notify_all();
            result?;
        }
    }
}
