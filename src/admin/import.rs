//! Import: an export read into an empty store of either engine.

use std::collections::HashMap;
use std::io::BufRead;

use super::format::{Counts, EXPORT_FORMAT, Line, invalid};
use super::{StoredRecord, TRANSFER, Transferred};
use crate::codec::EncodedRecord;
use crate::collection::history::entry_key;
use crate::collection::schema::expiry_entry;
use crate::engine::{Commit, Compare, Engine, Keyspace, RecordChange, Route, Write};
use crate::meta::pending_key;
use crate::{Error, Result, Store};

/// A collection's keyspaces an import writes: records, history, expiry.
struct Target {
    records: Keyspace,
    history: Keyspace,
    expiry: Keyspace,
}

impl Store {
    /// Reads an export (see [`admin`](crate::admin)) into this store, which must be empty: no
    /// collection opened or imported before. Records keep their versions, times and values;
    /// the store's versions continue above every version the exported store had issued, so a
    /// client holding a version read before the export can still update with it, and an older
    /// one still conflicts. Each collection builds its indexes from the records when the
    /// service first opens it, where [`Store::verify`] checks them.
    ///
    /// Until the import ends, the store is marked as being imported into: one that an
    /// interrupted import left is refused by a second import (start over on a fresh store).
    ///
    /// # Errors
    /// [`Error::NotEmpty`] for a store that holds collections; [`Error::InvalidExport`] for
    /// input that is not a whole export (a truncated one included), with its line;
    /// [`Error::UnsupportedFormat`] for an export of a newer revkv; [`Error::KeyTooLong`] and
    /// [`Error::ValueTooLarge`] for records over this store's limits; [`Error::Io`] if
    /// `input` fails; storage errors.
    pub fn import(&self, input: impl BufRead) -> Result<Transferred> {
        let shared = &self.shared;
        let (engine, meta) = (shared.engine.as_ref(), &shared.meta);
        if meta.get::<()>(TRANSFER)?.is_some() || !meta.names("collection/")?.is_empty() {
            return Err(Error::NotEmpty {
                store: "the store imported into".into(),
            });
        }
        let mut lines = input.lines().zip(1_u64..);
        let header = match lines.next() {
            Some((line, _)) => match serde_json::from_str::<Line>(&line?) {
                Ok(Line::Header(header)) => header,
                _ => return Err(invalid(1, "an export starts with its header")),
            },
            None => return Err(invalid(1, "the input is empty")),
        };
        if header.revkv_export > EXPORT_FORMAT {
            return Err(Error::UnsupportedFormat {
                location: "the export's header".into(),
                what: "export",
                found: header.revkv_export,
                supported: EXPORT_FORMAT,
            });
        }
        meta.put(TRANSFER, &())?;
        // First, so that even an import cut short never issues a version the export holds.
        engine.raise_versions(header.versions_below)?;
        let mut targets = HashMap::new();
        for collection in &header.collections {
            let name = &collection.name;
            let target = Target {
                records: engine.keyspace(format!("c/{name}"))?,
                history: engine.keyspace(format!("h/{name}"))?,
                expiry: engine.keyspace(format!("x/{name}"))?,
            };
            targets.insert(name.clone(), target);
        }
        let mut done = Transferred {
            collections: header.collections.len() as u64,
            ..Transferred::default()
        };
        let mut highest = 0;
        let mut ended = None;
        for (line, number) in lines {
            let line = line?;
            if let Some(end) = ended {
                return Err(invalid(
                    number,
                    format!("a line follows the end at line {end}"),
                ));
            }
            let parsed = serde_json::from_str::<Line>(&line)
                .map_err(|e| invalid(number, format!("not an export line: {e}")))?;
            let (record, history) = match parsed {
                Line::Record(record) => (record, false),
                Line::History(record) => (record, true),
                Line::End(counts) => {
                    if counts != Counts::from(&done) {
                        let reason = format!("the end counts {counts:?}, the lines {done:?}");
                        return Err(invalid(number, reason));
                    }
                    ended = Some(number);
                    continue;
                }
                Line::Header(_) => return Err(invalid(number, "a second header")),
            };
            let record = record.into_record().map_err(|e| invalid(number, e))?;
            let Some(target) = targets.get(&record.collection) else {
                let reason = format!("collection {:?} is not in the header", record.collection);
                return Err(invalid(number, reason));
            };
            self.check_limits(&record)?;
            highest = highest.max(record.version.get());
            if history {
                write_history(engine, target, &record, number)?;
                done.history += 1;
            } else {
                write_record(engine, target, &record, number)?;
                done.records += 1;
            }
        }
        if ended.is_none() {
            return Err(invalid(
                done.records + done.history + 2,
                "the export ends before its end line: it is cut short",
            ));
        }
        engine.raise_versions(highest.saturating_add(1))?;
        // With no index built, so that each collection's first open builds its own; the
        // names the export declared stay as pending until then.
        let none: Vec<String> = Vec::new();
        for collection in &header.collections {
            meta.put(&format!("collection/{}", collection.name), &none)?;
            meta.put(&format!("lists/{}", collection.name), &none)?;
            meta.put(&pending_key(&collection.name), collection)?;
        }
        engine.make_direct_writes_durable()?;
        engine.sync()?;
        meta.remove(TRANSFER)?;
        engine.sync()?;
        Ok(done)
    }

    fn check_limits(&self, record: &StoredRecord) -> Result<()> {
        let limits = self.shared.limits;
        if record.key.is_empty() {
            return Err(Error::EmptyKey {
                collection: record.collection.clone(),
            });
        }
        if record.key.len() > limits.max_key_len {
            return Err(Error::KeyTooLong {
                collection: record.collection.clone(),
                len: record.key.len(),
                max: limits.max_key_len,
            });
        }
        if record.value.len() > limits.max_value_len {
            return Err(Error::ValueTooLarge {
                collection: record.collection.clone(),
                key: record.key.clone(),
                len: record.value.len(),
                max: limits.max_value_len,
            });
        }
        Ok(())
    }
}

/// The bytes a record of `record` is stored as.
fn encode(record: &StoredRecord) -> EncodedRecord {
    let mut encoded = EncodedRecord::from_payload(&record.value, record.expires.is_some());
    encoded.stamp(record.version, record.modified, record.expires);
    encoded
}

/// Writes a current record, with its expiry entry, if its key is free.
fn write_record(
    engine: &dyn Engine,
    target: &Target,
    record: &StoredRecord,
    line: u64,
) -> Result<()> {
    let encoded = encode(record);
    let key = record.key.as_bytes();
    let due = record.expires.map(|at| expiry_entry(at, &record.key));
    let mut writes = Vec::with_capacity(2);
    if let Some(due) = &due {
        writes.push(Write {
            keyspace: &target.expiry,
            key: due,
            value: Some(&[]),
            record: None,
        });
    }
    writes.push(Write {
        keyspace: &target.records,
        key,
        value: Some(encoded.bytes()),
        record: Some(RecordChange {
            existed: false,
            version: record.version,
        }),
    });
    let commit = Commit {
        compares: vec![Compare {
            keyspace: &target.records,
            key,
            holds: None,
        }],
        ranges: &[],
        writes,
        route: Route::Direct,
        modified: record.modified,
    };
    if engine.commit_if(&commit)? {
        Ok(())
    } else {
        let reason = format!("{}/{} appears twice", record.collection, record.key);
        Err(invalid(line, reason))
    }
}

/// Writes an earlier version of a record into its collection's history.
fn write_history(
    engine: &dyn Engine,
    target: &Target,
    record: &StoredRecord,
    line: u64,
) -> Result<()> {
    let encoded = encode(record);
    let key = entry_key(&record.key, record.version);
    let commit = Commit {
        compares: vec![Compare {
            keyspace: &target.history,
            key: &key,
            holds: None,
        }],
        ranges: &[],
        writes: vec![Write {
            keyspace: &target.history,
            key: &key,
            value: Some(encoded.bytes()),
            record: None,
        }],
        route: Route::Direct,
        modified: record.modified,
    };
    if engine.commit_if(&commit)? {
        Ok(())
    } else {
        let reason = format!(
            "version {} of {}/{} appears twice",
            record.version, record.collection, record.key
        );
        Err(invalid(line, reason))
    }
}
