//! Refusing writes before the disk is full.
//!
//! sled 0.34 does not fail cleanly when its file system runs out of space: measured here on a
//! small tmpfs, a write or a flush after `ENOSPC` can wait forever. So revkv keeps a reserve of
//! free space and refuses writes with [`Error::DiskFull`] before the engine ever meets a full
//! disk.
//!
//! A logical write is refused whole, before any of it is stored or journaled, below the
//! reserve ([`SpaceGuard::admit`]). The engine's own writes and syncs are refused only below
//! half of it ([`SpaceGuard::before_write`]), so that a write admitted just before the reserve
//! was reached completes rather than fail halfway. For that the admission must notice the
//! reserve first: it looks at the free space after every 32nd of the reserve written, and
//! before every logical write once the space was found short. sled takes up to several times
//! the bytes it is given (measured here on a small tmpfs: 2.2 MiB less free space after
//! 380 KiB of 20 KiB values), so a check every eighth of the reserve was too coarse.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

pub(crate) struct SpaceGuard {
    dir: PathBuf,
    reserve: u64,
    written_since_check: AtomicU64,
    /// The last check found less free space than the reserve.
    short: AtomicBool,
}

impl SpaceGuard {
    pub(crate) fn new(dir: PathBuf, reserve: u64) -> Self {
        Self {
            dir,
            reserve,
            written_since_check: AtomicU64::new(0),
            short: AtomicBool::new(false),
        }
    }

    /// Before a logical write, ahead of everything it stores: refuses it if the free space
    /// is below the reserve.
    pub(crate) fn admit(&self) -> Result<()> {
        if self.short.load(Ordering::Acquire)
            || self.written_since_check.load(Ordering::Relaxed) >= self.reserve / 32
        {
            self.refuse_below(self.reserve)
        } else {
            Ok(())
        }
    }

    /// Accounts for an engine write of `bytes`; fails if the free space is below half the
    /// reserve. Writes that no admission precedes (recovery, sweeps) are checked here, after
    /// every eighth of the reserve.
    pub(crate) fn before_write(&self, bytes: usize) -> Result<()> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let written = self.written_since_check.fetch_add(bytes, Ordering::Relaxed);
        if written.saturating_add(bytes) >= self.reserve / 8 {
            self.refuse_below(self.reserve / 2)
        } else {
            Ok(())
        }
    }

    /// Before the engine syncs: fails if the free space is below half the reserve.
    pub(crate) fn before_sync(&self) -> Result<()> {
        self.refuse_below(self.reserve / 2)
    }

    /// Looks at the free space now, notes whether it is short of the reserve, and fails if
    /// it is below `floor`.
    fn refuse_below(&self, floor: u64) -> Result<()> {
        self.written_since_check.store(0, Ordering::Relaxed);
        let free = fs2::available_space(&self.dir)?;
        self.short.store(free < self.reserve, Ordering::Release);
        if free < floor {
            Err(Error::DiskFull {
                path: self.dir.clone(),
                free_bytes: free,
                reserve_bytes: self.reserve,
            })
        } else {
            Ok(())
        }
    }
}
