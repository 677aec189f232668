//! Store-wide sequences: the versions of records, and the positions of the change feed.
//!
//! Versions are handed out from an in-memory counter below a *lease*: a high-water mark that is
//! made durable (written and synced) before any number under it is issued. A restart resumes at
//! the stored lease, above everything the previous session may have issued, even writes it
//! acknowledged but lost in a crash. So a version is never issued twice, for any key. A clean
//! close gives the rest of the lease back ([`Sequence::retire`]): versions then continue after
//! a restart without a jump.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::backend::Backend;
use crate::meta::Meta;
use crate::{Result, Version};

/// How many versions one durable lease covers. A restart skips at most this many.
const LEASE: u64 = 1 << 20;

pub(crate) struct Sequence {
    /// The meta key of its lease.
    lease_key: &'static str,
    next: AtomicU64,
    /// Every number below this is covered by a durable lease.
    leased: AtomicU64,
    extending: Mutex<()>,
    meta: Arc<Meta>,
    backend: Arc<dyn Backend>,
}

impl Sequence {
    /// Resumes the sequence whose lease is stored under `lease_key` above everything issued
    /// before, and takes a first lease.
    pub(crate) fn resume(
        lease_key: &'static str,
        meta: Arc<Meta>,
        backend: Arc<dyn Backend>,
    ) -> Result<Self> {
        let stored = meta.get::<u64>(lease_key)?.unwrap_or(1);
        let sequence = Self {
            lease_key,
            next: AtomicU64::new(stored),
            leased: AtomicU64::new(stored),
            extending: Mutex::new(()),
            meta,
            backend,
        };
        sequence.extend(stored)?;
        Ok(sequence)
    }

    /// Issues the next version.
    pub(crate) fn next(&self) -> Result<Version> {
        self.next_block(1).map(Version::new)
    }

    /// Issues `count` consecutive numbers; returns the first.
    pub(crate) fn next_block(&self, count: u64) -> Result<u64> {
        let first = self.next.fetch_add(count, Ordering::Relaxed);
        let n = first + count - 1;
        let leased = self.leased.load(Ordering::Acquire);
        if n >= leased {
            // Not covered yet: wait for (or do) the extension.
            let _guard = self.extending.lock();
            if n >= self.leased.load(Ordering::Acquire) {
                self.extend(n)?;
            }
        } else if n >= leased - LEASE / 2 {
            // Renew ahead of time so writers rarely wait; whoever is already renewing wins.
            if let Some(_guard) = self.extending.try_lock()
                && n >= self.leased.load(Ordering::Acquire) - LEASE / 2
            {
                self.extend(n)?;
            }
        }
        Ok(first)
    }

    /// The number the next call would start at: every number issued so far is below it.
    pub(crate) fn upcoming(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// Makes every number issued from now on at least `floor`, durably: a restart resumes
    /// above it too.
    pub(crate) fn raise(&self, floor: u64) -> Result<()> {
        let _guard = self.extending.lock();
        self.next.fetch_max(floor, Ordering::AcqRel);
        if floor >= self.leased.load(Ordering::Acquire) {
            self.extend(floor)?;
        }
        Ok(())
    }

    /// Gives back what the lease covers beyond the numbers issued, so that the next session
    /// continues right after the last of them; for a clean close, when no number can be issued
    /// any more. A crash before this keeps the lease: the next session then skips the rest of
    /// it, which only costs numbers.
    pub(crate) fn retire(&self) -> Result<()> {
        self.meta.put(self.lease_key, &self.upcoming())
    }

    fn extend(&self, from: u64) -> Result<()> {
        let lease = from.saturating_add(LEASE);
        self.meta.put(self.lease_key, &lease)?;
        self.backend.sync()?;
        self.leased.fetch_max(lease, Ordering::AcqRel);
        Ok(())
    }
}
