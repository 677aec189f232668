//! What a collection reads before it writes: the committed state, or a [`Recording`] of what it
//! read, which a commit then requires unchanged.

use std::time::SystemTime;

use crate::Result;
use crate::backend::Bytes;
use crate::engine::{Commit, Compare, Keyspace, Route};

/// Where checks read from: the committed state, or a transaction's view of it, at a moment
/// that decides which records have expired.
/// `'s` is how long the keyspaces read live: a view may keep them.
pub(crate) trait View<'s> {
    fn read(&mut self, keyspace: &'s Keyspace, key: &[u8]) -> Result<Option<Bytes>>;
    fn now(&self) -> SystemTime;
}

/// Reads the engine directly, without recording what it read: for plain reads, and for the
/// whole-index maintenance of [`index`](super::index) when a collection opens.
pub(crate) struct Committed {
    now: SystemTime,
}

impl Committed {
    pub(crate) fn at(now: SystemTime) -> Self {
        Self { now }
    }
}

impl<'s> View<'s> for Committed {
    fn read(&mut self, keyspace: &'s Keyspace, key: &[u8]) -> Result<Option<Bytes>> {
        keyspace.tree.get(key)
    }

    fn now(&self) -> SystemTime {
        self.now
    }
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
