//! Refusing writes before the disk is full.
//!
//! sled 0.34 does not fail cleanly when its file system runs out of space: measured here on a
//! small tmpfs, a write or a flush after `ENOSPC` can wait forever. So revkv keeps a reserve of
//! free space and refuses writes with [`Error::DiskFull`] before the engine ever meets a full
//! disk. It looks at the free space at every sync and after every eighth of the reserve
//! written, so the engine cannot outrun the check (sled writes at most a few times the bytes
//! it is given).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

pub(crate) struct SpaceGuard {
    dir: PathBuf,
    reserve: u64,
    written_since_check: AtomicU64,
    full: AtomicBool,
}

impl SpaceGuard {
    pub(crate) fn new(dir: PathBuf, reserve: u64) -> Self {
        Self {
            dir,
            reserve,
            written_since_check: AtomicU64::new(0),
            full: AtomicBool::new(false),
        }
    }

    /// Accounts for a write of `bytes`; fails if the reserve is reached.
    pub(crate) fn before_write(&self, bytes: usize) -> Result<()> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let written = self.written_since_check.fetch_add(bytes, Ordering::Relaxed);
        if self.full.load(Ordering::Acquire) || written.saturating_add(bytes) >= self.reserve / 8 {
            self.check()
        } else {
            Ok(())
        }
    }

    /// Looks at the free space now.
    pub(crate) fn check(&self) -> Result<()> {
        self.written_since_check.store(0, Ordering::Relaxed);
        let free = fs2::available_space(&self.dir)?;
        let full = free < self.reserve;
        self.full.store(full, Ordering::Release);
        if full {
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
