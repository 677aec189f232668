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

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

/// Free bytes on the store's file system.
type FreeSpace = Box<dyn Fn() -> io::Result<u64> + Send + Sync>;

pub(crate) struct SpaceGuard {
    dir: PathBuf,
    reserve: u64,
    free_space: FreeSpace,
    written_since_check: AtomicU64,
    /// The last check found less free space than the reserve.
    short: AtomicBool,
}

impl SpaceGuard {
    pub(crate) fn new(dir: PathBuf, reserve: u64) -> Self {
        let measured = dir.clone();
        Self::measuring(
            dir,
            reserve,
            Box::new(move || fs2::available_space(&measured)),
        )
    }

    fn measuring(dir: PathBuf, reserve: u64, free_space: FreeSpace) -> Self {
        Self {
            dir,
            reserve,
            free_space,
            written_since_check: AtomicU64::new(0),
            short: AtomicBool::new(false),
        }
    }

    /// Before a logical write, ahead of everything it stores: refuses it if the free space
    /// is below the reserve.
    pub(crate) fn admit(&self) -> Result<()> {
        if self.short.load(Ordering::Acquire)
            || self.due(self.written_since_check.load(Ordering::Relaxed), 32)
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
        if self.due(written.saturating_add(bytes), 8) {
            self.refuse_below(self.reserve / 2)
        } else {
            Ok(())
        }
    }

    /// Before the engine syncs: fails if the free space is below half the reserve.
    pub(crate) fn before_sync(&self) -> Result<()> {
        self.refuse_below(self.reserve / 2)
    }

    /// Whether `written` bytes since the last look call for another: one every `1/fraction` of
    /// the reserve. Never with no reserve, which turns the guard off.
    fn due(&self, written: u64, fraction: u64) -> bool {
        self.reserve > 0 && written >= self.reserve / fraction
    }

    /// Looks at the free space now, notes whether it is short of the reserve, and fails if
    /// it is below `floor`.
    fn refuse_below(&self, floor: u64) -> Result<()> {
        self.written_since_check.store(0, Ordering::Relaxed);
        let free = (self.free_space)()?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A guard with a 64 KiB reserve over a file system whose free space the test sets.
    fn guard() -> (SpaceGuard, Arc<AtomicU64>) {
        let free = Arc::new(AtomicU64::new(1 << 20));
        let reading = Arc::clone(&free);
        let guard = SpaceGuard::measuring(
            PathBuf::from("store"),
            64 << 10,
            Box::new(move || Ok(reading.load(Ordering::Relaxed))),
        );
        (guard, free)
    }

    #[test]
    fn logical_writes_stop_at_the_reserve_and_engine_writes_at_half_of_it() {
        let (guard, free) = guard();
        assert!(guard.admit().is_ok());
        free.store(40 << 10, Ordering::Relaxed);
        // Not looked at until a 32nd of the reserve (2 KiB) has been written.
        assert!(guard.admit().is_ok());
        assert!(guard.before_write(2 << 10).is_ok());
        let refused = guard.admit();
        assert!(
            matches!(refused, Err(Error::DiskFull { free_bytes, .. }) if free_bytes == 40 << 10),
            "{refused:?}"
        );
        // A write admitted before still completes: looked at again after an eighth of the
        // reserve, the free space is above half of it.
        assert!(guard.before_write(8 << 10).is_ok());
        // Once short, every admission looks again, and takes writes once space is freed.
        free.store(1 << 20, Ordering::Relaxed);
        assert!(guard.admit().is_ok());

        free.store(16 << 10, Ordering::Relaxed);
        assert!(guard.before_sync().is_err());
        assert!(guard.before_write(8 << 10).is_err());
    }

    #[test]
    fn no_reserve_turns_the_guard_off() {
        let guard = SpaceGuard::measuring(PathBuf::from("store"), 0, Box::new(|| Ok(0)));
        for _ in 0..3 {
            assert!(guard.admit().is_ok());
            assert!(guard.before_write(1 << 30).is_ok());
        }
        assert!(guard.before_sync().is_ok());
    }
}
