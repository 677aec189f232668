//! Conditional commits: the one way revkv's layers change records.
//!
//! A [`Commit`] lists what it requires of keys ([`Compare`]: a key holds these bytes, or
//! nothing) and the single-key writes to make if every requirement holds. Collections, unique
//! indexes, state guards, transactions and expiry all work the same way: read without locks,
//! decide what to write and what the decision rests on, commit, and read again when a compare
//! fails. [`Shared::commit_if`] applies a commit atomically:
//! - with respect to other commits: it holds the lock of every key it compares or writes from
//!   the first compare until the last write, so no other commit changes them in between;
//! - with respect to crashes: a change feed entry or a journal frame listing the writes goes
//!   ahead of them, or, without either, an intent when several records change (see
//!   [`intent`]); a single record and its index entries need neither, by their order (see
//!   [`Schema::writes`](crate::collection::schema::Schema::writes)).

use std::time::SystemTime;

use crate::backend::{Bytes, Tree};
use crate::collection::schema::{Keyspace, View};
use crate::feed::{ChangeKind, EntryWrite};
use crate::store::{Route, Shared};
use crate::txn::intent::{self, IntentWrite};
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

impl Shared {
    /// Applies `commit` if every one of its compares holds, as the module docs describe.
    /// `Ok(false)`: a compare failed, and nothing was written.
    pub(crate) fn commit_if(&self, commit: &Commit<'_>) -> Result<bool> {
        let locks = &self.locks;
        let ids = commit
            .compares
            .iter()
            .map(|c| c.keyspace.lock_id(locks, c.key))
            .chain(
                commit
                    .writes
                    .iter()
                    .map(|w| w.keyspace.lock_id(locks, w.key)),
            );
        let _held = locks.lock_all(ids.collect());
        if let Some(swapped) = self.swap_one(commit)? {
            return Ok(swapped);
        }
        for compare in &commit.compares {
            if compare.keyspace.tree.get(compare.key)?.as_deref() != compare.holds {
                return Ok(false);
            }
        }
        if commit.writes.is_empty() {
            return Ok(true);
        }
        self.check_writable()?;
        // With a change feed, the commit's entry, which `Shared::commit` stores first.
        let recorded = match &self.feed {
            Some(feed) => Some(feed.record(entry_writes(&commit.writes), commit.modified)?),
            None => None,
        };
        let listed: Vec<(IntentWrite<'_>, &dyn Tree)> = commit
            .writes
            .iter()
            .map(|w| {
                (
                    (&*w.keyspace.name, w.key, w.value),
                    w.keyspace.tree.as_ref(),
                )
            })
            .collect();
        let log = |log: &mut Vec<intent::OwnedWrite>| {
            log.extend(listed.iter().map(|(write, _)| intent::owned(*write)));
            Ok(())
        };
        let records = commit.writes.iter().filter(|w| w.record.is_some()).count();
        self.commit(commit.route, recorded.as_ref(), log, || {
            if recorded.is_none() && records > 1 && !self.logs_writes() {
                // Without a feed entry or a journal frame, several records need an intent.
                let id = self.sequence.next()?.get();
                intent::apply_atomically(self.intents.as_ref(), id, &listed)
            } else {
                intent::apply_in_order(&listed)
            }
        })?;
        Ok(true)
    }

    /// The commonest commit, one write to the one key it compares, as one compare-and-swap,
    /// the engine's cheapest write; `None` for any other commit, or where a feed entry or a
    /// journal frame must precede the write.
    fn swap_one(&self, commit: &Commit<'_>) -> Result<Option<bool>> {
        let ([compare], [write]) = (&commit.compares[..], &commit.writes[..]) else {
            return Ok(None);
        };
        let logged = commit.route == Route::Logged && self.logs_writes();
        let same_key = compare.keyspace.name == write.keyspace.name && compare.key == write.key;
        if !same_key || self.feed.is_some() || logged {
            return Ok(None);
        }
        self.check_writable()?;
        let tree = &write.keyspace.tree;
        self.write_all(|| tree.swap(write.key, compare.holds, write.value))
            .map(Some)
    }
}

/// The writes of a commit as the change feed records them.
fn entry_writes(writes: &[Write<'_>]) -> Vec<EntryWrite> {
    writes
        .iter()
        .map(|w| EntryWrite {
            tree: w.keyspace.name.to_string(),
            key: w.key.to_vec(),
            value: w.value.map(<[u8]>::to_vec),
            change: w.record.and_then(|record| {
                let kind = ChangeKind::of(record.existed, w.value.is_some())?;
                Some((kind, record.version))
            }),
        })
        .collect()
}

/// Reads the engine and remembers what it read, so that a commit can require it unchanged.
/// A key read twice reads the same, as in a transaction.
pub(crate) struct Recording {
    now: SystemTime,
    reads: Vec<(Keyspace, Vec<u8>, Option<Bytes>)>,
    assumed: bool,
}

impl Recording {
    pub(crate) fn at(now: SystemTime) -> Self {
        Self {
            now,
            reads: Vec::new(),
            assumed: false,
        }
    }

    /// Takes `key` to hold nothing without reading it: the commit checks that guess.
    pub(crate) fn assume_absent(&mut self, keyspace: &Keyspace, key: &[u8]) {
        self.reads.push((keyspace.clone(), key.to_vec(), None));
        self.assumed = true;
    }

    /// Whether something was assumed rather than read.
    pub(crate) fn assumed(&self) -> bool {
        self.assumed
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

impl View for Recording {
    fn read(&mut self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Bytes>> {
        let seen = self
            .reads
            .iter()
            .find(|(space, k, _)| space.name == keyspace.name && k == key);
        if let Some((_, _, seen)) = seen {
            return Ok(seen.clone());
        }
        let seen = keyspace.tree.get(key)?;
        self.reads
            .push((keyspace.clone(), key.to_vec(), seen.clone()));
        Ok(seen)
    }

    fn now(&self) -> SystemTime {
        self.now
    }
}
