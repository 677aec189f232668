//! What a collection reads before it writes: the committed state, or a [`Recording`] of what it
//! read, which a commit then requires unchanged.
//!
//! A [`Recording`] is how the checks of a write stay free of I/O: they run as a pass over what
//! has been read so far, a key not read yet reads as absent and is noted, and
//! [`settle`] reads the noted keys from the engine (awaiting it, all at once) and
//! runs the pass again, until a pass needs nothing new. The checks are therefore written once,
//! as plain functions, for the async API and the blocking one alike. Where a read is no round
//! trip (the local engine), a pass reads at once instead and the first pass is the last.

use std::borrow::Borrow;
use std::time::SystemTime;

use crate::Result;
use crate::backend::Bytes;
use crate::blocking::block_on;
use crate::engine::{Commit, Compare, Engine, Keyspace, Route};

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

/// A view whose passes note the keys they read that are not read yet (see the module docs):
/// a write's [`Recording`], and a transaction.
pub(crate) trait Settling: Send {
    /// How the view holds a keyspace it has still to read.
    type Space: Borrow<Keyspace> + Send + Sync;

    /// The keys the last pass read that are not read yet, taken.
    fn take_missing(&mut self) -> Vec<(Self::Space, Vec<u8>)>;

    /// Records what `key` of `keyspace` holds, as read from the engine.
    fn record(&mut self, keyspace: Self::Space, key: Vec<u8>, seen: Option<Bytes>);
}

/// Runs `pass` over `view` until it reads nothing that is not read yet, reading what each pass
/// missed from `engine` in between; what the last pass returned.
pub(crate) async fn settle<V: Settling, R>(
    view: &mut V,
    engine: &dyn Engine,
    mut pass: impl FnMut(&mut V) -> R,
) -> Result<R> {
    loop {
        let outcome = pass(view);
        let missing = view.take_missing();
        if missing.is_empty() {
            return Ok(outcome);
        }
        drop(outcome);
        let seen = read_all(engine, &missing).await?;
        for ((keyspace, key), seen) in missing.into_iter().zip(seen) {
            view.record(keyspace, key, seen);
        }
    }
}

/// What `keys` hold, read from `engine` all at once.
async fn read_all<K: Borrow<Keyspace>>(
    engine: &dyn Engine,
    keys: &[(K, Vec<u8>)],
) -> Result<Vec<Option<Bytes>>> {
    let keys = keys
        .iter()
        .map(|(keyspace, key)| (keyspace.borrow(), &key[..]));
    engine.read_many(keys.collect()).await
}

/// Remembers what a write's checks read, so that a commit can require it unchanged. A key read
/// twice reads the same, as in a transaction.
pub(crate) struct Recording<'s> {
    now: SystemTime,
    reads: Vec<(&'s Keyspace, Vec<u8>, Option<Bytes>)>,
    /// Keys a pass read that are not read yet (see the module docs).
    missing: Vec<(&'s Keyspace, Vec<u8>)>,
    /// Whether a pass reads the keyspace at once, the engine's reads being no round trips.
    reads_at_once: bool,
}

impl<'s> Recording<'s> {
    /// A view at `now` of what `engine` holds.
    pub(crate) fn at(now: SystemTime, engine: &dyn Engine) -> Self {
        Self {
            now,
            reads: Vec::new(),
            missing: Vec::new(),
            reads_at_once: !engine.reads_are_round_trips(),
        }
    }

    /// [`settle`], waited for: for the blocking maintenance of indexes.
    pub(crate) fn settle_now<R>(
        &mut self,
        engine: &dyn Engine,
        pass: impl FnMut(&mut Self) -> R,
    ) -> Result<R> {
        block_on(settle(self, engine, pass))
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
            ranges: &[],
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

impl<'s> Settling for Recording<'s> {
    type Space = &'s Keyspace;

    fn take_missing(&mut self) -> Vec<(&'s Keyspace, Vec<u8>)> {
        std::mem::take(&mut self.missing)
    }

    fn record(&mut self, keyspace: &'s Keyspace, key: Vec<u8>, seen: Option<Bytes>) {
        self.reads.push((keyspace, key, seen));
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
        if self.reads_at_once {
            let seen = keyspace.tree.get(key)?;
            self.reads.push((keyspace, key.to_vec(), seen.clone()));
            return Ok(seen);
        }
        let noted = self
            .missing
            .iter()
            .any(|(space, k)| space.name == keyspace.name && k == key);
        if !noted {
            self.missing.push((keyspace, key.to_vec()));
        }
        Ok(None)
    }

    fn now(&self) -> SystemTime {
        self.now
    }
}
