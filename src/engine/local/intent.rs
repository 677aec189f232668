//! Intents: how a transaction that writes several records stays all-or-nothing across a crash.
//!
//! Under the locks of every key it touches, such a transaction
//! 1. writes one *intent* (a single-key write) listing all of its writes,
//! 2. performs them as ordinary single-key writes,
//! 3. removes the intent.
//!
//! The engine recovers a prefix of the single-key writes in the order they returned (see the
//! crate docs on durability). If the prefix ends before step 1, nothing of the transaction
//! survives; if it ends after, the intent survives and [`replay`] re-applies every write at the
//! next open, before anything else runs. The writes carry absolute values, so applying one
//! twice is harmless, and no later write to the same keys can survive without step 3: it
//! waited for the locks that are released only after step 3.

use crate::backend::{Backend, Tree};
use crate::codec::{self, INTENT};
use crate::{Error, Result};

/// One write of a transaction: `(tree, key, value)`; a `None` value removes the key.
pub(crate) type IntentWrite<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);

pub(crate) type OwnedWrite = (String, Vec<u8>, Option<Vec<u8>>);

/// `write` with its own copies of tree name, key and value, as a journal frame lists it.
pub(crate) fn owned((tree, key, value): IntentWrite<'_>) -> OwnedWrite {
    (tree.to_owned(), key.to_vec(), value.map(<[u8]>::to_vec))
}

/// Applies `writes` in order behind an intent `id`, as described in the module docs.
pub(crate) fn apply_atomically(
    intents: &dyn Tree,
    id: u64,
    writes: &[(IntentWrite<'_>, &dyn Tree)],
) -> Result<()> {
    let listed: Vec<&IntentWrite<'_>> = writes.iter().map(|(w, _)| w).collect();
    let intent = codec::encode_tagged(INTENT, &listed)
        .map_err(|e| Error::encode(e, format!("transaction intent {id}")))?;
    intents.put(&id.to_be_bytes(), &intent)?;
    apply_in_order(writes)?;
    intents.remove(&id.to_be_bytes())
}

/// Applies `writes` one after the other, without an intent.
pub(crate) fn apply_in_order(writes: &[(IntentWrite<'_>, &dyn Tree)]) -> Result<()> {
    for ((_, key, value), tree) in writes {
        match value {
            Some(value) => tree.put(key, value)?,
            None => tree.remove(key)?,
        }
    }
    Ok(())
}

/// Completes every transaction whose intent survived a crash. Returns how many there were.
pub(crate) fn replay(backend: &dyn Backend, intents: &dyn Tree) -> Result<usize> {
    let mut replayed = 0;
    for entry in intents.scan(b"") {
        let (id, bytes) = entry?;
        let writes: Vec<OwnedWrite> = codec::decode_tagged(INTENT, &bytes)
            .map_err(|e| Error::decode(e, format!("transaction intent {id:?}")))?;
        for (tree, key, value) in writes {
            redo(backend, &tree, &key, value.as_deref())?;
        }
        intents.remove(&id)?;
        replayed += 1;
    }
    Ok(replayed)
}

/// Makes one write of a commit again after a crash: `value` at `key` in the tree named
/// `tree`, or its removal for `None`. Used by intents and by the change feed's redo entries.
pub(crate) fn redo(
    backend: &dyn Backend,
    tree: &str,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    let tree = backend.tree(tree)?;
    match value {
        Some(value) => tree.put(key, value),
        None => tree.remove(key),
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::SledBackend;
    use crate::engine::local::intent::*;

    #[test]
    fn an_intent_left_by_a_crash_is_completed_and_removed() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let backend = SledBackend::open(dir.path(), 1 << 20, 0)?;
        let intents = backend.tree("intents")?;
        let a = backend.tree("a")?;
        let b = backend.tree("b")?;
        b.put(b"gone", b"old")?;
        // What a crash right after step 1 leaves: the intent, none of its writes.
        let writes: Vec<IntentWrite<'_>> = vec![
            ("a", b"k1", Some(b"v1")),
            ("b", b"k2", Some(b"v2")),
            ("b", b"gone", None),
        ];
        let listed: Vec<&IntentWrite<'_>> = writes.iter().collect();
        intents.put(
            &7_u64.to_be_bytes(),
            &codec::encode_tagged(INTENT, &listed).expect("encodes"),
        )?;

        assert_eq!(replay(&backend, intents.as_ref())?, 1);
        assert_eq!(a.get(b"k1")?.as_deref(), Some(&b"v1"[..]));
        assert_eq!(b.get(b"k2")?.as_deref(), Some(&b"v2"[..]));
        assert_eq!(b.get(b"gone")?, None);
        assert!(intents.scan(b"").next().is_none());
        // Replaying again finds nothing to do.
        assert_eq!(replay(&backend, intents.as_ref())?, 0);
        Ok(())
    }

    #[test]
    fn an_intent_from_a_newer_revkv_stops_the_open() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let backend = SledBackend::open(dir.path(), 1 << 20, 0)?;
        let intents = backend.tree("intents")?;
        intents.put(&1_u64.to_be_bytes(), b"I\x09future")?;
        assert!(matches!(
            replay(&backend, intents.as_ref()),
            Err(Error::UnsupportedFormat { found: 9, .. })
        ));
        Ok(())
    }
}
