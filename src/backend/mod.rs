//! The storage engine below revkv, behind one narrow trait of single-key operations.
//!
//! Everything revkv guarantees across several keys (versions, unique indexes, transactions) is
//! built above this trait from ordered single-key writes, so an engine only has to offer what
//! every key-value store offers: get, put, remove, ordered range scans, and a full durability barrier.

#[cfg(feature = "fault-injection")]
mod crash_point;
mod key_range;
mod memory;
mod sled;
mod space;

use std::sync::Arc;

use crate::Result;

#[cfg(feature = "fault-injection")]
pub(crate) use self::crash_point::CrashPoint;
pub(crate) use self::key_range::KeyRange;
#[cfg(feature = "etcd")]
pub(crate) use self::key_range::prefix_end;
pub use self::memory::Memory;
pub(crate) use self::sled::SledBackend;

/// A value read from an engine. sled's reference-counted bytes: reading one does not copy
/// the value, and any engine can build one from a `Vec<u8>` or a slice.
pub(crate) type Bytes = ::sled::IVec;

/// Key/value pairs from a scan, in key order.
pub(crate) type Entries = Box<dyn Iterator<Item = Result<(Vec<u8>, Bytes)>> + Send>;

/// A storage engine: named trees of byte keys and values.
pub(crate) trait Backend: Send + Sync {
    /// Opens (creating if needed) the tree called `name`.
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>>;

    /// Makes every write that returned before this call durable: it survives a process crash
    /// and power loss.
    fn sync(&self) -> Result<()>;

    /// Whether the engine takes another logical write: asked before any of its single-key
    /// writes is stored or journaled, so that a refusal (a failed engine, a disk short of
    /// space) leaves nothing behind.
    fn admit(&self) -> Result<()>;
}

/// One ordered keyspace of an engine. Each call is atomic on its own key; the engine's crash
/// recovery keeps a prefix of the calls in the order they returned (see "Durability and crash
/// consistency" in the crate docs).
pub(crate) trait Tree: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Compare-and-swap: writes `new` (`None` removes) only if `key` holds `old` (`None`: no
    /// value); `false` if it held something else, and then nothing is written.
    fn swap(&self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool>;
    fn remove(&self, key: &[u8]) -> Result<()>;
    /// The entries in `range`, in key order, or in reverse.
    fn range(&self, range: &KeyRange, reverse: bool) -> Entries;

    /// The entries whose keys start with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Entries {
        self.range(&KeyRange::prefix(prefix), false)
    }

    /// The entries at and after `start`, in key order.
    fn scan_from(&self, start: &[u8]) -> Entries {
        self.range(&KeyRange::from(start), false)
    }
}
