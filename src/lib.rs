//! revkv: an embedded, versioned key-value store with compare-and-swap, for services that must
//! never lose an update.
//!
//! Every record carries a [`Version`] that only grows. Writes say which version they expect
//! (or that the key must be free); when the record has moved on, the write fails with a
//! [`Conflict`] that carries the current record, so the caller can merge and retry instead of
//! overwriting someone else's change. Collections can declare unique indexes and a state
//! machine, and [`Store::transaction`] changes several records atomically. The storage engine
//! underneath is sled 0.34, or an etcd cluster (see "Engines").
//!
//! # The 409 story
//!
//! Two clients read the same document at version 1 and both edit it. The first write wins; the
//! second gets a conflict that carries the record as it is now, merges, and succeeds. Over HTTP
//! the conflict becomes `409 Conflict` (or `412` for a failed `If-Match`): the module
//! `revkv::http` (feature `http`, on by default) makes that mapping, with RFC 9457 problem
//! bodies, and `examples/service` shows it in a whole service.
//!
//! ```
//! use revkv::{Conflict, Error, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
//! struct Doc { title: String, tags: Vec<String> }
//!
//! let store = Store::temporary()?;
//! let docs = store.collection::<Doc>("docs").open()?;
//! let v1 = docs.insert("d1", Doc { title: "Draft".into(), tags: vec![] })?;
//!
//! // Alice and Bob both read version 1.
//! let alice = docs.get("d1")?.expect("exists");
//! let bob = docs.get("d1")?.expect("exists");
//! assert_eq!((alice.version, bob.version), (v1, v1));
//!
//! // Alice renames the document first.
//! let v2 = docs.update("d1", alice.version, Doc { title: "Final".into(), ..alice.value })?;
//!
//! // Bob's tag, written against version 1, conflicts: it would erase Alice's rename.
//! let mut bobs_doc = bob.value.clone();
//! bobs_doc.tags.push("urgent".into());
//! let err = docs.update("d1", bob.version, bobs_doc).unwrap_err();
//! let Error::Conflict(conflict @ Conflict::VersionMismatch { expected, current, .. }) = &err else {
//!     panic!("expected a version conflict, got {err}");
//! };
//! assert_eq!((*expected, *current), (v1, Some(v2)));
//!
//! // The conflict carries the record as it is now: merge Bob's change into it and retry.
//! let theirs = conflict.current_record::<Doc>()?.expect("still exists");
//! let mut merged = theirs.value;
//! merged.tags.push("urgent".into());
//! let v3 = docs.update("d1", theirs.version, merged)?;
//!
//! let now = docs.get("d1")?.expect("exists");
//! assert_eq!(now.version, v3);
//! assert_eq!(now.value, Doc { title: "Final".into(), tags: vec!["urgent".into()] });
//! # Ok::<(), revkv::Error>(())
//! ```
//!
//! For read-modify-write without the bookkeeping, [`Collection::update_with`] retries the
//! closure on conflicts (bounded, with jittered backoff).
//!
//! # The same story, async
//!
//! A service on an async runtime awaits the same operations: [`Collection::to_async`] gives an
//! [`AsyncCollection`] and [`Store::to_async`] an [`AsyncStore`] (transactions, the change feed
//! as a `Stream`). They are the operations above, written once as futures and run to completion
//! by the blocking API, so they raise the same conflicts. Every future is `Send`; none needs
//! `spawn_blocking`.
//!
//! ```
//! use revkv::{Conflict, Error, Store};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
//! # struct Doc { title: String, tags: Vec<String> }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = Store::temporary()?;
//! let docs = store.collection::<Doc>("docs").open()?.to_async();
//! let v1 = docs.insert("d1", Doc { title: "Draft".into(), tags: vec![] }).await?;
//!
//! // Alice and Bob both read version 1; Alice writes first.
//! let alice = docs.get("d1").await?.expect("exists");
//! let bob = docs.get("d1").await?.expect("exists");
//! let v2 = docs.update("d1", alice.version, Doc { title: "Final".into(), ..alice.value }).await?;
//!
//! // Bob's write against version 1 conflicts, carrying the record as it is now.
//! let mut bobs_doc = bob.value.clone();
//! bobs_doc.tags.push("urgent".into());
//! let err = docs.update("d1", bob.version, bobs_doc).await.unwrap_err();
//! let Error::Conflict(conflict @ Conflict::VersionMismatch { current, .. }) = &err else {
//!     panic!("expected a version conflict, got {err}");
//! };
//! assert_eq!(*current, Some(v2));
//!
//! // Merge into what is there now and retry; over HTTP, that first answer was a 409.
//! let theirs = conflict.current_record::<Doc>()?.expect("still exists");
//! let mut merged = theirs.value;
//! merged.tags.push("urgent".into());
//! let v3 = docs.update("d1", theirs.version, merged).await?;
//! assert_eq!(docs.get("d1").await?.expect("exists").version, v3);
//! # Ok::<(), revkv::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Versions
//!
//! Versions come from one store-wide sequence, so for any key they only grow: across updates,
//! delete and re-create, restarts and crashes. The sequence's high-water mark is made durable
//! before any number under it is handed out, so even a version that was returned and then lost
//! in a crash is never issued again: a client holding an old version can never overwrite by
//! luck (no ABA). Versions are not contiguous: a crash skips the rest of the mark (up to about
//! a million versions on the embedded engine, 65,536 per process on etcd), but a clean close
//! gives it back, so the first version after a reopen is the one after the last issued (on
//! etcd, unless another process took versions since).
//!
//! # Unique indexes, states and transactions
//!
//! [`CollectionBuilder::unique`] declares a unique index; an insert or update that would give
//! a value to a second record fails with [`Conflict::Unique`], and an update or delete frees
//! the old value in the same atomic step. [`CollectionBuilder::states`] declares a state
//! machine; an update along an undeclared transition fails with [`Conflict::Transition`].
//! [`Store::transaction`] changes records across collections all-or-nothing.
//!
//! # Queries
//!
//! [`CollectionBuilder::index`] declares a non-unique index, kept in each record's own commit.
//! [`Collection::query`] reads a page of a [`Query`]: the records of one index value or a range
//! of values, a key range or a prefix, in order or in reverse; [`Page::next`] is the token that
//! resumes it without skipping or repeating a record that stayed. [`Transaction::query`] is
//! serializable: a transaction whose query result another commit changed (a record entering it
//! included) runs again.
//!
//! # Engines
//!
//! Every change of records is one atomic conditional commit: what was read must still be
//! there, and then all of the writes happen, or none. The embedded engine, the default,
//! makes that out of sled's single-key writes with revkv's own locks, intents and journal.
//! With the `etcd` feature, `StoreBuilder::etcd` keeps the store in an etcd cluster
//! instead, each commit one etcd transaction, so that any number of processes can share a
//! store with every guarantee above holding across them (see that method for what
//! differs). For tests, [`StoreBuilder::memory`] keeps the embedded engine's trees in a
//! [`Memory`], which a test can reopen, copy as a crash would leave it, or damage on purpose.
//!
//! # Beyond conflicts
//!
//! - **Change feed** ([`StoreBuilder::change_feed`]): [`Store::changes_since`] and
//!   [`Store::watch`] give every committed change in commit order, resumable from any retained
//!   position; a position older than the retention is [`Error::HistoryCompacted`].
//! - **History and merge** ([`CollectionBuilder::history`]): [`Collection::get_at`] reads an
//!   earlier version, and [`Collection::update_merge`] merges a change made to an old version
//!   into the current record instead of failing.
//! - **Expiry** ([`Collection::insert_expiring`]): expired records read as absent and free
//!   their unique values; [`Store::sweep_expired`] (or a background sweeper) removes them,
//!   running the collection's [`CollectionBuilder::on_expiry`] handler in the same transaction.
//! - **Observability**: every conflict is a `tracing` event at target `revkv::conflict`
//!   (never with values), and [`Store::stats`] counts conflicts by kind and collection,
//!   `update_with` retries, and the hottest keys of the last minute.
//!
//! # Durability and crash consistency
//!
//! - When a write returns, it is visible to every reader, and it is ordered: a crash keeps a
//!   prefix of the writes in the order they returned, never a later write without an earlier
//!   one. It survives a crash only once something makes it durable.
//! - [`Store::flush`] makes every write that returned before it durable against a process
//!   crash and a power loss: it flushes the engine and then `fdatasync`s its log (and the
//!   files of large values), because sled's own flush stops at `sync_file_range`.
//! - In [`Durability::Immediate`] mode, a write returns only once it is durable: it is first
//!   appended to revkv's journal (a preallocated file in the store's directory) and
//!   `fdatasync`ed, concurrent writers sharing one sync (group commit), and only then applied
//!   to the engine, which is made durable on its own at checkpoints. Opening the store
//!   re-applies what the journal holds beyond the last checkpoint, in whichever mode it is
//!   opened.
//! - A record and its unique-index entries, and all records of a transaction, are written
//!   atomically with respect to crashes: after a crash a write is wholly there or not at all,
//!   and [`Store::verify`] finds the indexes matching the records exactly.
//! - [`StoreBuilder::min_free_bytes`] keeps a reserve of disk space: sled 0.34 can hang when
//!   its disk fills up, so writes are refused with [`Error::DiskFull`] before that. A refused
//!   write stores nothing, not even in the journal, and the store takes writes again once
//!   space is freed.
//!
//! The crash guarantees rest on the engine recovering a prefix of its log (sled stops recovery
//! at the first torn log message); revkv's own multi-key protocols are single-key writes in a
//! careful order on top of that, and the crash tests check both.
//!
//! # Limits
//!
//! Keys are 1 byte to 1 KiB and encoded values at most 16 MiB by default
//! ([`StoreBuilder::max_key_len`], [`StoreBuilder::max_value_len`]); collection and index
//! names are 1 to 64 ASCII letters, digits, `_`, `-` or `.`. Anything outside is a typed
//! [`Error`], checked before anything is stored.

pub mod admin;
mod async_api;
mod backend;
mod blocking;
mod clock;
mod codec;
mod collection;
mod composite;
mod conflict;
mod durability;
mod engine;
mod error;
mod feed;
mod flusher;
mod guard;
#[cfg(feature = "http")]
pub mod http;
mod locks;
mod meta;
mod name;
mod query;
mod retry;
mod spin;
mod stats;
mod store;
mod txn;
mod verify;
mod version;
mod watch;

pub use async_api::{AsyncCollection, AsyncStore, AsyncTransaction, ChangeStream};
pub use backend::Memory;
pub use clock::{Clock, ManualClock, SystemClock};
pub use collection::{Collection, CollectionBuilder, Iter};
pub use composite::composite;
pub use conflict::{Conflict, ConflictKind, Snapshot};
pub use durability::Durability;
#[cfg(feature = "etcd")]
pub use engine::EtcdTls;
pub use engine::{ChangeKind, Retention};
pub use error::{Error, Result};
pub use feed::{Change, Changes};
pub use query::{Page, Query};
pub use stats::{HOT_KEY_WINDOW, HotKey, METRICS, RetryStats, Stats};
pub use store::{Store, StoreBuilder};
pub use txn::Transaction;
pub use verify::{Problem, Report};
pub use version::{Version, Versioned};
pub use watch::Watch;
