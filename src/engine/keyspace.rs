//! A keyspace: one tree of the engine, named, with the lock space of its keys.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use crate::backend::Tree;
use crate::locks::{LockId, LockTable};

/// One tree of the engine plus the lock space of its keys.
#[derive(Clone)]
pub(crate) struct Keyspace {
    pub(crate) name: Arc<str>,
    pub(crate) tree: Arc<dyn Tree>,
    space: u64,
}

impl Keyspace {
    /// The keyspace `name`, stored in `tree` ([`Engine::keyspace`] opens both).
    ///
    /// [`Engine::keyspace`]: crate::engine::contract::Engine::keyspace
    pub(crate) fn new(name: String, tree: Arc<dyn Tree>) -> Self {
        // A fixed hash of the name, so every handle on the same tree shares its locks.
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        Self {
            tree,
            space: hasher.finish(),
            name: name.into(),
        }
    }

    pub(crate) fn lock_id(&self, locks: &LockTable, key: &[u8]) -> LockId {
        locks.id(self.space, key)
    }
}
