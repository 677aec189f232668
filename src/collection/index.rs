//! Whole-index maintenance: building a newly declared index, sweeping entries a crash left
//! behind, and checking indexes against the records.
//!
//! Day-to-day writes keep indexes exact through [`Schema::prepare`] and [`Schema::writes`];
//! this module handles what happens outside a single write.

use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::schema::Schema;
use super::view::{Committed, Recording, View};
use crate::backend::Bytes;
use crate::codec;
use crate::engine::{Commit, Engine, Keyspace, REMOVALS_PER_COMMIT, Route, Write};
use crate::verify::{Problem, Report};
use crate::{Error, Result};

impl<T: Serialize + DeserializeOwned> Schema<T> {
    /// Fills index `index` from the records, refusing values that two records share, then
    /// removes entries no record holds.
    ///
    /// Other processes may open the collection and write it meanwhile (on etcd), so nothing is
    /// cleared first and every entry is added or removed by a commit on condition that what
    /// decided it is unchanged: a build never undoes a concurrent write, and a build that
    /// fails or stops halfway leaves only entries the next build keeps or sweeps.
    pub(crate) fn build_index(&self, engine: &dyn Engine, index: usize) -> Result<()> {
        for entry in self.records.tree.scan(b"") {
            let (key, bytes) = entry?;
            let key = self.record_key(key)?;
            // The first attempt takes the record as the scan read it; a retry reads it again.
            let mut scanned = Some(bytes);
            while !self.index_record(engine, index, &key, scanned.take())? {}
        }
        self.sweep_index(engine, index)
    }

    /// Makes the entry of record `key` (holding `scanned`, if given) in index `index` name
    /// it; false if what decided that changed before the commit.
    fn index_record(
        &self,
        engine: &dyn Engine,
        index: usize,
        key: &str,
        scanned: Option<Bytes>,
    ) -> Result<bool> {
        let unique = &self.indexes[index];
        // Records that expired still hold their values until they are swept.
        let mut view = Recording::at(SystemTime::UNIX_EPOCH, engine);
        if let Some(bytes) = scanned {
            view.assume(&self.records, key.as_bytes(), Some(bytes));
        }
        let Some(stored) = view.settle_now(engine, |view| self.read(view, key))?? else {
            return Ok(true); // removed since the scan
        };
        let value = (unique.value_of)(&self.decode(key, &stored)?);
        let claim = codec::encode_claim(key);
        let holder = view.settle_now(engine, |view| self.holder(view, index, &value))??;
        let writes = match holder {
            Some((holder, _)) if holder == key => return Ok(true),
            Some((holder, _)) => {
                // A duplicate only if both records still hold the value at one moment.
                if !engine.commit_if(&view.unchanged(Route::Direct))? {
                    return Ok(false);
                }
                return Err(Error::Schema {
                    collection: self.name.clone(),
                    detail: format!(
                        "cannot build unique index {}: records {holder:?} and {key:?} both have \
                         the value {value:?}",
                        unique.name
                    ),
                });
            }
            None => vec![Write {
                keyspace: &unique.keyspace,
                key: value.as_bytes(),
                value: Some(&claim),
                record: None,
            }],
        };
        engine.commit_if(&Commit {
            writes,
            ..view.unchanged(Route::Direct)
        })
    }

    /// Fills non-unique index `index` from the records, then removes entries no record holds;
    /// as safe alongside other processes' writes as [`Self::build_index`].
    pub(crate) fn build_value_index(&self, engine: &dyn Engine, index: usize) -> Result<()> {
        for entry in self.records.tree.scan(b"") {
            let (key, bytes) = entry?;
            let key = self.record_key(key)?;
            let mut scanned = Some(bytes);
            while !self.enter_record(engine, index, &key, scanned.take())? {}
        }
        self.sweep_value_index(engine, index)
    }

    /// Writes the entry of record `key` (holding `scanned`, if given) in non-unique index
    /// `index`; false if the record changed before the commit.
    fn enter_record(
        &self,
        engine: &dyn Engine,
        index: usize,
        key: &str,
        scanned: Option<Bytes>,
    ) -> Result<bool> {
        let mut view = Recording::at(SystemTime::UNIX_EPOCH, engine);
        if let Some(bytes) = scanned {
            view.assume(&self.records, key.as_bytes(), Some(bytes));
        }
        let Some(stored) = view.settle_now(engine, |view| self.read(view, key))?? else {
            return Ok(true); // removed since the scan
        };
        let list = &self.value_indexes[index];
        let entry = codec::encode_index_entry(&(list.value_of)(&self.decode(key, &stored)?), key);
        engine.commit_if(&Commit {
            writes: vec![Write {
                keyspace: &list.keyspace,
                key: &entry,
                value: Some(&[]),
                record: None,
            }],
            ..view.unchanged(Route::Direct)
        })
    }

    /// Whether `entry` of non-unique index `index` is there and counts: its record exists
    /// (expired or not) and derives its value.
    pub(crate) fn entry_holds<'s>(
        &'s self,
        view: &mut dyn View<'s>,
        index: usize,
        entry: &[u8],
    ) -> Result<bool> {
        let list = &self.value_indexes[index];
        if view.read(&list.keyspace, entry)?.is_none() {
            return Ok(false);
        }
        let Ok((value, key)) = codec::decode_index_entry(entry) else {
            return Ok(false);
        };
        let Some(stored) = self.read(view, key)? else {
            return Ok(false);
        };
        Ok((list.value_of)(&self.decode(key, &stored)?) == value)
    }

    /// Removes entries of every index that no record holds: what a crash between an index
    /// write and its record write leaves behind. Such entries never block a value (see
    /// [`Schema::holder`]) nor show in a query; sweeping them makes the indexes match the
    /// records exactly again.
    pub(crate) fn sweep_indexes(&self, engine: &dyn Engine) -> Result<()> {
        (0..self.indexes.len()).try_for_each(|index| self.sweep_index(engine, index))?;
        (0..self.value_indexes.len()).try_for_each(|index| self.sweep_value_index(engine, index))
    }

    fn sweep_value_index(&self, engine: &dyn Engine, index: usize) -> Result<()> {
        sweep(
            engine,
            &self.value_indexes[index].keyspace,
            |view, entry| self.entry_holds(view, index, entry),
        )
    }

    fn sweep_index(&self, engine: &dyn Engine, index: usize) -> Result<()> {
        let keyspace = &self.indexes[index].keyspace;
        sweep(engine, keyspace, |view, value| {
            match std::str::from_utf8(value) {
                Ok(value) => self.holder(view, index, value).map(|h| h.is_some()),
                // The commit requires the entry unchanged.
                Err(_) => view.read(keyspace, value).map(|_| false),
            }
        })
    }

    /// Adds every difference between the records and the indexes, and every record in a state
    /// its machine cannot reach, to `report`.
    /// Records that have expired by `now` are not checked: their values are free, and the
    /// sweeper removes them with their entries.
    pub(crate) fn verify_into(&self, report: &mut Report, now: SystemTime) -> Result<()> {
        for entry in self.records.tree.scan(b"") {
            let (key, bytes) = entry?;
            report.records += 1;
            let record = self.record_key(key).and_then(|key| {
                let stored = self.parse(&key, bytes)?;
                Ok((self.decode(&key, &stored)?, key, stored.header.expired(now)))
            });
            let (value, key) = match record {
                Ok((_, _, true)) => continue,
                Ok((value, key, false)) => (value, key),
                Err(e) => {
                    report.problems.push(Problem::Undecodable {
                        location: self.name.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            for unique in &self.indexes {
                let indexed = (unique.value_of)(&value);
                let entry = unique.keyspace.tree.get(indexed.as_bytes())?;
                if entry.as_deref().map(codec::decode_claim) != Some(Ok(key.as_str())) {
                    report.problems.push(Problem::MissingEntry {
                        collection: self.name.clone(),
                        index: unique.name.clone(),
                        value: indexed,
                        key: key.clone(),
                    });
                }
            }
            for list in &self.value_indexes {
                let indexed = (list.value_of)(&value);
                let entry = codec::encode_index_entry(&indexed, &key);
                if list.keyspace.tree.get(&entry)?.is_none() {
                    report.problems.push(Problem::MissingEntry {
                        collection: self.name.clone(),
                        index: list.name.clone(),
                        value: indexed,
                        key: key.clone(),
                    });
                }
            }
            if let Some(states) = &self.states {
                let state = (states.state_of)(&value);
                if !states.machine.is_reachable(&state) {
                    report.problems.push(Problem::UnreachableState {
                        collection: self.name.clone(),
                        key: key.clone(),
                        state,
                    });
                }
            }
        }
        for (i, unique) in self.indexes.iter().enumerate() {
            for entry in unique.keyspace.tree.scan(b"") {
                let (value, claim) = entry?;
                report.index_entries += 1;
                let value = String::from_utf8_lossy(&value).into_owned();
                let location = format!("{}: index {} entry {value:?}", self.name, unique.name);
                // An expired record keeps its entries until it is swept.
                let checked = codec::decode_claim(&claim)
                    .map_err(|e| Error::decode(e, location.clone()))
                    .and_then(|holder| {
                        let mut view = Committed::at(SystemTime::UNIX_EPOCH);
                        Ok((holder.to_owned(), self.holder(&mut view, i, &value)?))
                    });
                let (holder, held) = match checked {
                    Ok(checked) => checked,
                    // The entry, or the record it names (the loop above reported that), does
                    // not decode, so the entry cannot be checked: a problem, not an error.
                    Err(e @ (Error::Corrupt { .. } | Error::UnsupportedFormat { .. })) => {
                        report.problems.push(Problem::Undecodable {
                            location,
                            reason: e.to_string(),
                        });
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if held.is_none_or(|(h, _)| h != holder) {
                    report.problems.push(Problem::StaleEntry {
                        collection: self.name.clone(),
                        index: unique.name.clone(),
                        value,
                        holder,
                    });
                }
            }
        }
        self.verify_value_indexes(report)
    }

    /// Adds every entry of the non-unique indexes that no record holds to `report`.
    fn verify_value_indexes(&self, report: &mut Report) -> Result<()> {
        for (i, list) in self.value_indexes.iter().enumerate() {
            for entry in list.keyspace.tree.scan(b"") {
                let (entry, _) = entry?;
                report.index_entries += 1;
                let location = || {
                    let shown = String::from_utf8_lossy(&entry);
                    format!("{}: index {} entry {shown:?}", self.name, list.name)
                };
                let decoded = codec::decode_index_entry(&entry)
                    .map_err(|e| Error::decode(e, location()))
                    .and_then(|(value, holder)| {
                        let mut view = Committed::at(SystemTime::UNIX_EPOCH);
                        let holds = self.entry_holds(&mut view, i, &entry)?;
                        Ok((value.into_owned(), holder.to_owned(), holds))
                    });
                match decoded {
                    Ok((_, _, true)) => {}
                    Ok((value, holder, false)) => report.problems.push(Problem::StaleEntry {
                        collection: self.name.clone(),
                        index: list.name.clone(),
                        value,
                        holder,
                    }),
                    Err(e @ (Error::Corrupt { .. } | Error::UnsupportedFormat { .. })) => {
                        report.problems.push(Problem::Undecodable {
                            location: location(),
                            reason: e.to_string(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// Removes every entry of the index `keyspace` that `counts` finds no record holding.
/// Each removal is a commit on condition that what decided it is unchanged: the scan's
/// read of the entry first, a fresh one on a retry.
fn sweep<'s>(
    engine: &dyn Engine,
    keyspace: &'s Keyspace,
    counts: impl Fn(&mut Recording<'s>, &[u8]) -> Result<bool>,
) -> Result<()> {
    for entry in keyspace.tree.scan(b"") {
        let (key, bytes) = entry?;
        let mut scanned = Some(bytes);
        while !remove_unless_counted(engine, keyspace, &key, scanned.take(), &counts)? {}
    }
    Ok(())
}

/// Removes the entry `key` of `keyspace` (holding `scanned`, if given) unless `counts` says
/// its record holds it; false if what decided that changed before the commit.
fn remove_unless_counted<'s>(
    engine: &dyn Engine,
    keyspace: &'s Keyspace,
    key: &[u8],
    scanned: Option<Bytes>,
    counts: &impl Fn(&mut Recording<'s>, &[u8]) -> Result<bool>,
) -> Result<bool> {
    let mut view = Recording::at(SystemTime::UNIX_EPOCH, engine);
    if let Some(bytes) = scanned {
        view.assume(keyspace, key, Some(bytes));
    }
    if view.settle_now(engine, |view| counts(view, key))?? {
        return Ok(true);
    }
    engine.commit_if(&Commit {
        writes: vec![Write {
            keyspace,
            key,
            value: None,
            record: None,
        }],
        ..view.unchanged(Route::Direct)
    })
}

/// Removes every entry of a keyspace, through `engine`'s commits, a page of entries at a time.
pub(crate) fn clear(engine: &dyn Engine, keyspace: &Keyspace, now: SystemTime) -> Result<()> {
    loop {
        let page: Vec<Vec<u8>> = keyspace
            .tree
            .scan(b"")
            .take(REMOVALS_PER_COMMIT)
            .map(|entry| entry.map(|(key, _)| key))
            .collect::<Result<_>>()?;
        if page.is_empty() {
            return Ok(());
        }
        engine.remove_all(keyspace, &page, now)?;
    }
}
