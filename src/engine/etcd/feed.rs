//! The change feed on etcd: every commit that changes records also puts those changes, encoded
//! as the local feed encodes a commit's writes, at one key of the namespace. That key's history
//! in etcd is the feed, read with an etcd Watch from a revision.
//!
//! A change's position is its commit's revision times 2^16 plus an index that ends at 2^16 - 1
//! with the commit's last change (an etcd transaction holds far fewer than 2^16). So a reader
//! that saw a whole commit resumes at the next revision, and one that saw part of it at the
//! same revision. Revisions order the commits of every process, and etcd answers a commit only
//! once it is visible at its revision: a reader resuming from the last position it saw misses
//! nothing.
//!
//! Once etcd compacts its history, revisions before the compaction are gone. A reader behind
//! it is [`Error::HistoryCompacted`] only if the feed changed in what it missed: the key as of
//! the compaction shows when it last changed.

use std::sync::Arc;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse, WatchStream};

use futures::future::BoxFuture;

use crate::codec::{self, FEED};
use crate::engine::commit::{Commit, EntryWrite};
use crate::engine::etcd::cluster::{Cluster, etcd_key, storage_error};
use crate::engine::feed::{ChangeFeed, FeedChange, FeedChanges, numbered};
use crate::{Error, Result};

/// The keyspace of the feed's one key.
const KEYSPACE: &str = "revkv/feed";

#[derive(Clone)]
pub(super) struct EtcdFeed {
    cluster: Arc<Cluster>,
    /// The etcd key whose history is the feed.
    key: Vec<u8>,
}

impl EtcdFeed {
    pub(super) fn new(cluster: Arc<Cluster>, namespace: &[u8]) -> Self {
        Self {
            cluster,
            key: etcd_key(namespace, KEYSPACE, b""),
        }
    }

    /// The feed's key and what `commit` puts there: its record changes, if it makes any.
    pub(super) fn entry(&self, commit: &Commit<'_>) -> Result<Option<(&[u8], Vec<u8>)>> {
        let changes = commit.record_changes();
        if changes.is_empty() {
            return Ok(None);
        }
        let entry = codec::encode_tagged(FEED, &changes)
            .map_err(|e| Error::encode(e, "a change feed entry".into()))?;
        Ok(Some((&self.key, entry)))
    }

    /// The revision of the feed's last change as of `revision` (`None`: now), if any.
    async fn last_change(&self, revision: Option<i64>) -> Result<Option<i64>> {
        let key = self.key.clone();
        let options = revision.map(|r| GetOptions::new().with_revision(r));
        let request = self.cluster.retry(&self.cluster.kv, move |mut kv| {
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, options).await }
        });
        let answer = request.await?;
        Ok(answer
            .kvs()
            .first()
            .map(etcd_client::KeyValue::mod_revision))
    }

    /// Where a watch from revision `from` that etcd refused, having compacted its history up to
    /// `compacted`, can start instead: at `compacted`, if the feed did not change in between.
    async fn resume(&self, from: i64, compacted: i64) -> Result<i64> {
        match self.last_change(Some(compacted)).await? {
            Some(changed) if changed >= from => Err(Error::HistoryCompacted {
                oldest: first_position(compacted),
            }),
            _ => Ok(compacted),
        }
    }

    async fn watch(&self, from: i64) -> Result<WatchStream> {
        let options = WatchOptions::new().with_start_revision(from);
        let key = self.key.clone();
        let request = self.cluster.retry(&self.cluster.watch, move |mut watch| {
            let (key, options) = (key.clone(), options.clone());
            async move { watch.watch(key, Some(options)).await }
        });
        request.await
    }
}

impl ChangeFeed for EtcdFeed {
    fn since(&self, since: u64) -> Result<FeedChanges> {
        let Some(mut reader) = self.cluster.run(Reader::start(self, since))? else {
            return Ok(Box::new(std::iter::empty()));
        };
        // The first response says whether etcd still holds `since`.
        let first = self.cluster.run(reader.next_response())?;
        let mut pending = first.unwrap_or_default().into_iter();
        let mut reader = Some(reader);
        let cluster = Arc::clone(&self.cluster);
        Ok(Box::new(std::iter::from_fn(move || {
            loop {
                if let Some(change) = pending.next() {
                    return Some(Ok(change));
                }
                match cluster.run(reader.as_mut()?.next_response()) {
                    Ok(Some(changes)) => pending = changes.into_iter(),
                    Ok(None) => return None,
                    Err(e) => {
                        reader = None;
                        return Some(Err(e));
                    }
                }
            }
        })))
    }

    fn changed_past(&self, position: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self.next_changes(position).await {
                // Reading from `position` says so.
                Ok(_) | Err(Error::HistoryCompacted { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// The last change's revision, then a watch from the revision of `since` read up to it.
    fn read_after(&self, since: u64, limit: usize) -> BoxFuture<'_, Result<Vec<FeedChange>>> {
        Box::pin(self.cluster.on_runtime(async move {
            let mut read = Vec::new();
            if let Some(mut reader) = Reader::start(self, since).await? {
                while read.len() < limit
                    && let Some(changes) = reader.next_response().await?
                {
                    read.extend(changes);
                }
            }
            read.truncate(limit);
            Ok(read)
        }))
    }

    /// One watch from the revision of `since`: its first response with a change after
    /// `since`, whether from etcd's history or committed later.
    fn next_changes(&self, since: u64) -> BoxFuture<'_, Result<Vec<FeedChange>>> {
        Box::pin(self.cluster.on_runtime(async move {
            let mut from = first_revision(since);
            loop {
                let mut stream = self.watch(from).await?;
                let compacted = loop {
                    let Some(response) = stream.message().await.map_err(storage_error)? else {
                        return Err(ended());
                    };
                    if response.compact_revision() > 0 {
                        break response.compact_revision();
                    }
                    if response.canceled() {
                        return Err(cancelled(&response));
                    }
                    let changes = changes(&response, since)?;
                    if !changes.is_empty() {
                        return Ok(changes);
                    }
                };
                from = self.resume(from, compacted).await?;
            }
        }))
    }
}

/// The revision of the first position after `since`.
fn first_revision(since: u64) -> i64 {
    i64::try_from(since.saturating_add(1) >> 16)
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The first position a commit at `revision` may have.
fn first_position(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0) << 16
}

fn ended() -> Error {
    Error::Storage("etcd ended a watch of the change feed".into())
}

fn cancelled(response: &WatchResponse) -> Error {
    let reason = response.cancel_reason();
    Error::Storage(format!("etcd cancelled a watch of the change feed: {reason}").into())
}

/// The changes after `since` that `response` brings.
fn changes(response: &WatchResponse, since: u64) -> Result<Vec<FeedChange>> {
    let mut changes = Vec::new();
    for event in response.events() {
        let Some(kv) = event.kv().filter(|_| event.event_type() == EventType::Put) else {
            continue; // the namespace was removed
        };
        let revision = kv.mod_revision();
        let writes: Vec<EntryWrite> = codec::decode_tagged(FEED, kv.value())
            .map_err(|e| Error::decode(e, format!("change feed entry at revision {revision}")))?;
        // The commit's last change is at the revision's last position.
        let count = writes.iter().filter(|w| w.change.is_some()).count();
        let first = first_position(revision + 1) - u64::try_from(count).unwrap_or(0);
        changes.extend(numbered(writes, first, since));
    }
    Ok(changes)
}

/// The changes after `since` up to revision `last`, read from a watch a response at a time.
struct Reader {
    feed: EtcdFeed,
    /// `None` once revision `last` is read.
    stream: Option<WatchStream>,
    /// Where the watch started.
    from: i64,
    since: u64,
    last: i64,
}

impl Reader {
    /// A reader of the changes after `since` committed up to now; `None` if there are none.
    async fn start(feed: &EtcdFeed, since: u64) -> Result<Option<Self>> {
        let from = first_revision(since);
        let Some(last) = feed.last_change(None).await?.filter(|&last| last >= from) else {
            return Ok(None);
        };
        Ok(Some(Self {
            feed: feed.clone(),
            stream: Some(feed.watch(from).await?),
            from,
            since,
            last,
        }))
    }

    /// The changes the next response brings (maybe none); `None` once revision `last` is read.
    async fn next_response(&mut self) -> Result<Option<Vec<FeedChange>>> {
        loop {
            let Some(stream) = &mut self.stream else {
                return Ok(None);
            };
            let response = stream.message().await.map_err(storage_error)?;
            let response = response.ok_or_else(ended)?;
            if response.compact_revision() > 0 {
                self.from = self
                    .feed
                    .resume(self.from, response.compact_revision())
                    .await?;
                self.stream = Some(self.feed.watch(self.from).await?);
                continue;
            }
            if response.canceled() {
                return Err(cancelled(&response));
            }
            let read_all = response
                .events()
                .iter()
                .any(|event| event.kv().is_some_and(|kv| kv.mod_revision() >= self.last));
            if read_all {
                self.stream = None;
            }
            return changes(&response, self.since).map(Some);
        }
    }
}
