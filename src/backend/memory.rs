//! Trees in memory: a store without a directory, for tests and fuzzing, that lives as long as
//! its [`Memory`] and can be reopened, copied, or damaged on purpose.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use super::{Backend, Bytes, Entries, KeyRange, Tree};
use crate::{Error, Result};

/// The storage of an in-memory store ([`StoreBuilder::memory`]).
///
/// A `Memory` outlives the stores opened on it: drop a store and open another on the same
/// `Memory` to reopen it, with the recovery a reopen runs. One store at a time: opening a
/// second while one is open is [`Error::Locked`]. Clones share the same storage;
/// [`Memory::snapshot`] copies it. Nothing in it is durable beyond the process.
///
/// ```
/// # fn main() -> revkv::Result<()> {
/// let memory = revkv::Memory::new();
/// let store = revkv::Store::builder().memory(&memory).open()?;
/// let notes = store.collection::<String>("notes").open()?;
/// let v1 = notes.insert("n1", "hello".to_owned())?;
/// drop((notes, store));
///
/// let store = revkv::Store::builder().memory(&memory).open()?;
/// let notes = store.collection::<String>("notes").open()?;
/// assert_eq!(notes.get("n1")?.map(|n| n.version), Some(v1));
/// # Ok(())
/// # }
/// ```
///
/// [`StoreBuilder::memory`]: crate::StoreBuilder::memory
#[derive(Clone, Default)]
pub struct Memory {
    trees: Arc<Mutex<BTreeMap<String, Arc<MemoryTree>>>>,
    /// Whether a store is open on it.
    in_use: Arc<AtomicBool>,
}

impl Memory {
    /// Empty storage.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything stored now, independent of `self` from here on. Taken while a
    /// store is open on `self`, the copy is what a crash at this moment would leave (with
    /// every write that returned stored): a store opened on it runs crash recovery.
    #[must_use]
    pub fn snapshot(&self) -> Self {
        let trees = self
            .trees
            .lock()
            .iter()
            .map(|(name, tree)| {
                let copy = MemoryTree {
                    entries: Arc::new(RwLock::new(tree.entries.read().clone())),
                };
                (name.clone(), Arc::new(copy))
            })
            .collect();
        Self {
            trees: Arc::new(Mutex::new(trees)),
            in_use: Arc::default(),
        }
    }

    /// Stores `bytes` at `key` of the engine tree `tree`, past revkv: for tests of what revkv
    /// does with bytes it did not write (a damaged or hand-edited store). The trees and their
    /// bytes are revkv's storage format, which is not a stable API; a store reads whatever
    /// is planted with typed errors, and [`Store::verify`](crate::Store::verify) reports it.
    pub fn plant(&self, tree: &str, key: &[u8], bytes: &[u8]) {
        self.open(tree)
            .entries
            .write()
            .insert(key.to_vec(), Bytes::from(bytes));
    }

    /// What `key` of the engine tree `tree` holds: for tests that copy stored bytes, to
    /// [`Memory::plant`] them elsewhere. The same caveat applies: the layout is not an API.
    #[must_use]
    pub fn read(&self, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.open(tree).entries.read().get(key).map(|b| b.to_vec())
    }

    /// The engine's storage, held until it is dropped.
    pub(crate) fn claim(&self) -> Result<MemoryBackend> {
        if self.in_use.swap(true, Ordering::AcqRel) {
            return Err(Error::Locked {
                path: "<memory>".into(),
            });
        }
        Ok(MemoryBackend(self.clone()))
    }

    fn open(&self, name: &str) -> Arc<MemoryTree> {
        Arc::clone(self.trees.lock().entry(name.to_owned()).or_default())
    }
}

/// A [`Memory`] claimed by the store open on it.
pub(crate) struct MemoryBackend(Memory);

impl Drop for MemoryBackend {
    fn drop(&mut self) {
        self.0.in_use.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trees = self.trees.lock();
        f.debug_struct("Memory")
            .field("trees", &trees.len())
            .finish_non_exhaustive()
    }
}

impl Backend for MemoryBackend {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        Ok(self.0.open(name))
    }

    /// Memory holds every write once it returns.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn admit(&self) -> Result<()> {
        Ok(())
    }
}

/// Entries behind an `Arc` of their own, which a scan holds while it runs.
#[derive(Default)]
struct MemoryTree {
    entries: Arc<RwLock<BTreeMap<Vec<u8>, Bytes>>>,
}

impl Tree for MemoryTree {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.entries.read().get(key).cloned())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.entries
            .write()
            .insert(key.to_vec(), Bytes::from(value));
        Ok(())
    }

    fn swap(&self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
        let mut entries = self.entries.write();
        if entries.get(key).map(|held| &held[..]) != old {
            return Ok(false);
        }
        match new {
            Some(value) => entries.insert(key.to_vec(), Bytes::from(value)),
            None => entries.remove(key),
        };
        Ok(true)
    }

    fn remove(&self, key: &[u8]) -> Result<()> {
        self.entries.write().remove(key);
        Ok(())
    }

    /// Each entry is read under the lock on its own, as sled's iterators do: writes between
    /// two steps are seen or not by their key's place.
    fn range(&self, range: &KeyRange, reverse: bool) -> Entries {
        let entries = Arc::clone(&self.entries);
        let mut rest = range.clone();
        Box::new(std::iter::from_fn(move || {
            if rest.is_empty() {
                return None; // (which a map's range would panic on)
            }
            let entries = entries.read();
            let mut within = entries.range::<[u8], _>(rest.bounds());
            let (key, value) = if reverse {
                within.next_back()?
            } else {
                within.next()?
            };
            let passed = Bound::Excluded(key.clone());
            if reverse {
                rest.upper = passed;
            } else {
                rest.lower = passed;
            }
            Some(Ok((key.clone(), value.clone())))
        }))
    }
}
