//! What a store holds, read without the service's types: counts, records as stored, and the
//! check of indexes against records that needs no index's code.

use std::collections::HashMap;

use serde::Serialize;

use super::format::RecordLine;
use super::{StoredRecord, TRANSFER, built, declared, decode_stored};
use crate::backend::KeyRange;
use crate::codec::{decode_claim, decode_index_entry};
use crate::engine::Keyspace;
use crate::verify::{Problem, Report};
use crate::{Error, Result, Store};

/// What [`Store::inspect`] found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// Every collection the store declares.
    pub collections: Vec<CollectionSummary>,
    /// A number above every version the store has issued.
    pub versions_below: u64,
    /// The position of the newest change in the change feed of a local store that keeps one
    /// (`None` on etcd, whose feed positions are etcd revisions).
    pub feed_position: Option<u64>,
    /// Whether an import into this store was cut short, leaving it incomplete.
    pub incomplete: bool,
}

/// One collection in an [`Inspection`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CollectionSummary {
    /// Its name.
    pub name: String,
    /// Records stored, expired ones not swept yet included.
    pub records: u64,
    /// Of those, records written with a time to live.
    pub expiring: u64,
    /// Bytes of the records' keys and stored values.
    pub bytes: u64,
    /// Earlier versions in its history.
    pub history: u64,
    /// Its unique indexes.
    pub unique: Vec<IndexSummary>,
    /// Its non-unique indexes.
    pub indexes: Vec<IndexSummary>,
}

/// One index in a [`CollectionSummary`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct IndexSummary {
    /// Its name.
    pub name: String,
    /// Its entries.
    pub entries: u64,
}

impl StoredRecord {
    /// The record as one JSON object, as an export's `record` line holds it (see
    /// [`admin`](crate::admin)).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(&RecordLine::from(self)).unwrap_or_default()
    }
}

impl Store {
    /// Counts what each collection the store declares holds. Under concurrent writes the
    /// counts are each read at a slightly different moment.
    ///
    /// # Errors
    /// Storage errors; [`Error::Corrupt`] for a record that is not one.
    pub fn inspect(&self) -> Result<Inspection> {
        let engine = self.shared.engine.as_ref();
        let mut collections = Vec::new();
        for declared in declared(&self.shared.meta)? {
            let name = &declared.name;
            let (mut records, mut expiring, mut bytes) = (0, 0, 0);
            for entry in engine.tree(&format!("c/{name}"))?.scan(b"") {
                let (key, value) = entry?;
                let record = decode_stored(name, &key, &value)?;
                records += 1;
                expiring += u64::from(record.expires.is_some());
                bytes += (key.len() + value.len()) as u64;
            }
            let count = |keyspace: String| -> Result<u64> {
                let tree = engine.tree(&keyspace)?;
                tree.scan(b"").try_fold(0, |n, entry| entry.map(|_| n + 1))
            };
            let summaries = |kind: &str, names: &[String]| -> Result<Vec<IndexSummary>> {
                let count_of = |index: &String| {
                    Ok(IndexSummary {
                        name: index.clone(),
                        entries: count(format!("{kind}/{name}/{index}"))?,
                    })
                };
                names.iter().map(count_of).collect()
            };
            collections.push(CollectionSummary {
                records,
                expiring,
                bytes,
                history: count(format!("h/{name}"))?,
                unique: summaries("u", &declared.unique)?,
                indexes: summaries("i", &declared.indexes)?,
                name: declared.name,
            });
        }
        Ok(Inspection {
            collections,
            versions_below: engine.version_mark()?,
            feed_position: engine.feed_position()?,
            incomplete: self.shared.meta.get::<()>(TRANSFER)?.is_some(),
        })
    }

    /// The record `key` of `collection` as stored, without the collection's type; expired
    /// records not swept yet included.
    ///
    /// # Errors
    /// [`Error::Schema`] if the store declares no such collection; storage errors;
    /// [`Error::Corrupt`] for stored bytes that are not a record.
    pub fn stored(&self, collection: &str, key: &str) -> Result<Option<StoredRecord>> {
        let records = self.declared_records(collection)?;
        let found = records.tree.get(key.as_bytes())?;
        found
            .map(|bytes| decode_stored(collection, key.as_bytes(), &bytes))
            .transpose()
    }

    /// Up to `limit` records of `collection` as stored, in key order, whose keys start with
    /// `prefix` (all of them for `""`).
    ///
    /// # Errors
    /// As [`Store::stored`].
    pub fn stored_records(
        &self,
        collection: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<StoredRecord>> {
        let records = self.declared_records(collection)?;
        let range = KeyRange::prefix(prefix.as_bytes());
        let mut found = Vec::new();
        for entry in records.tree.range(&range, false).take(limit) {
            let (key, bytes) = entry?;
            found.push(decode_stored(collection, &key, &bytes)?);
        }
        Ok(found)
    }

    fn declared_records(&self, collection: &str) -> Result<Keyspace> {
        let meta = &self.shared.meta;
        if meta
            .get::<Vec<String>>(&format!("collection/{collection}"))?
            .is_none()
        {
            return Err(Error::Schema {
                collection: collection.to_owned(),
                detail: "the store has no such collection".into(),
            });
        }
        self.shared.engine.keyspace(format!("c/{collection}"))
    }

    /// Adds to `report` what can be checked of the collections declared in the store but not
    /// open in this process, without their code: every record decodes, and each of its
    /// indexes holds exactly one entry per record, each naming a record that exists. Whether
    /// an entry holds the value the record derives takes the index's code:
    /// [`Store::verify`] checks that for open collections.
    pub(crate) fn verify_stored(&self, report: &mut Report) -> Result<()> {
        if self.shared.meta.get::<()>(TRANSFER)?.is_some() {
            report.problems.push(Problem::Undecodable {
                location: "the store".into(),
                reason: "an import into it was cut short".into(),
            });
        }
        let open: Vec<String> = (self.shared.registry.lock().iter())
            .filter(|(_, collection)| collection.strong_count() > 0)
            .map(|(name, _)| name.clone())
            .collect();
        let engine = self.shared.engine.as_ref();
        for declared in built(&self.shared.meta)? {
            if open.contains(&declared.name) {
                continue;
            }
            let name = &declared.name;
            let mut records = Vec::new();
            for entry in engine.tree(&format!("c/{name}"))?.scan(b"") {
                let (key, value) = entry?;
                report.records += 1;
                match decode_stored(name, &key, &value) {
                    Ok(record) => records.push(record.key),
                    Err(e) => report.problems.push(Problem::Undecodable {
                        location: name.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
            let indexes = (declared.unique.iter().map(|index| ("u", index)))
                .chain(declared.indexes.iter().map(|index| ("i", index)));
            for (kind, index) in indexes {
                let mut entries: HashMap<&str, u64> =
                    records.iter().map(|key| (key.as_str(), 0)).collect();
                for entry in engine.tree(&format!("{kind}/{name}/{index}"))?.scan(b"") {
                    let (entry, claim) = entry?;
                    report.index_entries += 1;
                    let decoded = if kind == "u" {
                        decode_claim(&claim).map(|holder| (String::from_utf8_lossy(&entry), holder))
                    } else {
                        decode_index_entry(&entry)
                    };
                    let (value, holder) = match decoded {
                        Ok(decoded) => decoded,
                        Err(e) => {
                            let location = format!("{name}: index {index}");
                            report.problems.push(Problem::Undecodable {
                                reason: Error::decode(e, location.clone()).to_string(),
                                location,
                            });
                            continue;
                        }
                    };
                    match entries.get_mut(holder) {
                        Some(count) => *count += 1,
                        None => report.problems.push(Problem::StaleEntry {
                            collection: name.clone(),
                            index: index.clone(),
                            value: value.into_owned(),
                            holder: holder.to_owned(),
                        }),
                    }
                }
                for (key, count) in entries {
                    if count != 1 {
                        report.problems.push(Problem::EntryCount {
                            collection: name.clone(),
                            index: index.clone(),
                            key: key.to_owned(),
                            entries: count,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
