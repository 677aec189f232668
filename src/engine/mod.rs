//! The engine boundary: what revkv's shared layers (collections, unique indexes, state guards,
//! transactions, history, expiry, statistics, the HTTP adapter) need from whatever stores the
//! bytes, at the level of an atomic conditional commit.
//!
//! Reads go to keyspaces ([`Tree`]s) directly. Every change of records is a [`Commit`]: compares
//! (a key holds these bytes, or nothing) and single-key writes, applied all together if every
//! compare holds, or not at all. The layers above decide what to compare and write from reads
//! taken without locks and read again when a compare fails, so their correctness rests only on
//! the engine's commit, never on which process they run in.
//!
//! [`LocalEngine`] is the embedded engine: sled, with revkv's own protocol making commits atomic
//! (key locks, intents, the journal, the change feed's redo entries).

#[cfg(feature = "etcd")]
mod etcd;
mod local;

use std::sync::Arc;

use crate::backend::Tree;
use crate::commit::Commit;
use crate::feed::ChangeFeed;
use crate::locks::Held;
use crate::meta::Meta;
use crate::{Error, Result, Version};

/// The newest store layout this build writes; a store marked with a newer one is refused.
const STORE_FORMAT: u8 = 1;

#[cfg(feature = "etcd")]
pub(crate) use self::etcd::EtcdEngine;
#[cfg(feature = "fuzzing")]
pub(crate) use self::local::Session;
pub(crate) use self::local::{LocalEngine, LocalOptions};

/// What [`Engine::pause_commits`] holds: nothing where the engine cannot pause writers.
pub(crate) type Paused<'a> = Option<Held<'a>>;

/// What stores revkv's bytes and applies its commits.
pub(crate) trait Engine: Send + Sync {
    /// Opens (creating if needed) the keyspace called `name`.
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>>;

    /// Applies `commit` if every one of its compares holds, atomically with respect to other
    /// commits and to crashes. `Ok(false)`: a compare failed, and nothing was written.
    fn commit_if(&self, commit: &Commit<'_>) -> Result<bool>;

    /// A version for a write of a record now at `above` (`None`: absent): greater than
    /// `above`, and never issued before.
    fn next_version(&self, above: Option<Version>) -> Result<Version>;

    /// Fails fast when the engine refuses writes (after a failed write or sync, say).
    fn check_writable(&self) -> Result<()>;

    /// Makes every commit that returned before this call durable: it survives a process crash
    /// and a power loss.
    fn sync(&self) -> Result<()>;

    /// Makes the commits made on [`Route::Direct`](crate::store::Route::Direct) as durable
    /// as those on the logged route.
    fn make_direct_writes_durable(&self) -> Result<()>;

    /// The change feed, if the store keeps one.
    fn feed(&self) -> Option<&dyn ChangeFeed>;

    /// Holds every commit back until the guard drops, for a check that must see the records
    /// and their indexes from one moment.
    fn pause_commits(&self) -> Paused<'_>;
}

/// Refuses stores written by a newer revkv; marks new ones with this build's format.
pub(crate) fn check_format(meta: &Meta) -> Result<()> {
    match meta.get::<u8>("format")? {
        Some(found) if found > STORE_FORMAT => Err(Error::UnsupportedFormat {
            location: "the store's format marker".into(),
            what: "store",
            found,
            supported: STORE_FORMAT,
        }),
        Some(_) => Ok(()),
        None => meta.put("format", &STORE_FORMAT),
    }
}
