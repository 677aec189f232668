//! The error type of every fallible revkv call.

use std::path::PathBuf;

use crate::Conflict;
use crate::codec::DecodeError;

/// Boxed source of a storage-engine error.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a revkv call.
///
/// [`Error::Conflict`] is the expected outcome of concurrent writes and rules: the caller can
/// resolve it (re-read, merge, retry). Every other variant is a bad input, a missing record, or
/// a failure of the storage below, and retrying the same call will not help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The write conflicted; see [`Conflict`] for what the caller can do.
    #[error(transparent)]
    Conflict(#[from] Conflict),

    /// The record does not exist (from calls that need one, such as `update_with`).
    #[error("{collection}/{key} does not exist")]
    NotFound {
        /// Collection that was searched.
        collection: String,
        /// Key that was not found.
        key: String,
    },

    /// A key was empty.
    #[error("keys must not be empty (collection {collection})")]
    EmptyKey {
        /// Collection the key was meant for.
        collection: String,
    },

    /// A key was longer than the store's limit.
    #[error(
        "a key of {len} bytes is longer than the limit of {max} bytes (collection {collection})"
    )]
    KeyTooLong {
        /// Collection the key was meant for.
        collection: String,
        /// Length of the key in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },

    /// An encoded value was larger than the store's limit.
    #[error(
        "a value of {len} bytes for {collection}/{key} is larger than the limit of {max} bytes"
    )]
    ValueTooLarge {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// Encoded length of the value in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },

    /// A unique-index value was longer than the key limit (index values are stored as keys).
    #[error(
        "index {index} of {collection} cannot hold a value of {len} bytes (limit: {max} bytes)"
    )]
    IndexValueTooLong {
        /// Collection of the record.
        collection: String,
        /// Name of the unique index.
        index: String,
        /// Length of the value in bytes.
        len: usize,
        /// The configured key limit.
        max: usize,
    },

    /// A collection, index or state name is not allowed.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// `find_unique` or a [`Query`](crate::Query) named an index the collection does not
    /// declare (for `find_unique`, a unique one).
    #[error("collection {collection} has no index named {index:?} of the kind asked for")]
    UnknownIndex {
        /// Collection that was searched.
        collection: String,
        /// The index name that was asked for.
        index: String,
    },

    /// A [`Query`](crate::Query) cannot be run as it stands (such as a limit of zero).
    #[error("invalid query: {reason}")]
    InvalidQuery {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A page token given to [`Query::after`](crate::Query::after) is malformed or belongs to
    /// another query.
    #[error("invalid page token: {reason}; start the query again without one")]
    InvalidPageToken {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A collection's declaration does not fit what the store holds (for example a new unique
    /// index over records that already share a value, or two open handles that disagree).
    #[error("collection {collection}: {detail}")]
    Schema {
        /// Collection whose declaration was refused.
        collection: String,
        /// What does not fit.
        detail: String,
    },

    /// A transaction was handed a collection opened from a different store.
    #[error("collection {collection} belongs to another store than this transaction's")]
    ForeignCollection {
        /// The collection's name.
        collection: String,
    },

    /// A value could not be serialized.
    #[error("cannot encode the value for {location}: {source}")]
    Encode {
        /// `collection/key` of the value.
        location: String,
        /// What the serializer reported.
        #[source]
        source: Source,
    },

    /// Stored bytes could not be read: they are damaged or not revkv's.
    #[error("stored bytes at {location} are corrupt: {reason}")]
    Corrupt {
        /// Where the bytes were found (`collection/key`, an index entry, the store's metadata).
        location: String,
        /// What is wrong with them.
        reason: String,
    },

    /// Stored bytes were written in a newer format than this build reads.
    #[error(
        "the {what} at {location} has format {found}, newer than the format {supported} this \
         revkv reads; open the store with a newer revkv"
    )]
    UnsupportedFormat {
        /// Where the bytes were found.
        location: String,
        /// What kind of stored value it is.
        what: &'static str,
        /// The format number found.
        found: u8,
        /// The newest format this build reads.
        supported: u8,
    },

    /// Input given to [`Store::import`](crate::Store::import) is not a whole export.
    #[error("line {line} of the export: {reason}")]
    InvalidExport {
        /// The line, counted from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// An import or backup was asked to write into a store that holds data already.
    #[error("{store} is not empty: imports and backups write only into an empty store")]
    NotEmpty {
        /// The store or directory written into.
        store: String,
    },

    /// The etcd cluster refused the user's name or password
    /// (`StoreBuilder::etcd_user`, feature `etcd`).
    #[error("etcd refused the user: wrong name or password")]
    EtcdAuthentication,

    /// The TLS handshake with the etcd cluster failed: a certificate authority that did not
    /// sign the members' certificates, or a member's certificate expired or made for another
    /// host. (A member that refuses the client's certificate closes the connection without
    /// saying why, which a client cannot tell from a member going away: that ends as
    /// [`Error::Unavailable`], and the member's log names the certificate.)
    #[error("the TLS handshake with etcd failed: {reason}")]
    EtcdCertificate {
        /// What the TLS library said.
        reason: String,
    },

    /// The etcd user may not read or write the store's keys.
    #[error(
        "the etcd user has no permission on the store's keys: grant its role the prefix \
         {prefix} (etcdctl role grant-permission --prefix=true ROLE readwrite {prefix})"
    )]
    EtcdPermission {
        /// The prefix every key of the store lies under.
        prefix: String,
    },

    /// The etcd namespace holds a store in the key layout of an earlier revkv (keys under
    /// `revkv\0<namespace>\0`, which no etcd role can be granted), which this revkv does not
    /// open as it is.
    #[error(
        "the etcd namespace {namespace} holds a store in revkv's earlier key layout; move it to \
         the current one with `revkv copy etcd-legacy://HOSTS/{namespace} etcd://HOSTS/NEW`"
    )]
    LegacyLayout {
        /// The namespace.
        namespace: String,
    },

    /// The store's directory is held by another open store, in this process or another.
    #[error("the store at {} is already open (by this or another process)", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },

    /// An earlier write or sync failed (for example on a full disk), so the store refuses
    /// writes until it is reopened; reopening completes or discards the write that failed.
    /// What was acknowledged before stays readable.
    #[error("an earlier write failed, and the store refuses writes until it is reopened")]
    Poisoned,

    /// A transaction kept finding that what it read changed before it could commit, and gave
    /// up after this many attempts. Retry it later.
    #[error("the transaction lost the race to commit {attempts} times in a row and gave up")]
    Contention {
        /// How many times it ran.
        attempts: u32,
    },

    /// The store's file system has less free space than the store keeps in reserve, so writes
    /// are refused before the storage engine meets a full disk. Nothing of the refused write
    /// is stored, reads still work, and writes are taken again once space is freed. (The
    /// engine's own writes are refused only below half the reserve; a write admitted just
    /// before the reserve was reached that meets that limit halfway poisons the store, which
    /// then needs a reopen.)
    #[error(
        "the disk holding {} has {free_bytes} bytes free, below the reserve of {reserve_bytes}; \
         writes are refused until space is freed",
        path.display()
    )]
    DiskFull {
        /// The store's directory.
        path: PathBuf,
        /// Free bytes found.
        free_bytes: u64,
        /// The configured reserve ([`StoreBuilder::min_free_bytes`](crate::StoreBuilder::min_free_bytes)).
        reserve_bytes: u64,
    },

    /// The change feed no longer holds every change after the position asked for: retention
    /// pruned them. Start again from a full read, then follow the feed from `oldest`.
    #[error("the change feed no longer holds that position; the oldest it holds is {oldest}")]
    HistoryCompacted {
        /// The oldest position the feed still holds.
        oldest: u64,
    },

    /// The store was opened without a change feed
    /// ([`StoreBuilder::change_feed`](crate::StoreBuilder::change_feed)).
    #[error("the store keeps no change feed; open it with StoreBuilder::change_feed")]
    NoChangeFeed,

    /// [`Collection::update_merge`](crate::Collection::update_merge) was called on a
    /// collection that keeps no history, so it could never find the version a change was made
    /// to. Declare one with [`CollectionBuilder::history`](crate::CollectionBuilder::history).
    #[error(
        "collection {collection} keeps no history, so update_merge cannot find the version a \
         change was made to; declare one with CollectionBuilder::history"
    )]
    NoHistory {
        /// The collection.
        collection: String,
    },

    /// A commit is larger than the storage engine takes in one atomic step: on etcd, more
    /// compares or writes than a transaction may hold (128 by default), or a request larger
    /// than etcd accepts (1.5 MiB by default). Nothing of it was stored. Split the
    /// transaction, or keep large values elsewhere.
    #[error(
        "the commit has {} {what}, more than the storage engine takes in one step ({limit})",
        found.map_or_else(|| "too many".to_owned(), |n| n.to_string())
    )]
    CommitTooLarge {
        /// What is counted: `operations` or `bytes`.
        what: &'static str,
        /// How many the commit has, where known before it was sent.
        found: Option<usize>,
        /// The most the engine takes.
        limit: usize,
    },

    /// The storage engine could not be reached for as long as a call may wait: on etcd, no
    /// member answered, or the cluster had no leader, for the whole of
    /// `StoreBuilder::etcd_deadline` (feature `etcd`). A call that rides
    /// out a shorter outage (a leader election, a member restarting) does not see this. Nothing
    /// is known to have been written: a write may or may not have been applied, as with any
    /// answer that was lost. Retry later.
    #[error(
        "the storage engine was unavailable for {}s, longer than a call waits; retry later",
        waited.as_secs()
    )]
    Unavailable {
        /// How long the call kept trying.
        waited: std::time::Duration,
        /// The last failure seen.
        #[source]
        source: Source,
    },

    /// The operating system reported an I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The storage engine reported an error that is neither I/O nor corruption.
    #[error("storage engine error: {0}")]
    Storage(#[source] Source),
}

impl Error {
    /// The conflict, if this error is one.
    #[must_use]
    pub fn as_conflict(&self) -> Option<&Conflict> {
        match self {
            Self::Conflict(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn decode(error: DecodeError, location: String) -> Self {
        match error {
            DecodeError::FutureFormat {
                what,
                found,
                supported,
            } => Self::UnsupportedFormat {
                location,
                what,
                found,
                supported,
            },
            DecodeError::Corrupt(reason) => Self::Corrupt { location, reason },
        }
    }

    pub(crate) fn encode(error: bincode::Error, location: String) -> Self {
        Self::Encode {
            location,
            source: error,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
