//! Conflict observability: a `tracing` event for every conflict, and counters an operator can
//! read with [`Store::stats`](crate::Store::stats) to see where contention is, also published
//! through the [`metrics`] facade (see [`METRICS`]) for whatever exporter a service installs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::{Conflict, ConflictKind};

/// The metrics revkv publishes through the `metrics` facade, with their labels: counters of
/// what [`Stats`] counts, and histograms of commits and group commits.
///
/// | name | kind | labels |
/// | --- | --- | --- |
/// | `revkv_conflicts_total` | counter | `collection`, `kind` (`version`, `exists`, `unique`, `transition`, `rule`) |
/// | `revkv_update_with_calls_total` | counter | |
/// | `revkv_update_with_retries_total` | counter | |
/// | `revkv_update_with_exhausted_total` | counter | |
/// | `revkv_transaction_reruns_total` | counter | |
/// | `revkv_commit_seconds` | histogram | `engine` (`local`, `etcd`) |
/// | `revkv_group_commit_writes` | histogram | writes one `fdatasync` made durable |
pub const METRICS: [&str; 7] = [
    "revkv_conflicts_total",
    "revkv_update_with_calls_total",
    "revkv_update_with_retries_total",
    "revkv_update_with_exhausted_total",
    "revkv_transaction_reruns_total",
    "revkv_commit_seconds",
    "revkv_group_commit_writes",
];

/// The sliding window of [`Stats::hot_keys`].
pub const HOT_KEY_WINDOW: Duration = Duration::from_secs(60);
const BUCKETS: u32 = 6;
/// Distinct keys one bucket tracks; beyond it, new keys are not counted (memory stays bounded).
const KEYS_PER_BUCKET: usize = 10_000;
const HOT_KEYS_REPORTED: usize = 10;

/// What the store has seen of conflicts and retries since it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Conflicts returned to callers, by collection and kind.
    pub conflicts: BTreeMap<(String, ConflictKind), u64>,
    /// How `update_with` fared.
    pub update_with: RetryStats,
    /// Transactions that had to run their closure again because something they read changed.
    pub transaction_reruns: u64,
    /// The keys with the most conflicts and retries over the last [`HOT_KEY_WINDOW`], most
    /// first (at most ten).
    pub hot_keys: Vec<HotKey>,
}

impl Stats {
    /// Conflicts of `kind` returned for `collection`.
    #[must_use]
    pub fn conflicts_of(&self, collection: &str, kind: ConflictKind) -> u64 {
        self.conflicts
            .get(&(collection.to_owned(), kind))
            .copied()
            .unwrap_or(0)
    }
}

/// Calls and retries of `update_with`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryStats {
    /// Calls that ran at least once.
    pub calls: u64,
    /// Attempts after the first, over all calls.
    pub retries: u64,
    /// Calls that ran out of attempts and returned a conflict.
    pub exhausted: u64,
}

/// A key that conflicted often.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HotKey {
    /// Its collection.
    pub collection: String,
    /// The key.
    pub key: String,
    /// Conflicts returned and retries caused on it within the window.
    pub conflicts: u64,
}

/// Collects the events behind [`Stats`].
#[derive(Default)]
pub(crate) struct Observer {
    conflicts: Mutex<BTreeMap<(String, ConflictKind), u64>>,
    update_with_calls: AtomicU64,
    update_with_retries: AtomicU64,
    update_with_exhausted: AtomicU64,
    transaction_reruns: AtomicU64,
    hot: Mutex<VecDeque<Bucket>>,
}

struct Bucket {
    start: SystemTime,
    counts: HashMap<(String, String), u64>,
}

impl Observer {
    /// A conflict returned to a caller: logged and counted.
    pub(crate) fn conflict(&self, conflict: &Conflict, now: SystemTime) {
        trace_conflict(conflict);
        let collection = conflict.collection().unwrap_or_default().to_owned();
        metrics::counter!(
            "revkv_conflicts_total",
            "collection" => collection.clone(),
            "kind" => conflict.kind().as_str(),
        )
        .increment(1);
        *self
            .conflicts
            .lock()
            .entry((collection, conflict.kind()))
            .or_default() += 1;
        if let (Some(collection), Some(key)) = (conflict.collection(), conflict.key()) {
            self.hot_key(collection, key, now, 1);
        }
    }

    /// One finished `update_with` call that needed `retries` extra attempts; `now` is asked
    /// only when there were retries, which spares the clock read on the common path.
    pub(crate) fn update_with(
        &self,
        collection: &str,
        key: &str,
        retries: u32,
        now: impl FnOnce() -> SystemTime,
    ) {
        self.update_with_calls.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("revkv_update_with_calls_total").increment(1);
        if retries > 0 {
            self.update_with_retries
                .fetch_add(u64::from(retries), Ordering::Relaxed);
            metrics::counter!("revkv_update_with_retries_total").increment(u64::from(retries));
            self.hot_key(collection, key, now(), u64::from(retries));
        }
    }

    pub(crate) fn update_with_exhausted(&self) {
        self.update_with_exhausted.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("revkv_update_with_exhausted_total").increment(1);
    }

    pub(crate) fn transaction_rerun(&self) {
        self.transaction_reruns.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("revkv_transaction_reruns_total").increment(1);
    }

    /// Counts `conflicts` more conflicts on `key` in the current bucket of the window.
    fn hot_key(&self, collection: &str, key: &str, now: SystemTime, conflicts: u64) {
        let mut buckets = self.hot.lock();
        let span = HOT_KEY_WINDOW / BUCKETS;
        if buckets
            .back()
            .is_none_or(|b| now.duration_since(b.start).is_ok_and(|age| age >= span))
        {
            buckets.push_back(Bucket {
                start: now,
                counts: HashMap::new(),
            });
            if buckets.len() > BUCKETS as usize {
                buckets.pop_front();
            }
        }
        if let Some(bucket) = buckets.back_mut() {
            let id = (collection.to_owned(), key.to_owned());
            if bucket.counts.len() < KEYS_PER_BUCKET || bucket.counts.contains_key(&id) {
                *bucket.counts.entry(id).or_default() += conflicts;
            }
        }
    }

    pub(crate) fn snapshot(&self, now: SystemTime) -> Stats {
        let mut totals: HashMap<(String, String), u64> = HashMap::new();
        for bucket in self.hot.lock().iter() {
            let within = now
                .duration_since(bucket.start)
                .map_or(true, |age| age < HOT_KEY_WINDOW);
            if within {
                for (id, n) in &bucket.counts {
                    *totals.entry(id.clone()).or_default() += n;
                }
            }
        }
        let mut hot_keys: Vec<HotKey> = totals
            .into_iter()
            .map(|((collection, key), conflicts)| HotKey {
                collection,
                key,
                conflicts,
            })
            .collect();
        hot_keys.sort_by(|a, b| {
            (b.conflicts, &a.collection, &a.key).cmp(&(a.conflicts, &b.collection, &b.key))
        });
        hot_keys.truncate(HOT_KEYS_REPORTED);
        Stats {
            conflicts: self.conflicts.lock().clone(),
            update_with: RetryStats {
                calls: self.update_with_calls.load(Ordering::Relaxed),
                retries: self.update_with_retries.load(Ordering::Relaxed),
                exhausted: self.update_with_exhausted.load(Ordering::Relaxed),
            },
            transaction_reruns: self.transaction_reruns.load(Ordering::Relaxed),
            hot_keys,
        }
    }
}

/// One `tracing` event per conflict, at target `revkv::conflict`: its kind, collection, key,
/// index or states, and versions. Values are the caller's data and are never logged.
fn trace_conflict(conflict: &Conflict) {
    let kind = conflict.kind().as_str();
    let collection = conflict.collection().unwrap_or_default();
    let key = conflict.key().unwrap_or_default();
    match conflict {
        Conflict::VersionMismatch {
            expected, current, ..
        } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            expected = expected.get(),
            current = current.map(crate::Version::get),
            "version conflict"
        ),
        Conflict::BaseNotRetained { base, current, .. } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            expected = base.get(),
            current = current.map(crate::Version::get),
            "merge base no longer retained"
        ),
        Conflict::AlreadyExists { current, .. } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            current = current.get(),
            "key already exists"
        ),
        Conflict::Unique { index, .. } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            index = index.as_str(),
            "unique value taken"
        ),
        Conflict::Transition {
            from, to, current, ..
        } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            from = from.as_str(),
            to = to.as_str(),
            current = current.get(),
            "illegal transition"
        ),
        Conflict::InitialState { state, .. } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            to = state.as_str(),
            "illegal initial state"
        ),
        Conflict::Rule { code, .. } => tracing::info!(
            target: "revkv::conflict",
            kind,
            collection,
            key,
            code = code.as_str(),
            "business rule"
        ),
    }
}
