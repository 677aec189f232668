//! The change feed as a reader sees it: every committed change of a record, in commit order,
//! resumable from any position still retained. Each engine keeps its own feed
//! (`engine/feed.rs` says what one is); this turns what it reads into changes of collections.

use serde::de::DeserializeOwned;

use crate::codec;
use crate::engine::{ChangeKind, EntryWrite, FeedChanges};
use crate::{Error, Result, Version};

/// One committed change, from [`Store::changes_since`](crate::Store::changes_since).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Change {
    /// Its position in the feed.
    pub seq: u64,
    /// The record's collection.
    pub collection: String,
    /// The record's key.
    pub key: String,
    /// The version the change gave the record (for a delete, the version of the deletion).
    pub version: Version,
    /// What the change did.
    pub kind: ChangeKind,
    /// The record as written (`None` for a delete), still encoded: see [`Change::value`].
    record: Option<Vec<u8>>,
}

impl Change {
    /// The record's new value decoded as `T`, `None` for a delete.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the value does not decode as `T`.
    pub fn value<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let location = || format!("change {} of {}/{}", self.seq, self.collection, self.key);
        self.record
            .as_deref()
            .map(|bytes| {
                let (_, payload) =
                    codec::decode_record(bytes).map_err(|e| Error::decode(e, location()))?;
                codec::decode_payload(payload).map_err(|e| Error::decode(e, location()))
            })
            .transpose()
    }
}

impl Change {
    /// The change an engine's feed read at `seq`, if it is a change of a collection's record.
    pub(crate) fn of(seq: u64, write: EntryWrite) -> Option<Self> {
        let (kind, version) = write.change?;
        Some(Self {
            seq,
            collection: write.write.tree.strip_prefix("c/")?.to_owned(),
            key: String::from_utf8(write.write.key).ok()?,
            version,
            kind,
            record: write.write.value,
        })
    }
}

/// Iterator over changes, from [`Store::changes_since`](crate::Store::changes_since).
pub struct Changes {
    since: u64,
    changes: FeedChanges,
}

impl Changes {
    /// The changes after `since` that an engine's feed reads.
    pub(crate) fn new(since: u64, changes: FeedChanges) -> Self {
        Self { since, changes }
    }
}

impl Iterator for Changes {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.changes.next()? {
                Ok((seq, write)) => {
                    if let Some(change) = Change::of(seq, write) {
                        return Some(Ok(change));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}
