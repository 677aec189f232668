//! Snapshots: whole keyspaces read as of one point in the commit order, while commits go on.

use crate::Result;
use crate::backend::Bytes;

/// Entries of one keyspace of a snapshot, in key order: the index of the keyspace in the list
/// the snapshot was taken of, and the entries.
pub(crate) type SnapshotBatch = (usize, Vec<(Vec<u8>, Bytes)>);

/// A read of whole keyspaces as of one point in the commit order
/// ([`Engine::snapshot`](crate::engine::contract::Engine::snapshot)): every commit before
/// that point is in it, none after.
pub(crate) trait Snapshot: Send {
    /// The next entries: keyspaces in the order they were listed, keys in order, at most
    /// `limit` at a time; `None` once every keyspace has been read.
    fn next_batch(&mut self, limit: usize) -> Result<Option<SnapshotBatch>>;
}
