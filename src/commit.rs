//! Conditional commits: the one way revkv's layers change records.
//!
//! A [`Commit`] lists what it requires of keys ([`Compare`]: a key holds these bytes, or
//! nothing) and the single-key writes to make if every requirement holds; the engine applies
//! it all or nothing ([`Engine::commit_if`](crate::engine::Engine::commit_if)). Collections,
//! unique indexes, state guards, transactions and expiry all work the same way: read without
//! locks ([`Recording`] remembers what), decide what to write, commit on condition that what
//! they read is unchanged, and read again when it has changed.

use std::time::SystemTime;

use crate::backend::Bytes;
use crate::collection::schema::{Keyspace, View};
use crate::store::Route;
use crate::{Result, Version};

/// What a commit requires of one key: that it holds `holds` (`None`: nothing).
pub(crate) struct Compare<'a> {
    pub(crate) keyspace: &'a Keyspace,
    pub(crate) key: &'a [u8],
    pub(crate) holds: Option<&'a [u8]>,
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
    pub(crate) writes: Vec<Write<'a>>,
    pub(crate) route: Route,
    /// When the commit happens, as its change feed entry records it.
    pub(crate) modified: SystemTime,
}

/// Reads the engine and remembers what it read, so that a commit can require it unchanged.
/// A key read twice reads the same, as in a transaction.
pub(crate) struct Recording<'s> {
    now: SystemTime,
    reads: Vec<(&'s Keyspace, Vec<u8>, Option<Bytes>)>,
}

impl<'s> Recording<'s> {
    pub(crate) fn at(now: SystemTime) -> Self {
        Self {
            now,
            reads: Vec::new(),
        }
    }

    /// Takes `key` to hold `seen` (`None`: nothing) without reading it: the commit checks
    /// that guess.
    pub(crate) fn assume(&mut self, keyspace: &'s Keyspace, key: &[u8], seen: Option<Bytes>) {
        self.reads.push((keyspace, key.to_vec(), seen));
    }

    /// A commit that writes nothing and requires everything read to be unchanged; add the
    /// writes with struct update syntax.
    pub(crate) fn unchanged(&self, route: Route) -> Commit<'_> {
        let compares = self.reads.iter().map(|(keyspace, key, seen)| Compare {
            keyspace,
            key,
            holds: seen.as_deref(),
        });
        Commit {
            compares: compares.collect(),
            writes: Vec::new(),
            route,
            modified: self.now,
        }
    }

    /// Whether the reads may not all be from one moment: a decision on them is checked
    /// again before it is reported.
    pub(crate) fn read_several(&self) -> bool {
        self.reads.len() > 1
    }
}

impl<'s> View<'s> for Recording<'s> {
    fn read(&mut self, keyspace: &'s Keyspace, key: &[u8]) -> Result<Option<Bytes>> {
        let seen = self
            .reads
            .iter()
            .find(|(space, k, _)| space.name == keyspace.name && k == key);
        if let Some((_, _, seen)) = seen {
            return Ok(seen.clone());
        }
        let seen = keyspace.tree.get(key)?;
        self.reads.push((keyspace, key.to_vec(), seen.clone()));
        Ok(seen)
    }

    fn now(&self) -> SystemTime {
        self.now
    }
}
