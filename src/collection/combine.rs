//! Write combining for `update_with` on a hot key.
//!
//! On a collection whose records are single-key writes (no unique index, state machine,
//! history or change feed), callers of `update_with` on one key queue on a small per-key
//! *chain*: each applies its closure to the newest value of the chain (written or not), gets
//! its own version, and appends the result; then one of them commits the newest value on
//! condition that the engine still holds the record it held when the chain began,
//! acknowledging every caller whose version it covers. A hot key thus
//! costs one engine write per group of callers instead of one per caller, and callers never
//! invalidate each other's reads. A plain write to the key in between makes that check fail:
//! the chain is dropped and its callers run their closures again on the new value.
//!
//! Each caller still gets its own version and result; versions that were superseded before
//! being written are never stored, as if written and overwritten at once.
//!
//! A caller waiting for another's write yields its core for up to [`SPIN`] before it sleeps. A
//! write takes microseconds, and sleeping and being woken for each one cost more than that: in
//! `cargo bench --bench contention` on this project's 2-core machine, yielding took 2 threads
//! on one key from 0.70-0.80x the 1-thread rate to 1.19-1.45x, and 8 threads from 0.51-0.52x
//! to 1.68-1.92x, for 1.85 busy cores instead of 1.18 at 2 threads (BENCHMARKS.md, section 3).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam::utils::CachePadded;
use parking_lot::{Condvar, Mutex, MutexGuard};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Collection;
use crate::backend::Bytes;
use crate::blocking::block_on;
use crate::engine::{Commit, Compare, RecordChange, Route, Write};
use crate::locks::{self, LockId};
use crate::spin;
use crate::{Result, Version, Versioned};

const STRIPES: usize = 256;
/// How long a caller yields its core while another writes its key before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// The chains of all hot keys, by the key's write-lock stripe.
pub(crate) struct Combiners {
    stripes: Box<[CachePadded<Stripe>]>,
}

#[derive(Default)]
struct Stripe {
    chains: Mutex<HashMap<Vec<u8>, Chain>>,
    progress: Condvar,
    /// Writes ended on this stripe. Bumped under `chains`; read without it by callers that
    /// yield while another writes.
    writes_ended: AtomicU64,
}

/// The updates of one key not yet known to be in the engine.
#[derive(Default)]
struct Chain {
    /// The record the engine holds under the chain, as far as the chain knows.
    engine: Option<Bytes>,
    /// The newest computed record, not yet written: `(version, bytes)`. Reference-counted:
    /// every caller that joins the chain reads it, and its writer takes it out of the lock.
    pending: Option<(Version, Bytes)>,
    writing: bool,
    /// The newest version this chain has written.
    written: Option<Version>,
    /// Bumped whenever the chain is dropped because the engine held something else.
    epoch: u64,
    /// Callers waiting on the chain; it is removed when none is left and nothing is pending.
    members: usize,
}

impl Combiners {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
        }
    }

    fn stripe(&self, id: LockId) -> &Stripe {
        &self.stripes[id.index() % STRIPES]
    }
}

/// How a caller's turn on a chain ended.
enum Turn {
    Written,
    /// The chain was dropped: run the closure again on a fresh read.
    Dropped,
}

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Whether `update_with` on this collection may combine writes (see the module docs).
    pub(crate) fn combines_writes(&self) -> bool {
        let schema = self.schema();
        !schema.needs_old_value()
            && schema.history.is_none()
            && self.store().shared.engine.feed().is_none()
    }

    /// `update_with` through the key's chain. `Ok(None)` asks the caller to take the
    /// ordinary path: the record carries an expiry time, which only that path handles.
    pub(crate) fn update_with_combined<F>(
        &self,
        key: &str,
        change: &mut F,
    ) -> Result<Option<Versioned<T>>>
    where
        F: FnMut(&T) -> T,
    {
        let shared = &self.store().shared;
        let schema = self.schema();
        schema.check_key(key, shared.limits)?;
        let lock = schema.records.lock_id(shared.turns.table(), key.as_bytes());
        let stripe = shared.combiners.stripe(lock);
        let mut chains = stripe.chains.lock();
        let mut retries = 0;
        loop {
            let now = shared.clock.now();
            let chain = chains.entry(key.as_bytes().to_vec()).or_default();
            let epoch = chain.epoch;
            // The newest value: the chain's, or the engine's when the chain is empty.
            let bytes = match &chain.pending {
                Some((_, bytes)) => bytes.clone(),
                None => match schema.records.tree.get(key.as_bytes()) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => {
                        remove_if_idle(&mut chains, key);
                        return Err(self.not_found(key));
                    }
                    Err(e) => {
                        remove_if_idle(&mut chains, key);
                        return Err(e);
                    }
                },
            };
            let computed = (|| {
                let stored = schema.parse(key, bytes.clone())?;
                if stored.header.expires.is_some() {
                    return Ok(None);
                }
                let current = schema.decode(key, &stored)?;
                let value = locks::with_turn_held(|| change(&current));
                let mut new = schema.new_value(key, &value, shared.limits, None)?;
                let version = block_on(shared.engine.next_version(Some(stored.header.version)))?;
                new.record.stamp(version, now, None);
                Ok(Some((version, Bytes::from(new.record.bytes()), value)))
            })();
            let (version, computed_bytes, value) = match computed {
                Ok(Some(computed)) => computed,
                other => {
                    remove_if_idle(&mut chains, key);
                    return other.map(|_| None);
                }
            };
            let chain = chains.entry(key.as_bytes().to_vec()).or_default();
            if chain.pending.is_none() {
                chain.engine = Some(bytes);
            }
            chain.pending = Some((version, computed_bytes));
            chain.members += 1;
            match self.take_turn(&mut chains, stripe, key, version, epoch) {
                Ok(Turn::Written) => {
                    leave(&mut chains, key);
                    drop(chains);
                    shared
                        .observer
                        .update_with(&schema.name, key, retries, || now);
                    return Ok(Some(Versioned::new(version, value, now, None)));
                }
                Ok(Turn::Dropped) => retries += 1,
                Err(e) => {
                    leave(&mut chains, key);
                    return Err(e);
                }
            }
            leave(&mut chains, key);
        }
    }

    /// Waits until `version` is written, writing the chain's newest value when no one else is.
    fn take_turn(
        &self,
        chains: &mut MutexGuard<'_, HashMap<Vec<u8>, Chain>>,
        stripe: &Stripe,
        key: &str,
        version: Version,
        epoch: u64,
    ) -> Result<Turn> {
        let shared = &self.store().shared;
        loop {
            let Some(chain) = chains.get_mut(key.as_bytes()) else {
                return Ok(Turn::Dropped);
            };
            if chain.epoch != epoch {
                return Ok(Turn::Dropped);
            }
            if chain.written >= Some(version) {
                return Ok(Turn::Written);
            }
            if chain.writing {
                // A write usually takes microseconds: yield first, sleep after SPIN.
                spin::wait_for_change(chains, &stripe.progress, &stripe.writes_ended, SPIN);
                continue;
            }
            let Some((newest, bytes)) = chain.pending.clone() else {
                return Ok(Turn::Dropped);
            };
            let expected = chain.engine.clone();
            chain.writing = true;
            // Fails if a plain write got in between.
            let wrote = MutexGuard::unlocked(chains, || {
                let records = &self.schema().records;
                shared.engine.commit_if(&Commit {
                    compares: vec![Compare {
                        keyspace: records,
                        key: key.as_bytes(),
                        holds: expected.as_deref(),
                    }],
                    ranges: &[],
                    writes: vec![Write {
                        keyspace: records,
                        key: key.as_bytes(),
                        value: Some(&bytes),
                        record: Some(RecordChange {
                            existed: true,
                            version: newest,
                        }),
                    }],
                    route: Route::Logged,
                    modified: shared.clock.now(),
                })
            });
            let chain = chains.entry(key.as_bytes().to_vec()).or_default();
            chain.writing = false;
            match wrote {
                Ok(true) => {
                    chain.written = Some(newest);
                    chain.engine = Some(bytes);
                    if chain.pending.as_ref().is_some_and(|(v, _)| *v == newest) {
                        chain.pending = None;
                    }
                }
                Ok(false) | Err(_) => {
                    chain.pending = None;
                    chain.epoch += 1;
                }
            }
            stripe.writes_ended.fetch_add(1, Ordering::Release);
            stripe.progress.notify_all();
            wrote?;
        }
    }
}

/// One caller leaves the chain of `key`, which is removed once idle.
fn leave(chains: &mut HashMap<Vec<u8>, Chain>, key: &str) {
    if let Some(chain) = chains.get_mut(key.as_bytes()) {
        chain.members = chain.members.saturating_sub(1);
    }
    remove_if_idle(chains, key);
}

/// Removes the chain of `key` if no caller is on it and nothing is left to write.
fn remove_if_idle(chains: &mut HashMap<Vec<u8>, Chain>, key: &str) {
    if chains
        .get(key.as_bytes())
        .is_some_and(|c| c.members == 0 && c.pending.is_none() && !c.writing)
    {
        chains.remove(key.as_bytes());
    }
}
