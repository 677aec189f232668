//! Version history and three-way merge: a collection may keep the last versions of each
//! record, so that a client that lost a race can merge its change into the winner's instead
//! of re-typing it.

use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Collection;
use crate::engine::{Engine, Keyspace};
use crate::retry::Backoff;
use crate::{Conflict, Error, Result, Version, Versioned};

/// Where a collection keeps the versions its records had before.
#[derive(Clone)]
pub(crate) struct History {
    pub(crate) keyspace: Keyspace,
    /// How many earlier versions each record keeps.
    pub(crate) keep: usize,
}

/// History entries of one key sort by version: the key's length, the key, the version.
fn prefix(key: &str) -> Vec<u8> {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut prefix = Vec::with_capacity(4 + key.len() + 8);
    prefix.extend_from_slice(&len.to_be_bytes());
    prefix.extend_from_slice(key.as_bytes());
    prefix
}

pub(crate) fn entry_key(key: &str, version: Version) -> Vec<u8> {
    let mut entry = prefix(key);
    entry.extend_from_slice(&version.get().to_be_bytes());
    entry
}

/// The key and version of a history entry's key; `None` if it is not one.
pub(crate) fn decode_entry_key(entry: &[u8]) -> Option<(&str, Version)> {
    let (len, rest) = entry.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (key, version) = rest.split_at_checked(len)?;
    let version: [u8; 8] = version.try_into().ok()?;
    Some((
        std::str::from_utf8(key).ok()?,
        Version::new(u64::from_be_bytes(version)),
    ))
}

impl History {
    /// Removes the oldest entries of `key` beyond the ones it keeps, through `engine`'s
    /// commit. A crash before this runs only leaves an extra old version, removed the next
    /// time.
    pub(crate) fn prune(&self, engine: &dyn Engine, key: &str, now: SystemTime) -> Result<()> {
        let mut entries: Vec<Vec<u8>> = self
            .keyspace
            .tree
            .scan(&prefix(key))
            .map(|entry| entry.map(|(k, _)| k))
            .collect::<Result<_>>()?;
        entries.truncate(entries.len().saturating_sub(self.keep));
        engine.remove_all(&self.keyspace, &entries, now)
    }
}

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The record `key` as it was at `version`: the current record, or one the collection's
    /// history still holds (see [`CollectionBuilder::history`]). `None` if neither has it.
    ///
    /// # Errors
    /// As [`Collection::get`].
    ///
    /// [`CollectionBuilder::history`]: super::CollectionBuilder::history
    pub fn get_at(&self, key: &str, version: Version) -> Result<Option<Versioned<T>>> {
        if let Some(current) = self.get(key)?
            && current.version == version
        {
            return Ok(Some(current));
        }
        let Some(history) = &self.schema().history else {
            return Ok(None);
        };
        let Some(bytes) = history.keyspace.tree.get(&entry_key(key, version))? else {
            return Ok(None);
        };
        let stored = self.schema().parse(key, bytes)?;
        self.schema().versioned(key, &stored).map(Some)
    }

    /// Writes `mine`, a change the caller made to the record as it was at `base`. If the record
    /// has moved on since, `merge(base, theirs, mine)` combines the caller's change with the
    /// current record (`theirs`), and the result is written with compare-and-swap; if the
    /// record moves again meanwhile, the merge runs again on the newer record.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
    /// struct Doc { title: String, body: String }
    ///
    /// let store = revkv::Store::temporary()?;
    /// let docs = store.collection::<Doc>("docs").history(8).open()?;
    /// let base = docs.insert("d", Doc { title: "t".into(), body: "b".into() })?;
    /// // Someone else retitles it; we edit the body of the version we read.
    /// docs.update("d", base, Doc { title: "T".into(), body: "b".into() })?;
    /// let mine = Doc { title: "t".into(), body: "B".into() };
    /// let merged = docs.update_merge("d", base, mine, |base: &Doc, theirs: &Doc, mine: &Doc| {
    ///     Ok(Doc {
    ///         title: if mine.title != base.title { mine.title.clone() } else { theirs.title.clone() },
    ///         body: if mine.body != base.body { mine.body.clone() } else { theirs.body.clone() },
    ///     })
    /// })?;
    /// assert_eq!(merged.value, Doc { title: "T".into(), body: "B".into() });
    /// # Ok::<(), revkv::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoHistory`] on a collection declared without
    /// [`CollectionBuilder::history`](super::CollectionBuilder::history), on every call, not
    /// only when a merge is needed: without a history no merge could ever find its base.
    /// [`Error::NotFound`] if the record no longer exists; [`Conflict::BaseNotRetained`] if the
    /// history no longer holds `base`; whatever conflict `merge` returns; the conflicts of
    /// [`Collection::update`] for the merged value; [`Conflict::VersionMismatch`] if every
    /// attempt lost a race.
    pub fn update_merge<F>(
        &self,
        key: &str,
        base: Version,
        mine: T,
        mut merge: F,
    ) -> Result<Versioned<T>>
    where
        F: FnMut(&T, &T, &T) -> Result<T, Conflict>,
    {
        let shared = &self.store().shared;
        if self.schema().history.is_none() {
            return Err(Error::NoHistory {
                collection: self.name().to_owned(),
            });
        }
        let mut backoff = Backoff::new();
        let mut base_value: Option<T> = None;
        let result = loop {
            let current = match self.get(key) {
                Ok(Some(current)) => current,
                Ok(None) => break Err(self.not_found(key)),
                Err(e) => break Err(e),
            };
            let value = if current.version == base {
                None
            } else {
                let base_version = match base_value.take() {
                    Some(value) => value,
                    None => match self.merge_base(key, base, current.version) {
                        Ok(value) => value,
                        Err(e) => break Err(e),
                    },
                };
                let merged = merge(&base_version, &current.value, &mine);
                base_value = Some(base_version);
                match merged {
                    Ok(merged) => Some(merged),
                    Err(conflict) => break Err(conflict.into()),
                }
            };
            let to_write = value.as_ref().unwrap_or(&mine);
            let expected = super::schema::Expect::Version(current.version);
            match self.write(key, expected, Some(to_write), None) {
                Ok(written) => break Ok(written.into_versioned(value.unwrap_or(mine))),
                Err(Error::Conflict(Conflict::VersionMismatch { .. })) if backoff.wait() => {}
                Err(other) => break Err(other),
            }
        };
        shared.observe(result)
    }

    /// The value `key` had at `base`, for a merge against the record now at `current`.
    fn merge_base(&self, key: &str, base: Version, current: Version) -> Result<T> {
        match self.get_at(key, base)? {
            Some(found) => Ok(found.value),
            None => Err(Conflict::BaseNotRetained {
                collection: self.name().to_owned(),
                key: key.to_owned(),
                base,
                current: Some(current),
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_one_key_sort_by_version_and_never_mix_with_longer_keys() {
        assert_eq!(
            decode_entry_key(&entry_key("ab", Version::new(300))),
            Some(("ab", Version::new(300)))
        );
        assert_eq!(decode_entry_key(b"\0\0\0\x09ab"), None);
        let a1 = entry_key("a", Version::new(1));
        let a2 = entry_key("a", Version::new(300));
        let ab = entry_key("ab", Version::new(0));
        assert!(a1 < a2);
        assert!(a1.starts_with(&prefix("a")) && a2.starts_with(&prefix("a")));
        assert!(!ab.starts_with(&prefix("a")));
    }
}
