//! Names a store is given: of collections, indexes and etcd namespaces.

use crate::{Error, Result};

/// 1 to 64 ASCII letters, digits, `_`, `-` or `.`: printable, and free of the separators
/// revkv puts between names in its keys.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "names must not be empty"
    } else if name.len() > 64 {
        "names are at most 64 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        "names may contain only ASCII letters, digits, '_', '-' and '.'"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}
