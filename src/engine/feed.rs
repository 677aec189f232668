//! What a change feed is to an engine: the writes of each commit that change records, at
//! positions that only grow, readable from any position still retained. Each engine keeps its
//! own (`local/feed.rs`, `etcd/feed.rs`); the public reader (`crate::feed`) turns what they
//! read into changes of collections.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::Result;
use crate::engine::commit::EntryWrite;

/// How much of the change feed a store keeps (see [`StoreBuilder::change_feed`]).
///
/// [`StoreBuilder::change_feed`]: crate::StoreBuilder::change_feed
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub(crate) max_changes: u64,
    pub(crate) max_age: Duration,
}

impl Retention {
    /// Keep changes whose position is within the last `max_changes` positions and that are
    /// younger than `max_age`.
    #[must_use]
    pub const fn new(max_changes: u64, max_age: Duration) -> Self {
        Self {
            max_changes,
            max_age,
        }
    }
}

impl Default for Retention {
    /// The last million positions, for up to seven days.
    fn default() -> Self {
        Self::new(1_000_000, Duration::from_secs(7 * 24 * 3600))
    }
}

/// A change as an engine's feed holds it: its position and the write of the record.
pub(crate) type FeedChange = (u64, EntryWrite);

/// The changes an engine's feed reads, in order of position.
pub(crate) type FeedChanges = Box<dyn Iterator<Item = Result<FeedChange>> + Send>;

/// Reads a change feed, on either engine.
pub(crate) trait ChangeFeed: Send + Sync {
    /// The changes committed after position `since`, up to the last commit finished now.
    fn since(&self, since: u64) -> Result<FeedChanges>;

    /// Resolves once a change after `position` is committed (or the feed no longer holds
    /// `position`, which reading from it reports).
    fn changed_past(&self, position: u64) -> BoxFuture<'_, Result<()>>;

    /// The changes committed after position `since` up to now, at most `limit`: [`Self::since`]
    /// for async callers.
    fn read_after(&self, since: u64, limit: usize) -> BoxFuture<'_, Result<Vec<FeedChange>>>;

    /// The next changes after position `since`, at least one: those committed already, or,
    /// when there are none, the first committed from now on. What a stream of the feed reads.
    fn next_changes(&self, since: u64) -> BoxFuture<'_, Result<Vec<FeedChange>>>;
}

/// The record changes among a commit's `writes`, at positions counted from `first`, that come
/// after `since`.
pub(crate) fn numbered(writes: Vec<EntryWrite>, first: u64, since: u64) -> Vec<FeedChange> {
    let changes = writes.into_iter().filter(|write| write.change.is_some());
    (first..)
        .zip(changes)
        .filter(|(seq, _)| *seq > since)
        .collect()
}
