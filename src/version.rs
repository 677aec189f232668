//! Record versions and versioned values.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The version of a record: an opaque, strictly growing number.
///
/// Versions come from one store-wide sequence whose high-water mark is made durable before any
/// number under it is handed out, so for a given key a version only ever grows: across updates,
/// delete and re-create, restarts and crashes. A version once issued is never issued again, so a
/// client holding an old version can never overwrite a newer record by luck (no ABA).
///
/// Versions are not contiguous: numbers consumed by other keys, aborted transactions and
/// restarts are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Version(u64);

impl Version {
    /// Wraps a raw version number, for example one parsed from an ETag or a request body.
    #[must_use]
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Version {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A value together with the version and modification time it was stored with.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Versioned<T> {
    /// The version this value was written at.
    pub version: Version,
    /// The value itself.
    pub value: T,
    /// When this version was written (the store's clock, microsecond precision).
    pub modified: SystemTime,
    /// When the record expires, if it was written with a time to live.
    pub expires: Option<SystemTime>,
}

impl<T> Versioned<T> {
    pub(crate) fn new(
        version: Version,
        value: T,
        modified: SystemTime,
        expires: Option<SystemTime>,
    ) -> Self {
        Self {
            version,
            value,
            modified,
            expires,
        }
    }
}
