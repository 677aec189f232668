//! Snapshots of the local engine, which sled 0.34 does not have: copy-on-write of what the
//! snapshot has not read yet.
//!
//! A snapshot starts while every commit is paused, so it starts between commits. From then on
//! a commit, under its key locks and before its first write, keeps the value each key it
//! writes held (its *before-image*) for every open snapshot that has not read that key yet;
//! the snapshot reads keys in order and takes a key's before-image where there is one,
//! the key's value where there is none. Both sides do this under the snapshot's mutex, so a
//! key is either read before a commit writes it, or its before-image is kept first.
//! Before-images are held in memory until read: their size is what commits write to
//! keys the snapshot has not reached.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::Result;
use crate::backend::{Bytes, KeyRange};
use crate::engine::commit::Write;
use crate::engine::keyspace::Keyspace;
use crate::engine::snapshot::{Snapshot, SnapshotBatch};

/// The open snapshots of one engine.
#[derive(Default)]
pub(crate) struct Snapshots {
    /// How many are open: commits skip the rest while none is.
    open: AtomicUsize,
    progress: Mutex<Vec<Weak<Mutex<Progress>>>>,
}

/// How far a snapshot has read, and the before-images of what it has not.
struct Progress {
    keyspaces: Vec<Keyspace>,
    /// Keyspaces before this one are read.
    keyspace: usize,
    /// Keys of `keyspace` up to this one are read (`None`: none yet).
    read_to: Option<Vec<u8>>,
    /// Per keyspace, the values keys held at the snapshot's point (`None`: absent), for keys
    /// written since and not read yet.
    before: Vec<BTreeMap<Vec<u8>, Option<Bytes>>>,
}

impl Progress {
    fn has_read(&self, keyspace: usize, key: &[u8]) -> bool {
        keyspace < self.keyspace
            || (keyspace == self.keyspace && self.read_to.as_deref().is_some_and(|to| key <= to))
    }
}

impl Snapshots {
    /// A snapshot of `keyspaces` now. The caller holds every commit back while this runs.
    pub(crate) fn take(self: &Arc<Self>, keyspaces: Vec<Keyspace>) -> LocalSnapshot {
        let before = keyspaces.iter().map(|_| BTreeMap::new()).collect();
        let progress = Arc::new(Mutex::new(Progress {
            keyspaces,
            keyspace: 0,
            read_to: None,
            before,
        }));
        let mut open = self.progress.lock();
        open.retain(|p| p.strong_count() > 0);
        open.push(Arc::downgrade(&progress));
        self.open.fetch_add(1, Ordering::AcqRel);
        LocalSnapshot {
            snapshots: Arc::clone(self),
            progress,
        }
    }

    /// Keeps, for every open snapshot, the before-image of each key of `writes` it has not
    /// read. Called under the writes' key locks, before the first of them.
    pub(crate) fn preserve(&self, writes: &[Write<'_>]) -> Result<()> {
        if self.open.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let open: Vec<_> = self
            .progress
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for progress in open {
            let mut progress = progress.lock();
            for write in writes {
                let found = progress
                    .keyspaces
                    .iter()
                    .position(|k| k.name == write.keyspace.name);
                let Some(i) = found else { continue };
                if progress.has_read(i, write.key) || progress.before[i].contains_key(write.key) {
                    continue;
                }
                let held = write.keyspace.tree.get(write.key)?;
                progress.before[i].insert(write.key.to_vec(), held);
            }
        }
        Ok(())
    }
}

/// A snapshot of the local engine.
pub(crate) struct LocalSnapshot {
    snapshots: Arc<Snapshots>,
    progress: Arc<Mutex<Progress>>,
}

impl Snapshot for LocalSnapshot {
    fn next_batch(&mut self, limit: usize) -> Result<Option<SnapshotBatch>> {
        let limit = limit.max(1);
        let mut guard = self.progress.lock();
        let progress = &mut *guard;
        while progress.keyspace < progress.keyspaces.len() {
            let i = progress.keyspace;
            let lower = progress
                .read_to
                .clone()
                .map_or(Bound::Unbounded, Bound::Excluded);
            let range = KeyRange {
                lower,
                upper: Bound::Unbounded,
            };
            let read: Vec<_> = progress.keyspaces[i]
                .tree
                .range(&range, false)
                .take(limit)
                .collect::<Result<_>>()?;
            let last = (read.len() == limit).then(|| read[read.len() - 1].0.clone());
            // The before-images of keys in the part just read replace what is there now.
            let kept = &mut progress.before[i];
            let preserved = match &last {
                Some(last) => {
                    let later = kept.split_off(&[last.as_slice(), &[0]].concat());
                    std::mem::replace(kept, later)
                }
                None => std::mem::take(kept),
            };
            let entries = if preserved.is_empty() {
                read
            } else {
                let mut merged: BTreeMap<Vec<u8>, Bytes> = read.into_iter().collect();
                for (key, value) in preserved {
                    match value {
                        Some(value) => merged.insert(key, value),
                        None => merged.remove(&key),
                    };
                }
                merged.into_iter().collect()
            };
            match last {
                Some(last) => progress.read_to = Some(last),
                None => {
                    progress.keyspace += 1;
                    progress.read_to = None;
                }
            }
            if !entries.is_empty() {
                return Ok(Some((i, entries)));
            }
        }
        Ok(None)
    }
}

impl Drop for LocalSnapshot {
    fn drop(&mut self) {
        self.snapshots.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::{Backend, Memory};
    use crate::engine::local::copy_on_write::*;

    #[test]
    fn a_snapshot_reads_the_values_from_before_writes_to_what_it_has_not_read() -> Result<()> {
        let memory = Memory::new();
        let backend = memory.claim()?;
        let keyspace =
            |name: &str| Ok::<_, crate::Error>(Keyspace::new(name.into(), backend.tree(name)?));
        let (a, b) = (keyspace("a")?, keyspace("b")?);
        for key in [b"a1", b"a2", b"a3"] {
            a.tree.put(key, b"old")?;
        }
        b.tree.put(b"b1", b"old")?;
        let snapshots = Arc::new(Snapshots::default());
        let mut snapshot = snapshots.take(vec![a.clone(), b.clone()]);
        let first = snapshot.next_batch(2)?.expect("a batch");
        assert_eq!(first.0, 0);
        assert_eq!(
            first
                .1
                .iter()
                .map(|(k, _)| k.as_slice())
                .collect::<Vec<_>>(),
            [b"a1", b"a2"]
        );

        // A commit after the snapshot's point: a1 is read already, the rest is not.
        let write = |keyspace, key, value| Write {
            keyspace,
            key,
            value,
            record: None,
        };
        let writes = [
            write(&a, b"a1", Some(&b"new"[..])),
            write(&a, b"a3", Some(&b"new"[..])),
            write(&a, b"a4", Some(&b"new"[..])),
            write(&b, b"b1", None),
        ];
        snapshots.preserve(&writes)?;
        for w in &writes {
            match w.value {
                Some(value) => w.keyspace.tree.put(w.key, value)?,
                None => w.keyspace.tree.remove(w.key)?,
            }
        }
        let rest: Vec<_> =
            std::iter::from_fn(|| snapshot.next_batch(10).transpose()).collect::<Result<_>>()?;
        let read: Vec<(usize, &[u8], &[u8])> = rest
            .iter()
            .flat_map(|(i, entries)| entries.iter().map(move |(k, v)| (*i, k.as_slice(), &v[..])))
            .collect();
        assert_eq!(read, [(0, &b"a3"[..], &b"old"[..]), (1, b"b1", b"old")]);
        drop(snapshot);
        assert_eq!(snapshots.open.load(Ordering::Acquire), 0);
        Ok(())
    }
}
