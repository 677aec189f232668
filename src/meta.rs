//! The store's own bookkeeping, kept in one tree of small tagged values.
//!
//! | key                  | value                                                        |
//! |----------------------|--------------------------------------------------------------|
//! | `format`             | layout number of the store                                   |
//! | `session`            | whether the last session closed cleanly                      |
//! | `version-lease`      | high-water mark of the version sequence                      |
//! | `collection/<name>`  | the unique indexes the collection was last opened with      |
//! | `sweep/<name>`       | present when the collection's indexes need a crash sweep     |
//! | `feed-lease`         | high-water mark of the change feed's positions               |
//! | `feed-applied`       | every change feed entry up to this position is applied       |
//! | `feed-pruned`        | the last change feed position retention removed              |
//! | `journal-generation` | the journal's frames of older generations are checkpointed   |
//! | `change-feed`        | on etcd: present once the store keeps a change feed          |

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::Tree;
use crate::codec::{self, META};
use crate::{Error, Result};

pub(crate) struct Meta {
    tree: Arc<dyn Tree>,
}

impl Meta {
    pub(crate) fn new(tree: Arc<dyn Tree>) -> Self {
        Self { tree }
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.tree
            .get(key.as_bytes())?
            .map(|bytes| {
                codec::decode_tagged(META, &bytes)
                    .map_err(|e| Error::decode(e, format!("the store's metadata {key:?}")))
            })
            .transpose()
    }

    pub(crate) fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.tree.put(key.as_bytes(), &encode(key, value)?)
    }

    /// Writes `new` under `key` only if it still holds `old` (`None`: nothing); whether it
    /// did. For bookkeeping that several processes share (on etcd).
    #[cfg(feature = "etcd")]
    pub(crate) fn swap<T: Serialize>(&self, key: &str, old: Option<&T>, new: &T) -> Result<bool> {
        let old = old.map(|old| encode(key, old)).transpose()?;
        let new = encode(key, new)?;
        self.tree.swap(key.as_bytes(), old.as_deref(), Some(&new))
    }

    pub(crate) fn remove(&self, key: &str) -> Result<()> {
        self.tree.remove(key.as_bytes())
    }

    /// The keys that start with `prefix`, with the prefix cut off.
    pub(crate) fn names(&self, prefix: &str) -> Result<Vec<String>> {
        self.tree
            .scan(prefix.as_bytes())
            .map(|entry| {
                let (key, _) = entry?;
                Ok(String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            })
            .collect()
    }
}

/// The metadata key of the indexes an import declared for `collection`, until the service
/// opens the collection and builds them.
pub(crate) fn pending_key(collection: &str) -> String {
    format!("declared/{collection}")
}

/// `value` as the metadata `key` stores it. Encoding is deterministic, so equal values encode
/// to equal bytes, which [`Meta::swap`] compares.
fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>> {
    codec::encode_tagged(META, value)
        .map_err(|e| Error::encode(e, format!("the store's metadata {key:?}")))
}
