//! Online backup: a consistent copy of a store, written as a new local store.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::format::Declared;
use super::{Transferred, built, declared};
use crate::meta::pending_key;
use crate::{Error, Result, Store};

/// Entries read from the snapshot at a time.
const BATCH: usize = 4096;

impl Store {
    /// Copies the store into `dest`, a directory that does not exist yet or is empty, as a
    /// local store that opens like this one: every collection's records, history, expiry
    /// entries and indexes, as of one point in the commit order, while writers carry on (as
    /// [`Store::export`] reads). Versions in the copy continue above every version this store
    /// issued.
    ///
    /// The copy is written to `<dest>.incomplete` and renamed to `dest` once it is durable, so
    /// `dest` holds a whole backup or nothing. Nothing is written to this store: a backup
    /// killed halfway leaves it as it was, and leaves `<dest>.incomplete` behind, which the
    /// next backup to `dest` removes.
    ///
    /// The change feed is not copied: the copy's feed starts empty.
    ///
    /// # Errors
    /// [`Error::NotEmpty`] if `dest` holds anything; [`Error::Io`] if it cannot be created or
    /// written; storage errors.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<Transferred> {
        let dest = dest.as_ref();
        if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
            return Err(Error::NotEmpty {
                store: dest.display().to_string(),
            });
        }
        let mut incomplete = dest.as_os_str().to_owned();
        incomplete.push(".incomplete");
        let incomplete = PathBuf::from(incomplete);
        if incomplete.exists() {
            std::fs::remove_dir_all(&incomplete)?;
        }
        let done = self.copy_into(&Store::open(&incomplete)?)?;
        if dest.exists() {
            std::fs::remove_dir(dest)?;
        }
        std::fs::rename(&incomplete, dest)?;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(done)
    }

    /// Copies every keyspace of every collection into `copy`, an empty store, and closes it
    /// once its copy is durable.
    fn copy_into(&self, copy: &Store) -> Result<Transferred> {
        let (engine, meta) = (self.shared.engine.as_ref(), &self.shared.meta);
        let collections = declared(meta)?;
        let mut names = Vec::new();
        for collection in &collections {
            let name = &collection.name;
            names.extend([
                format!("c/{name}"),
                format!("h/{name}"),
                format!("x/{name}"),
            ]);
            names.extend(collection.unique.iter().map(|i| format!("u/{name}/{i}")));
            names.extend(collection.indexes.iter().map(|i| format!("i/{name}/{i}")));
        }
        let keyspaces = names
            .iter()
            .map(|name| engine.keyspace(name.clone()))
            .collect::<Result<_>>()?;
        let mut snapshot = engine.snapshot(keyspaces)?;
        let versions_below = engine.version_mark()?;
        let trees = names
            .iter()
            .map(|name| copy.shared.engine.tree(name))
            .collect::<Result<Vec<_>>>()?;
        let mut done = Transferred {
            collections: collections.len() as u64,
            ..Transferred::default()
        };
        while let Some((keyspace, entries)) = snapshot.next_batch(BATCH)? {
            let count = entries.len() as u64;
            match names[keyspace].as_bytes()[0] {
                b'c' => done.records += count,
                b'h' => done.history += count,
                _ => {}
            }
            for (key, value) in entries {
                trees[keyspace].put(&key, &value)?;
            }
        }
        let copied = &copy.shared.meta;
        for (collection, built) in collections.iter().zip(built(meta)?) {
            let name = &collection.name;
            copied.put(&format!("collection/{name}"), &built.unique)?;
            copied.put(&format!("lists/{name}"), &built.indexes)?;
            if let Some(pending) = meta.get::<Declared>(&pending_key(name))? {
                copied.put(&pending_key(name), &pending)?;
            }
        }
        copy.shared.engine.raise_versions(versions_below)?;
        copy.flush()?;
        Ok(done)
    }
}
