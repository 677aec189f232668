//! Export: every collection's records and history, as of one point in the commit order.

use std::io::Write;

use super::format::{EXPORT_FORMAT, Header, Line, RecordLine};
use super::{Transferred, declared};
use crate::codec::decode_record;
use crate::collection::history;
use crate::{Error, Result, Store};

/// Entries read from the snapshot at a time.
const BATCH: usize = 1024;

impl Store {
    /// Writes every collection's records and retained history to `out` in revkv's export
    /// format (see [`admin`](crate::admin)), as of one point in the commit order: each commit is
    /// in it whole or not at all, while writers carry on. On the embedded engine, a write during
    /// the export keeps the value its keys had until the export has read them (in memory);
    /// on etcd, the export reads one revision, which the cluster must not compact before the
    /// export ends.
    ///
    /// # Errors
    /// [`Error::Io`] if `out` fails, storage errors, [`Error::Corrupt`] for stored bytes that
    /// are not a record.
    pub fn export(&self, out: impl Write) -> Result<Transferred> {
        let engine = self.shared.engine.as_ref();
        let collections = declared(&self.shared.meta)?;
        let mut keyspaces = Vec::with_capacity(collections.len() * 2);
        for collection in &collections {
            keyspaces.push(engine.keyspace(format!("c/{}", collection.name))?);
            keyspaces.push(engine.keyspace(format!("h/{}", collection.name))?);
        }
        let mut snapshot = engine.snapshot(keyspaces)?;
        // Read after the snapshot's point: above every version in it.
        let versions_below = engine.version_mark()?;
        let now = self.shared.clock.now();
        let mut out = std::io::BufWriter::new(out);
        let mut done = Transferred {
            collections: collections.len() as u64,
            ..Transferred::default()
        };
        let names: Vec<String> = collections.iter().map(|c| c.name.clone()).collect();
        write_line(
            &mut out,
            &Line::Header(Header {
                revkv_export: EXPORT_FORMAT,
                versions_below,
                collections,
            }),
        )?;
        // A value's base64, reused from line to line.
        let mut value = String::new();
        while let Some((keyspace, entries)) = snapshot.next_batch(BATCH)? {
            let collection = &names[keyspace / 2];
            let history = keyspace % 2 == 1;
            for (key, bytes) in entries {
                let key = if history {
                    history::decode_entry_key(&key).map(|(key, _)| key)
                } else {
                    std::str::from_utf8(&key).ok()
                };
                let location = || format!("{collection}/{key:?}");
                let key = key.ok_or_else(|| Error::Corrupt {
                    location: location(),
                    reason: "not a record's key".into(),
                })?;
                let (header, payload) =
                    decode_record(&bytes).map_err(|e| Error::decode(e, location()))?;
                let line = RecordLine::stored(collection, key, &header, payload, &mut value);
                if history {
                    write_line(&mut out, &Line::History(line))?;
                    done.history += 1;
                } else if !header.expired(now) {
                    write_line(&mut out, &Line::Record(line))?;
                    done.records += 1;
                }
            }
        }
        write_line(&mut out, &Line::End((&done).into()))?;
        out.flush()?;
        Ok(done)
    }
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}
