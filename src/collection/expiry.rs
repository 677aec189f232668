//! Expiry: records written with a time to live read as absent once it has passed, their unique
//! values are free for others, and a sweeper removes them, together with their index entries
//! and whatever the collection's expiry handler does, in one transaction.
//!
//! Until the sweep the expired record stays on disk, so a crash between expiry and sweep loses
//! nothing: the next sweep after the restart runs the handler.

use std::borrow::Borrow;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Collection;
use super::schema::Expect;
use crate::blocking::block_on;
use crate::engine::REMOVALS_PER_COMMIT;
use crate::{Result, Transaction, Version};

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Creates `key` as [`Collection::insert`] does, expiring `ttl` from now: then it reads
    /// as absent, its unique values are free, and the sweeper removes it (running the
    /// collection's expiry handler, see [`CollectionBuilder::on_expiry`]).
    ///
    /// # Errors
    /// As [`Collection::insert`].
    ///
    /// [`CollectionBuilder::on_expiry`]: super::CollectionBuilder::on_expiry
    pub fn insert_expiring(
        &self,
        key: &str,
        value: impl Borrow<T>,
        ttl: Duration,
    ) -> Result<Version> {
        self.insert_observed(key, value.borrow(), Some(ttl))
    }

    /// Replaces `key` as [`Collection::update`] does, expiring `ttl` from now. (A plain
    /// update clears a record's expiry.)
    ///
    /// # Errors
    /// As [`Collection::update`].
    pub fn update_expiring(
        &self,
        key: &str,
        expected: Version,
        value: impl Borrow<T>,
        ttl: Duration,
    ) -> Result<Version> {
        let written = self.write(
            key,
            Expect::Version(expected),
            Some(value.borrow()),
            Some(ttl),
        );
        self.store().shared.observe(written.map(|w| w.version))
    }

    /// Removes `key` if it has expired, running the expiry handler, in one transaction;
    /// whether it did.
    pub(crate) async fn expire(&self, key: &str) -> Result<bool> {
        let store = self.store();
        store
            .run_transaction::<Transaction<'_>, _, _>(|tx| Box::pin(tx.expire(self, key)))
            .await
    }

    /// Sweeps every record that has expired by `now`; returns how many it removed.
    pub(crate) fn sweep_due(&self, now: SystemTime) -> Result<usize> {
        let expiry = &self.schema().expiry;
        let engine = self.store().shared.engine.as_ref();
        let due_by = crate::codec::micros(now).to_be_bytes();
        let (mut swept, mut done) = (0, Vec::new());
        for entry in expiry.tree.scan(b"") {
            let (entry, _) = entry?;
            if let Some((due, key)) = entry.split_at_checked(8) {
                if due > due_by.as_slice() {
                    break; // entries are in expiry order
                }
                if let Ok(key) = std::str::from_utf8(key)
                    && block_on(self.expire(key))?
                {
                    swept += 1;
                }
            }
            // Done, stale (the record was changed or removed since) or malformed: gone.
            done.push(entry);
            if done.len() == REMOVALS_PER_COMMIT {
                engine.remove_all(expiry, &done, now)?;
                done.clear();
            }
        }
        engine.remove_all(expiry, &done, now)?;
        Ok(swept)
    }
}
