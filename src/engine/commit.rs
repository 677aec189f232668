//! Conditional commits: the one way revkv's layers change records.
//!
//! A [`Commit`] lists what it requires of keys ([`Compare`]: a key holds these bytes, or
//! nothing) and the single-key writes to make if every requirement holds; the engine applies
//! it all or nothing ([`Engine::commit`](crate::engine::contract::Engine::commit)). Collections, unique
//! indexes, state guards, transactions and expiry all work the same way: read without locks
//! (a collection's `Recording` remembers what), decide what to write, commit on condition that
//! what they read is unchanged, and read again when it has changed.
//!
//! The writes of a commit are logged as [`LoggedWrite`]s, in the local engine's redo records,
//! and, as [`EntryWrite`]s with the change a reader sees, in both engines' change feed.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, KeyRange};
use crate::engine::keyspace::Keyspace;
use crate::{Result, Version};

/// How a write reaches the engine.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Through the journal in [`Durability::Immediate`](crate::Durability::Immediate) mode, so
    /// that it is durable before it is applied.
    Logged,
    /// Straight to the engine, for batches made durable as a whole afterwards
    /// ([`Engine::make_direct_writes_durable`](crate::engine::contract::Engine::make_direct_writes_durable)).
    Direct,
}

/// What a commit requires of one key: that it holds `holds` (`None`: nothing).
pub(crate) struct Compare<'a> {
    pub(crate) keyspace: &'a Keyspace,
    pub(crate) key: &'a [u8],
    pub(crate) holds: Option<&'a [u8]>,
}

/// What a commit requires of a range of keys: that no key entered `range` of `keyspace` since
/// a scan ([`Engine::scan`](crate::engine::contract::Engine::scan)) found `keys` (sorted)
/// there at `revision`. (A key that changed or left is the business of the compares of what it names.)
/// The local engine checks that the range holds no key but `keys`; etcd, that no key in the
/// range was written after `revision`.
#[derive(Clone)]
pub(crate) struct RangeRead {
    pub(crate) keyspace: Keyspace,
    pub(crate) range: KeyRange,
    pub(crate) keys: Vec<Vec<u8>>,
    #[cfg_attr(not(feature = "etcd"), expect(dead_code, reason = "etcd's alone"))]
    pub(crate) revision: i64,
}

/// One single-key write of a commit; `None` removes the key.
pub(crate) struct Write<'a> {
    pub(crate) keyspace: &'a Keyspace,
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
    /// Set on the write of a record, for the change feed.
    pub(crate) record: Option<RecordChange>,
}

/// What the write of a record changes, as the change feed shows it.
#[derive(Clone, Copy)]
pub(crate) struct RecordChange {
    /// Whether the record existed before the commit.
    pub(crate) existed: bool,
    pub(crate) version: Version,
}

/// Writes to make, in order, if every compare holds.
pub(crate) struct Commit<'a> {
    pub(crate) compares: Vec<Compare<'a>>,
    pub(crate) ranges: &'a [RangeRead],
    pub(crate) writes: Vec<Write<'a>>,
    pub(crate) route: Route,
    /// When the commit happens, as its change feed entry records it.
    pub(crate) modified: SystemTime,
}

/// What a change did to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The record was created.
    Insert,
    /// The record was replaced.
    Update,
    /// The record was deleted (or expired and was swept).
    Delete,
}

impl ChangeKind {
    /// The kind of a write that finds the record existing or not and leaves it there or not;
    /// `None` for a record created and deleted within one transaction, which changed nothing.
    pub(crate) fn of(existed: bool, exists: bool) -> Option<Self> {
        match (existed, exists) {
            (false, true) => Some(Self::Insert),
            (true, true) => Some(Self::Update),
            (true, false) => Some(Self::Delete),
            (false, false) => None,
        }
    }
}

/// One single-key write of a commit as the engine logs it: `value` at `key` of the tree named
/// `tree`, or its removal for `None`. The local engine's three redo records list these (a
/// transaction's intent, a journal frame, a change feed entry), and one redo makes them again
/// after a crash; the writes carry absolute values, so making one twice is harmless.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoggedWrite {
    pub(crate) tree: String,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

impl LoggedWrite {
    pub(crate) fn of(w: &Write<'_>) -> Self {
        Self {
            tree: w.keyspace.name.to_string(),
            key: w.key.to_vec(),
            value: w.value.map(<[u8]>::to_vec),
        }
    }

    /// Makes the write again after a crash: the one redo of every log that lists writes.
    pub(crate) fn redo(&self, backend: &dyn Backend) -> Result<()> {
        let tree = backend.tree(&self.tree)?;
        match &self.value {
            Some(value) => tree.put(&self.key, value),
            None => tree.remove(&self.key),
        }
    }
}

/// A logged write in a change feed entry, with the change a reader sees for the writes of
/// records. (Encoded as the write's fields followed by `change`.)
#[derive(Serialize, Deserialize)]
pub(crate) struct EntryWrite {
    pub(crate) write: LoggedWrite,
    pub(crate) change: Option<(ChangeKind, Version)>,
}

impl EntryWrite {
    fn of(w: &Write<'_>) -> Self {
        Self {
            write: LoggedWrite::of(w),
            change: w.record.and_then(|record| {
                let kind = ChangeKind::of(record.existed, w.value.is_some())?;
                Some((kind, record.version))
            }),
        }
    }
}

/// A [`Commit`] with its own copies of keyspaces, keys and values, for a thread other than
/// the caller's.
pub(crate) struct OwnedCommit {
    compares: Vec<OwnedKey>,
    ranges: Vec<RangeRead>,
    writes: Vec<(OwnedKey, Option<RecordChange>)>,
    route: Route,
    modified: SystemTime,
}

/// A keyspace, a key in it, and the bytes compared or written there (`None`: nothing).
type OwnedKey = (Keyspace, Vec<u8>, Option<Vec<u8>>);

impl OwnedCommit {
    /// The commit, borrowing from `self`.
    pub(crate) fn commit(&self) -> Commit<'_> {
        Commit {
            compares: (self.compares.iter())
                .map(|(keyspace, key, holds)| Compare {
                    keyspace,
                    key,
                    holds: holds.as_deref(),
                })
                .collect(),
            ranges: &self.ranges,
            writes: (self.writes.iter())
                .map(|((keyspace, key, value), record)| Write {
                    keyspace,
                    key,
                    value: value.as_deref(),
                    record: *record,
                })
                .collect(),
            route: self.route,
            modified: self.modified,
        }
    }
}

impl Commit<'_> {
    /// The commit with its own copies of what it borrows.
    pub(crate) fn to_owned(&self) -> OwnedCommit {
        OwnedCommit {
            compares: (self.compares.iter())
                .map(|c| {
                    (
                        c.keyspace.clone(),
                        c.key.to_vec(),
                        c.holds.map(<[u8]>::to_vec),
                    )
                })
                .collect(),
            ranges: self.ranges.to_vec(),
            writes: (self.writes.iter())
                .map(|w| {
                    let value = w.value.map(<[u8]>::to_vec);
                    ((w.keyspace.clone(), w.key.to_vec(), value), w.record)
                })
                .collect(),
            route: self.route,
            modified: self.modified,
        }
    }

    /// Every write of the commit, as the local feed records them: its entry is also their redo
    /// record.
    pub(crate) fn entry_writes(&self) -> Vec<EntryWrite> {
        self.writes.iter().map(EntryWrite::of).collect()
    }

    /// The writes that change records as a reader sees them: what the etcd engine's feed
    /// records.
    #[cfg(feature = "etcd")]
    pub(crate) fn record_changes(&self) -> Vec<EntryWrite> {
        let records = self.writes.iter().filter(|w| w.record.is_some());
        records
            .map(EntryWrite::of)
            .filter(|w| w.change.is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::{FEED, INTENT, encode_tagged};
    use crate::engine::commit::{ChangeKind, EntryWrite, LoggedWrite};
    use crate::version::Version;

    /// Logs written before `LoggedWrite` listed writes as tuples: the bytes are the same, so
    /// what an older revkv left to redo is read alike.
    #[test]
    fn logged_writes_encode_as_the_tuples_logs_held_before() {
        let write = LoggedWrite {
            tree: "c/users".into(),
            key: b"u1".to_vec(),
            value: Some(b"bytes".to_vec()),
        };
        let change = Some((ChangeKind::Update, Version::new(7)));
        let (tree, key, value) = (write.tree.clone(), write.key.clone(), write.value.clone());
        assert_eq!(
            encode_tagged(INTENT, &[&write]).unwrap(),
            encode_tagged(INTENT, &[(&tree, &key, &value)]).unwrap()
        );
        let entry = EntryWrite { write, change };
        assert_eq!(
            encode_tagged(FEED, &[entry]).unwrap(),
            encode_tagged(FEED, &[(tree, key, value, change)]).unwrap()
        );
    }
}
