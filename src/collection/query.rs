//! Running a [`Query`]: the keyspace and range it reads, how an entry there names a record,
//! and its pages, read through a view, so that a transaction's queries are serializable.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::schema::{Derive, Schema};
use super::view::{Settling, View, settle};
use crate::backend::{Bytes, KeyRange};
use crate::codec;
use crate::engine::{Engine, Keyspace};
use crate::query::{Query, Selection};
use crate::{Error, Page, Result, Versioned};

/// Entries read per request while a page fills.
const SCAN_CHUNK: usize = 256;

/// What a query reads through: plain [`Reads`], or a transaction, which sees its own writes
/// and keeps what it read for its commit to require unchanged.
pub(crate) trait QueryView<'s>: View<'s> + Settling + Send {
    /// Takes `key` of `keyspace` to hold `seen`, as a scan read it, unless the view has read
    /// or written it already.
    fn seed(&mut self, keyspace: &'s Keyspace, key: &[u8], seen: Bytes);

    /// The view's own writes to `keyspace` within `range` (`None`: a removal).
    fn staged(&self, keyspace: &Keyspace, range: &KeyRange) -> Vec<(Vec<u8>, Option<Bytes>)>;

    /// Notes that a scan of `keyspace` at `revision` found only `entries` in `range`.
    fn scanned(
        &mut self,
        keyspace: &Keyspace,
        range: &KeyRange,
        entries: &[(Vec<u8>, Bytes)],
        revision: i64,
    );
}

/// How an entry of the keyspace a query scans names its record.
#[derive(Clone, Copy)]
enum Source {
    /// The entry is the record.
    Records,
    /// A unique index's entry: the value, holding the record's key ([`codec::encode_claim`]).
    Unique(usize),
    /// A non-unique index's entry: value and key ([`codec::encode_index_entry`]).
    Values(usize),
}

impl<T: Serialize + DeserializeOwned> Schema<T> {
    /// The keyspace, range and entries `query` reads, past its page token.
    fn scope(&self, query: &Query) -> Result<(&Keyspace, KeyRange, Source)> {
        let included = |bytes: &[u8]| Bound::Included(bytes.to_vec());
        let excluded = |bytes: &[u8]| Bound::Excluded(bytes.to_vec());
        let (keyspace, source, mut range) = match &query.what {
            Selection::Range { start, end } => {
                let range = KeyRange {
                    lower: included(start.as_bytes()),
                    upper: excluded(end.as_bytes()),
                };
                (&self.records, Source::Records, range)
            }
            Selection::Prefix(prefix) => {
                let range = KeyRange::prefix(prefix.as_bytes());
                (&self.records, Source::Records, range)
            }
            Selection::Index { index, value } => {
                let (keyspace, source) = self.any_index(index)?;
                let range = if let Source::Unique(_) = source {
                    KeyRange {
                        lower: included(value.as_bytes()),
                        upper: included(value.as_bytes()),
                    }
                } else {
                    let prefix = codec::index_value_prefix(value);
                    KeyRange {
                        upper: excluded(&[&prefix[..], &[0xff]].concat()),
                        lower: Bound::Included(prefix),
                    }
                };
                (keyspace, source, range)
            }
            Selection::IndexRange { index, start, end } => {
                let (keyspace, source) = self.any_index(index)?;
                let range = if let Source::Unique(_) = source {
                    KeyRange {
                        lower: included(start.as_bytes()),
                        upper: excluded(end.as_bytes()),
                    }
                } else {
                    KeyRange {
                        lower: Bound::Included(codec::index_value_prefix(start)),
                        upper: Bound::Excluded(codec::index_value_prefix(end)),
                    }
                };
                (keyspace, source, range)
            }
        };
        if let Some(position) = query.resume_after()? {
            if !range.contains(&position) {
                return Err(Error::InvalidPageToken {
                    reason: "it was issued for another query",
                });
            }
            if query.reverse {
                range.upper = Bound::Excluded(position);
            } else {
                range.lower = Bound::Excluded(position);
            }
        }
        Ok((keyspace, range, source))
    }

    /// The index called `name`, of either kind, and its keyspace.
    fn any_index(&self, name: &str) -> Result<(&Keyspace, Source)> {
        if let Some(i) = self.indexes.iter().position(|i| i.name == name) {
            return Ok((&self.indexes[i].keyspace, Source::Unique(i)));
        }
        let i = (self.value_indexes.iter())
            .position(|i| i.name == name)
            .ok_or_else(|| self.unknown_index(name))?;
        Ok((&self.value_indexes[i].keyspace, Source::Values(i)))
    }

    /// One page of `query`, read through `view`.
    pub(crate) async fn query<'s, V: QueryView<'s>>(
        &'s self,
        engine: &dyn Engine,
        view: &mut V,
        query: &Query,
    ) -> Result<Page<T>> {
        if query.limit == Some(0) {
            return Err(Error::InvalidQuery {
                reason: "a limit must be at least one record",
            });
        }
        let (keyspace, mut rest, source) = self.scope(query)?;
        let limit = query.limit.unwrap_or(usize::MAX);
        let mut records = Vec::new();
        let mut position = Vec::new();
        loop {
            let want = (limit - records.len()).min(SCAN_CHUNK);
            let scanned = engine.scan(keyspace, &rest, query.reverse, want).await?;
            // What this scan answers for: the rest of the range, or up to its last entry.
            let mut covered = rest.clone();
            if scanned.more
                && let Some((last, _)) = scanned.entries.last()
            {
                let (reached, past) =
                    (Bound::Included(last.clone()), Bound::Excluded(last.clone()));
                if query.reverse {
                    (covered.lower, rest.upper) = (reached, past);
                } else {
                    (covered.upper, rest.lower) = (reached, past);
                }
            }
            view.scanned(keyspace, &covered, &scanned.entries, scanned.revision);
            let staged = view.staged(keyspace, &covered);
            let entries = if staged.is_empty() {
                scanned.entries
            } else {
                with_staged(scanned.entries, staged, query.reverse)
            };
            if !matches!(source, Source::Values(_)) {
                // The entry is what the page rests on: a record, or the claim naming one.
                for (key, value) in &entries {
                    view.seed(keyspace, key, value.clone());
                }
            }
            let found = settle(view, engine, |view| {
                (entries.iter())
                    .map(|(key, value)| self.resolve(view, source, key, value))
                    .collect::<Result<Vec<_>>>()
            })
            .await??;
            for ((key, _), found) in entries.iter().zip(found) {
                if records.len() == limit {
                    return Ok(page(query, records, Some(&position)));
                }
                if let Some(record) = found {
                    records.push(record);
                    position.clone_from(key);
                }
            }
            if !scanned.more {
                return Ok(page(query, records, None));
            }
            if records.len() == limit {
                return Ok(page(query, records, Some(&position)));
            }
        }
    }

    /// The record the entry `key` (holding `value`) of the scanned keyspace stands for, if it
    /// is live and, for an index, still derives the entry's value.
    fn resolve<'s>(
        &'s self,
        view: &mut dyn View<'s>,
        source: Source,
        key: &[u8],
        value: &Bytes,
    ) -> Result<Option<(String, Versioned<T>)>> {
        let location = |index: &str| {
            let shown = String::from_utf8_lossy(key);
            format!("{}: index {index} entry {shown:?}", self.name)
        };
        let (record_key, indexed): (&str, Indexed<'_, T>) = match source {
            Source::Records => {
                let record_key = std::str::from_utf8(key).map_err(|_| Error::Corrupt {
                    location: format!("{}/{key:?}", self.name),
                    reason: "the key is not UTF-8".into(),
                })?;
                (record_key, None)
            }
            Source::Unique(i) => {
                let unique = &self.indexes[i];
                let holder = codec::decode_claim(value)
                    .map_err(|e| Error::decode(e, location(&unique.name)))?;
                let indexed = String::from_utf8_lossy(key);
                (holder, Some((&unique.value_of, indexed)))
            }
            Source::Values(i) => {
                let list = &self.value_indexes[i];
                let (indexed, record_key) = codec::decode_index_entry(key)
                    .map_err(|e| Error::decode(e, location(&list.name)))?;
                (record_key, Some((&list.value_of, indexed)))
            }
        };
        let Some(stored) = self.read_live(view, record_key)? else {
            return Ok(None);
        };
        let value = self.decode(record_key, &stored)?;
        if let Some((value_of, indexed)) = indexed
            && value_of(&value) != indexed
        {
            return Ok(None); // an entry a crash or a concurrent write left behind
        }
        let header = &stored.header;
        let record = Versioned::new(header.version, value, header.modified, header.expires);
        Ok(Some((record_key.to_owned(), record)))
    }
}

/// The function that derives an index's value and the value an entry holds.
type Indexed<'a, T> = Option<(&'a Derive<T>, Cow<'a, str>)>;

/// The entries a scan read (in scan order), with a view's own writes over them, in scan order.
fn with_staged(
    entries: Vec<(Vec<u8>, Bytes)>,
    staged: Vec<(Vec<u8>, Option<Bytes>)>,
    reverse: bool,
) -> Vec<(Vec<u8>, Bytes)> {
    let mut merged: BTreeMap<Vec<u8>, Bytes> = entries.into_iter().collect();
    for (key, write) in staged {
        match write {
            Some(value) => merged.insert(key, value),
            None => merged.remove(&key),
        };
    }
    if reverse {
        merged.into_iter().rev().collect()
    } else {
        merged.into_iter().collect()
    }
}

/// A page of `records`, with the token to resume after `more_after` if more may follow.
fn page<T>(
    query: &Query,
    records: Vec<(String, Versioned<T>)>,
    more_after: Option<&[u8]>,
) -> Page<T> {
    Page {
        records,
        next: more_after.map(|position| query.token(position)),
    }
}

/// The view of a query outside transactions: the committed state, records a scan read
/// already taken as read.
pub(crate) struct Reads<'s> {
    now: SystemTime,
    seen: HashMap<(Arc<str>, Vec<u8>), Option<Bytes>>,
    missing: Vec<(&'s Keyspace, Vec<u8>)>,
    /// Whether a pass reads the keyspace at once, the engine's reads being no round trips.
    at_once: bool,
}

impl Reads<'_> {
    pub(crate) fn at(now: SystemTime, engine: &dyn Engine) -> Self {
        Self {
            now,
            seen: HashMap::new(),
            missing: Vec::new(),
            at_once: !engine.reads_are_round_trips(),
        }
    }
}

impl<'s> View<'s> for Reads<'s> {
    fn read(&mut self, keyspace: &'s Keyspace, key: &[u8]) -> Result<Option<Bytes>> {
        if !self.seen.is_empty()
            && let Some(seen) = self.seen.get(&(Arc::clone(&keyspace.name), key.to_vec()))
        {
            return Ok(seen.clone());
        }
        if self.at_once {
            return keyspace.tree.get(key);
        }
        self.missing.push((keyspace, key.to_vec()));
        Ok(None)
    }

    fn now(&self) -> SystemTime {
        self.now
    }
}

impl<'s> Settling for Reads<'s> {
    type Space = &'s Keyspace;

    fn take_missing(&mut self) -> Vec<(&'s Keyspace, Vec<u8>)> {
        let mut missing = std::mem::take(&mut self.missing);
        missing.sort_by(|(a, k), (b, l)| (&a.name, k).cmp(&(&b.name, l)));
        missing.dedup_by(|(a, k), (b, l)| a.name == b.name && k == l);
        missing
    }

    fn record(&mut self, keyspace: &'s Keyspace, key: Vec<u8>, seen: Option<Bytes>) {
        self.seen.insert((Arc::clone(&keyspace.name), key), seen);
    }
}

impl<'s> QueryView<'s> for Reads<'s> {
    fn seed(&mut self, keyspace: &'s Keyspace, key: &[u8], seen: Bytes) {
        let id = (Arc::clone(&keyspace.name), key.to_vec());
        self.seen.entry(id).or_insert(Some(seen));
    }

    fn staged(&self, _: &Keyspace, _: &KeyRange) -> Vec<(Vec<u8>, Option<Bytes>)> {
        Vec::new()
    }

    /// Outside a transaction, nothing requires the range unchanged.
    fn scanned(&mut self, _: &Keyspace, _: &KeyRange, _: &[(Vec<u8>, Bytes)], _: i64) {}
}
