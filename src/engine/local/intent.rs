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
use crate::engine::commit::{LoggedWrite, Write};
use crate::{Error, Result};

/// Applies `writes` in order behind an intent `id`, as described in the module docs.
pub(crate) fn apply_atomically(intents: &dyn Tree, id: u64, writes: &[Write<'_>]) -> Result<()> {
    let listed: Vec<LoggedWrite> = writes.iter().map(LoggedWrite::of).collect();
    let intent = codec::encode_tagged(INTENT, &listed)
        .map_err(|e| Error::encode(e, format!("transaction intent {id}")))?;
    intents.put(&id.to_be_bytes(), &intent)?;
    apply_in_order(writes)?;
    intents.remove(&id.to_be_bytes())
}

/// Applies `writes` one after the other, without an intent.
pub(crate) fn apply_in_order(writes: &[Write<'_>]) -> Result<()> {
    for write in writes {
        let tree = &write.keyspace.tree;
        match write.value {
            Some(value) => tree.put(write.key, value)?,
            None => tree.remove(write.key)?,
        }
    }
    Ok(())
}

/// Completes every transaction whose intent survived a crash. Returns how many there were.
pub(crate) fn replay(backend: &dyn Backend, intents: &dyn Tree) -> Result<usize> {
    let mut replayed = 0;
    for entry in intents.scan(b"") {
        let (id, bytes) = entry?;
        let writes: Vec<LoggedWrite> = codec::decode_tagged(INTENT, &bytes)
            .map_err(|e| Error::decode(e, format!("transaction intent {id:?}")))?;
        for write in &writes {
            write.redo(backend)?;
        }
        intents.remove(&id)?;
        replayed += 1;
    }
    Ok(replayed)
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
        let write = |tree: &str, key: &[u8], value: Option<&[u8]>| LoggedWrite {
            tree: tree.into(),
            key: key.into(),
            value: value.map(Into::into),
        };
        let writes = vec![
            write("a", b"k1", Some(b"v1")),
            write("b", b"k2", Some(b"v2")),
            write("b", b"gone", None),
        ];
        intents.put(
            &7_u64.to_be_bytes(),
            &codec::encode_tagged(INTENT, &writes).expect("encodes"),
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
