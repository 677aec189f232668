//! The engine boundary: what revkv's shared layers (collections, unique indexes, state guards,
//! transactions, history, expiry, statistics, the HTTP adapter) need from whatever stores the
//! bytes, at the level of an atomic conditional commit.
//!
//! Reads and commits are futures ([`Engine::read_many`], [`Engine::commit`]), awaited by the async API
//! and run to completion by the blocking one; scans and bookkeeping read keyspaces
//! ([`Tree`](crate::backend::Tree)s) directly. Every change of records is a [`Commit`]: compares
//! (a key holds these bytes, or nothing) and single-key writes, applied all together if every
//! compare holds, or not at all. The layers above decide what to compare and write from reads
//! taken without locks and read again when a compare fails, so their correctness rests only on
//! the engine's commit, never on which process they run in.
//!
//! [`LocalEngine`] is the embedded engine: sled, with revkv's own protocol making commits atomic
//! (key locks, intents, the journal, the change feed's redo entries), all of it in `local/`.
//!
//! Nothing here names a layer above it: collections, stores, transactions and HTTP are built
//! on this vocabulary of keyspaces, bytes, compares, writes and versions.

mod commit;
mod contract;
#[cfg(feature = "etcd")]
mod etcd;
pub(crate) mod feed;
mod keyspace;
pub(crate) mod local;
mod snapshot;

#[cfg(feature = "etcd")]
pub use self::etcd::EtcdTls;
#[cfg(feature = "etcd")]
pub(crate) use self::etcd::{EtcdEngine, EtcdOptions};
pub(crate) use self::local::{LocalEngine, LocalOptions, Storage};

pub use self::commit::ChangeKind;
pub(crate) use self::commit::{Commit, Compare, EntryWrite, RangeRead, RecordChange, Route, Write};
pub(crate) use self::contract::{Engine, REMOVALS_PER_COMMIT};
pub use self::feed::Retention;
pub(crate) use self::feed::{ChangeFeed, FeedChange, FeedChanges};
pub(crate) use self::keyspace::Keyspace;
