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
        let mut batch = Batch::new(engine);
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
                    batch.write(engine)?;
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
                done.history += 1;
            } else {
                done.records += 1;
            }
            batch.push(engine, Pending::new(target, record, history, number))?;
        }
        batch.write(engine)?;
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
        limits.check_key(&record.collection, &record.key)?;
        limits.check_value(&record.collection, &record.key, record.value.len())
    }
}

/// A record or an earlier version, encoded, waiting for the commit of its batch.
struct Pending<'t> {
    target: &'t Target,
    record: StoredRecord,
    history: bool,
    /// Its key in the records or in the history.
    key: Vec<u8>,
    encoded: EncodedRecord,
    /// The expiry entry of a current record written with a time to live.
    due: Option<Vec<u8>>,
    line: u64,
}

impl<'t> Pending<'t> {
    fn new(target: &'t Target, record: StoredRecord, history: bool, line: u64) -> Self {
        let mut encoded = EncodedRecord::from_payload(&record.value, record.expires.is_some());
        encoded.stamp(record.version, record.modified, record.expires);
        let key = if history {
            entry_key(&record.key, record.version)
        } else {
            record.key.as_bytes().to_vec()
        };
        let due = (record.expires)
            .filter(|_| !history)
            .map(|at| expiry_entry(at, &record.key));
        Self {
            target,
            record,
            history,
            key,
            encoded,
            due,
            line,
        }
    }

    fn keyspace(&self) -> &'t Keyspace {
        if self.history {
            &self.target.history
        } else {
            &self.target.records
        }
    }
}

/// Lines an import writes in one commit.
struct Batch<'t> {
    pending: Vec<Pending<'t>>,
    bytes: usize,
    /// Records per commit: one on the local engine, where a commit of several records costs
    /// more than several commits; more on etcd, where each commit is a round trip.
    records: usize,
}

impl<'t> Batch<'t> {
    /// Well within etcd's 128 operations and 1.5 MiB per transaction.
    const ETCD_RECORDS: usize = 32;
    const ETCD_BYTES: usize = 512 * 1024;

    fn new(engine: &dyn Engine) -> Self {
        let records = if engine.reads_are_round_trips() {
            Self::ETCD_RECORDS
        } else {
            1
        };
        Self {
            pending: Vec::with_capacity(records),
            bytes: 0,
            records,
        }
    }

    /// Adds `pending`, writing the batch once it is full. A key the batch holds already is
    /// written first, as one etcd transaction cannot write a key twice.
    fn push(&mut self, engine: &dyn Engine, pending: Pending<'t>) -> Result<()> {
        let same_key =
            |p: &Pending<'_>| p.key == pending.key && p.keyspace().name == pending.keyspace().name;
        if self.pending.iter().any(same_key) {
            self.write(engine)?;
        }
        self.bytes += pending.encoded.bytes().len() + pending.key.len();
        self.pending.push(pending);
        if self.pending.len() >= self.records || self.bytes >= Self::ETCD_BYTES {
            self.write(engine)?;
        }
        Ok(())
    }

    /// Writes what the batch holds, if no key of it is taken.
    fn write(&mut self, engine: &dyn Engine) -> Result<()> {
        if !commit(engine, &self.pending)? {
            // One at a time, so that the first taken key names its line.
            for pending in &self.pending {
                if !commit(engine, std::slice::from_ref(pending))? {
                    let record = &pending.record;
                    let what = if pending.history {
                        "an earlier version"
                    } else {
                        "the record"
                    };
                    let reason = format!(
                        "{what} {}/{} at version {} appears twice",
                        record.collection, record.key, record.version
                    );
                    return Err(invalid(pending.line, reason));
                }
            }
        }
        self.pending.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// Writes every one of `pending`, in one commit that requires each key free.
fn commit(engine: &dyn Engine, pending: &[Pending<'_>]) -> Result<bool> {
    let Some(last) = pending.last() else {
        return Ok(true);
    };
    let mut compares = Vec::with_capacity(pending.len());
    let mut writes = Vec::with_capacity(pending.len() * 2);
    for p in pending {
        let keyspace = p.keyspace();
        compares.push(Compare {
            keyspace,
            key: &p.key,
            holds: None,
        });
        if let Some(due) = &p.due {
            writes.push(Write {
                keyspace: &p.target.expiry,
                key: due,
                value: Some(&[]),
                record: None,
            });
        }
        writes.push(Write {
            keyspace,
            key: &p.key,
            value: Some(p.encoded.bytes()),
            record: (!p.history).then_some(RecordChange {
                existed: false,
                version: p.record.version,
            }),
        });
    }
    engine.commit_if(&Commit {
        compares,
        ranges: &[],
        writes,
        route: Route::Direct,
        modified: last.record.modified,
    })
}
