//! What every engine does for the layers above: store bytes in keyspaces, apply conditional
//! commits, issue versions, make commits durable, keep a change feed.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::{BoxFuture, Either};

use crate::backend::{Bytes, KeyRange, Tree};
use crate::blocking::block_on;
use crate::engine::commit::{Commit, Route, Write};
use crate::engine::feed::ChangeFeed;
use crate::engine::keyspace::Keyspace;
use crate::engine::snapshot::Snapshot;
use crate::locks::Held;
use crate::meta::Meta;
use crate::{Error, Result, Version};

/// The newest store layout this build writes; a store marked with a newer one is refused.
const STORE_FORMAT: u8 = 1;

/// The most removals [`Engine::remove_all`] puts in one commit: well within an etcd
/// transaction's 128 operations.
pub(crate) const REMOVALS_PER_COMMIT: usize = 64;

/// What an engine's reads and commits return: done already (the local engine's, with no
/// allocation), or a request under way (etcd's).
pub(crate) type EngineFuture<'a, T> = Either<Ready<Result<T>>, BoxFuture<'a, Result<T>>>;

/// An [`EngineFuture`] that is done already.
pub(crate) fn done<'a, T>(result: Result<T>) -> EngineFuture<'a, T> {
    Either::Left(ready(result))
}

/// An [`EngineFuture`] still under way.
pub(crate) fn under_way<'a, T>(
    future: impl std::future::Future<Output = Result<T>> + Send + 'a,
) -> EngineFuture<'a, T> {
    Either::Right(Box::pin(future))
}

/// What [`Engine::scan`] read.
pub(crate) struct Scanned {
    /// Keys and values, in the order read.
    pub(crate) entries: Vec<(Vec<u8>, Bytes)>,
    /// Whether the range holds more entries past the last one read.
    pub(crate) more: bool,
    /// The engine's revision the entries were read at, where it has revisions (etcd; else 0).
    pub(crate) revision: i64,
}

/// What [`Engine::pause_commits`] holds: nothing where the engine cannot pause writers.
pub(crate) type Paused<'a> = Option<Held<'a>>;

/// What stores revkv's bytes and applies its commits.
///
/// Reads and commits are futures, so that one implementation of each operation above serves
/// both the async API, which awaits them, and the blocking API, which runs them with
/// [`block_on`]. The local engine's complete at once; etcd's are its client's requests.
pub(crate) trait Engine: Send + Sync {
    /// Opens (creating if needed) the keyspace called `name`.
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>>;

    /// The keyspace called `name`, opened (created if needed) with [`Engine::tree`].
    fn keyspace(&self, name: String) -> Result<Keyspace> {
        let tree = self.tree(&name)?;
        Ok(Keyspace::new(name, tree))
    }

    /// Up to `limit` entries of `range` in `keyspace`, from its start (or, `reverse`, from its
    /// end), read at one moment: what a commit's
    /// [`RangeRead`](crate::engine::commit::RangeRead) names.
    fn scan<'a>(
        &'a self,
        keyspace: &'a Keyspace,
        range: &'a KeyRange,
        reverse: bool,
        limit: usize,
    ) -> EngineFuture<'a, Scanned> {
        let mut entries = Vec::new();
        for entry in keyspace
            .tree
            .range(range, reverse)
            .take(limit.saturating_add(1))
        {
            match entry {
                Ok(entry) => entries.push(entry),
                Err(e) => return done(Err(e)),
            }
        }
        let more = entries.len() > limit;
        entries.truncate(limit);
        done(Ok(Scanned {
            entries,
            more,
            revision: 0,
        }))
    }

    /// What each of `keys` holds, in their order, read all at once.
    fn read_many<'a>(
        &'a self,
        keys: Vec<(&'a Keyspace, &'a [u8])>,
    ) -> EngineFuture<'a, Vec<Option<Bytes>>> {
        let read = keys.iter().map(|(keyspace, key)| keyspace.tree.get(key));
        done(read.collect())
    }

    /// Applies `commit` if every one of its compares and range reads holds, atomically with
    /// respect to other commits and to crashes. `Ok(false)`: a compare failed, and nothing was written.
    fn commit<'a>(&'a self, commit: &'a Commit<'_>) -> EngineFuture<'a, bool>;

    /// [`Engine::commit`], waited for.
    fn commit_if(&self, commit: &Commit<'_>) -> Result<bool> {
        block_on(self.commit(commit))
    }

    /// Removes `keys` of `keyspace` whatever they hold, through commits without compares of
    /// at most [`REMOVALS_PER_COMMIT`] writes each: for bookkeeping that is only ever removed
    /// when stale (old history entries, done expiry entries, a dropped index), where a crash
    /// between two commits leaves keys that the next removal takes.
    fn remove_all(&self, keyspace: &Keyspace, keys: &[Vec<u8>], now: SystemTime) -> Result<()> {
        for batch in keys.chunks(REMOVALS_PER_COMMIT) {
            let writes = batch.iter().map(|key| Write {
                keyspace,
                key,
                value: None,
                record: None,
            });
            let commit = Commit {
                compares: Vec::new(),
                ranges: &[],
                writes: writes.collect(),
                route: Route::Direct,
                modified: now,
            };
            self.commit_if(&commit)?;
        }
        Ok(())
    }

    /// A version for a write of a record now at `above` (`None`: absent): greater than
    /// `above`, and never issued before.
    fn next_version(&self, above: Option<Version>) -> EngineFuture<'_, Version>;

    /// Whether a read of a key is a round trip to another machine, which a write saves by
    /// guessing what it last saw and letting its commit's compares check the guess.
    fn reads_are_round_trips(&self) -> bool {
        false
    }

    /// Whether a commit is durable once it returns, so that [`Engine::sync`] has nothing to do.
    fn commits_are_durable(&self) -> bool {
        false
    }

    /// Makes every commit that returned before this call durable: it survives a process crash
    /// and a power loss.
    fn sync(&self) -> Result<()>;

    /// Makes the commits made on [`Route::Direct`](crate::engine::commit::Route::Direct) as durable
    /// as those on the logged route.
    fn make_direct_writes_durable(&self) -> Result<()>;

    /// The change feed, if the store keeps one.
    fn feed(&self) -> Option<&dyn ChangeFeed>;

    /// Holds every commit back until the guard drops, for a check that must see the records
    /// and their indexes from one moment.
    fn pause_commits(&self) -> Paused<'_>;

    /// Every entry of `keyspaces` as of one point in the commit order, read while commits
    /// go on.
    fn snapshot(&self, keyspaces: Vec<Keyspace>) -> Result<Box<dyn Snapshot>>;

    /// A number above every version issued so far.
    fn version_mark(&self) -> Result<u64>;

    /// The position of the newest change in the store's change feed, where the engine can
    /// tell it whether or not this process records the feed (the local engine).
    fn feed_position(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Makes every version issued from now on at least `floor`, durably (an import's, above
    /// every version it brings).
    fn raise_versions(&self, floor: u64) -> Result<()>;
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
