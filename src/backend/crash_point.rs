//! A crash at an exact point, for tests: after a chosen number of single-key writes, every
//! further write fails, so what the engine holds is exactly the writes before the crash point.
//! Reopening the store then runs the same recovery as after a real crash that lost nothing
//! before that point (the worst case for protocols made of several writes).
//!
//! Enabled by the `fault-injection` feature; see [`StoreBuilder::crash_after_writes`].
//!
//! [`StoreBuilder::crash_after_writes`]: crate::StoreBuilder::crash_after_writes

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Backend, Bytes, Entries, KeyRange, Tree};
use crate::{Error, Result};

pub(crate) struct CrashPoint {
    inner: Arc<dyn Backend>,
    /// Writes still allowed before the crash.
    remaining: Arc<AtomicU64>,
}

impl CrashPoint {
    pub(crate) fn new(inner: Arc<dyn Backend>, writes: u64) -> Self {
        Self {
            inner,
            remaining: Arc::new(AtomicU64::new(writes)),
        }
    }
}

fn crashed() -> Error {
    Error::Io(std::io::Error::other(
        "simulated crash: no write reaches the engine any more",
    ))
}

/// Takes one write from the budget; fails once it is spent (and forever after).
fn admit(remaining: &AtomicU64) -> Result<()> {
    remaining
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .map(drop)
        .map_err(|_| crashed())
}

impl Backend for CrashPoint {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        Ok(Arc::new(CrashPointTree {
            inner: self.inner.tree(name)?,
            remaining: Arc::clone(&self.remaining),
        }))
    }

    fn sync(&self) -> Result<()> {
        if self.remaining.load(Ordering::Acquire) == 0 {
            return Err(crashed());
        }
        self.inner.sync()
    }

    fn admit(&self) -> Result<()> {
        self.inner.admit()
    }
}

struct CrashPointTree {
    inner: Arc<dyn Tree>,
    remaining: Arc<AtomicU64>,
}

impl Tree for CrashPointTree {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        admit(&self.remaining)?;
        self.inner.put(key, value)
    }

    fn swap(&self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
        admit(&self.remaining)?;
        self.inner.swap(key, old, new)
    }

    fn remove(&self, key: &[u8]) -> Result<()> {
        admit(&self.remaining)?;
        self.inner.remove(key)
    }

    fn range(&self, range: &KeyRange, reverse: bool) -> Entries {
        self.inner.range(range, reverse)
    }
}
