//! Conflicts: the expected, retryable outcomes of concurrent writes and business rules.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::{Error, Version, Versioned};

/// A write was refused because the world was not as the caller assumed.
///
/// A conflict is data for the caller, not a failure of the store: each variant carries what a
/// client needs to resolve it (the current version and, where the caller may see it, the current
/// record as it was when the conflict was found, captured under the same lock as the failed
/// check). Storage and input errors are other variants of [`Error`], never conflicts.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Conflict {
    /// The record is not at the version the caller expected.
    VersionMismatch {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// The version the caller expected.
        expected: Version,
        /// The version the record is at now; `None` when it no longer exists.
        current: Option<Version>,
        /// The record as it is now, when it exists.
        record: Option<Snapshot>,
    },
    /// A create-only write found the key already taken.
    AlreadyExists {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// The version of the existing record.
        current: Version,
        /// The existing record.
        record: Snapshot,
    },
    /// A unique index already holds the value for another record.
    Unique {
        /// Collection being written.
        collection: String,
        /// Key of the record being written.
        key: String,
        /// Name of the unique index.
        index: String,
        /// The value that is taken.
        value: String,
        /// Key of the record that holds the value. Services should not show it to clients
        /// that may not see that record.
        holder: String,
    },
    /// An update would move the record along a transition its state machine does not allow.
    Transition {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// The record's current state.
        from: String,
        /// The state the update asked for.
        to: String,
        /// The states reachable from `from`, sorted.
        allowed: Vec<String>,
        /// The record's current version.
        current: Version,
        /// The record as it is now.
        record: Snapshot,
    },
    /// An insert would create a record in a state its state machine does not start in.
    InitialState {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// The state the insert asked for.
        state: String,
        /// The states records may be created in, sorted.
        allowed: Vec<String>,
    },
    /// A three-way merge needs the version the caller started from, but the collection's
    /// history no longer holds it: re-read the record and apply the change to it.
    BaseNotRetained {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// The version the caller's change was based on.
        base: Version,
        /// The version the record is at now.
        current: Option<Version>,
    },
    /// A business rule raised by the caller, for example inside a transaction.
    Rule {
        /// A stable, machine-readable code such as `out_of_stock`.
        code: String,
        /// A human-readable explanation.
        detail: String,
        /// Collection the rule is about, if any.
        collection: Option<String>,
        /// Key the rule is about, if any.
        key: Option<String>,
    },
}

/// The broad kind of a [`Conflict`], stable for logs, metrics and HTTP problem types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConflictKind {
    /// [`Conflict::VersionMismatch`].
    Version,
    /// [`Conflict::AlreadyExists`].
    Exists,
    /// [`Conflict::Unique`].
    Unique,
    /// [`Conflict::Transition`] and [`Conflict::InitialState`].
    Transition,
    /// [`Conflict::Rule`].
    Rule,
}

impl ConflictKind {
    /// The kind as a short lowercase word: `version`, `exists`, `unique`, `transition`, `rule`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::Exists => "exists",
            Self::Unique => "unique",
            Self::Transition => "transition",
            Self::Rule => "rule",
        }
    }
}

impl fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Conflict {
    /// A business-rule conflict with a stable `code` and a human-readable `detail`.
    ///
    /// ```
    /// let conflict = revkv::Conflict::rule("out_of_stock", "sku-1 has no stock left");
    /// assert_eq!(conflict.to_string(), "out_of_stock: sku-1 has no stock left");
    /// ```
    #[must_use]
    pub fn rule(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Rule {
            code: code.into(),
            detail: detail.into(),
            collection: None,
            key: None,
        }
    }

    /// Names the record a [`Conflict::Rule`] is about; other variants already name theirs and
    /// are returned unchanged.
    #[must_use]
    pub fn at(self, on_collection: impl Into<String>, on_key: impl Into<String>) -> Self {
        match self {
            Self::Rule { code, detail, .. } => Self::Rule {
                code,
                detail,
                collection: Some(on_collection.into()),
                key: Some(on_key.into()),
            },
            other => other,
        }
    }

    /// The broad kind of this conflict.
    #[must_use]
    pub const fn kind(&self) -> ConflictKind {
        match self {
            Self::VersionMismatch { .. } | Self::BaseNotRetained { .. } => ConflictKind::Version,
            Self::AlreadyExists { .. } => ConflictKind::Exists,
            Self::Unique { .. } => ConflictKind::Unique,
            Self::Transition { .. } | Self::InitialState { .. } => ConflictKind::Transition,
            Self::Rule { .. } => ConflictKind::Rule,
        }
    }

    /// The collection the conflict is about (always set, except for a rule raised without one).
    #[must_use]
    pub fn collection(&self) -> Option<&str> {
        match self {
            Self::VersionMismatch { collection, .. }
            | Self::BaseNotRetained { collection, .. }
            | Self::AlreadyExists { collection, .. }
            | Self::Unique { collection, .. }
            | Self::Transition { collection, .. }
            | Self::InitialState { collection, .. } => Some(collection),
            Self::Rule { collection, .. } => collection.as_deref(),
        }
    }

    /// The key the conflict is about (always set, except for a rule raised without one).
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::VersionMismatch { key, .. }
            | Self::BaseNotRetained { key, .. }
            | Self::AlreadyExists { key, .. }
            | Self::Unique { key, .. }
            | Self::Transition { key, .. }
            | Self::InitialState { key, .. } => Some(key),
            Self::Rule { key, .. } => key.as_deref(),
        }
    }

    /// The current version of the record the conflict is about, when it exists and is known.
    #[must_use]
    pub fn current_version(&self) -> Option<Version> {
        match self {
            Self::VersionMismatch { current, .. } | Self::BaseNotRetained { current, .. } => {
                *current
            }
            Self::AlreadyExists { current, .. } | Self::Transition { current, .. } => {
                Some(*current)
            }
            _ => None,
        }
    }

    /// The record as it was when the conflict was found, decoded as `T`, so a client can merge
    /// without a second, racy read. `Ok(None)` when the record does not exist or the conflict
    /// does not carry it (unique and rule conflicts).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the captured bytes do not decode as `T`.
    pub fn current_record<T: DeserializeOwned>(&self) -> Result<Option<Versioned<T>>, Error> {
        let snapshot = match self {
            Self::VersionMismatch { record, .. } => record.as_ref(),
            Self::AlreadyExists { record, .. } | Self::Transition { record, .. } => Some(record),
            _ => None,
        };
        snapshot
            .map(|s| s.decode(self.collection().unwrap_or(""), self.key().unwrap_or("")))
            .transpose()
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionMismatch {
                collection,
                key,
                expected,
                current: Some(current),
                ..
            } => write!(
                f,
                "{collection}/{key} was changed by someone else: you expected version {expected} \
                 but it is at version {current}; re-read it, re-apply your change and retry"
            ),
            Self::VersionMismatch {
                collection,
                key,
                expected,
                current: None,
                ..
            } => write!(
                f,
                "{collection}/{key} no longer exists (you expected version {expected}); \
                 re-create it or drop your change"
            ),
            Self::AlreadyExists {
                collection,
                key,
                current,
                ..
            } => write!(
                f,
                "{collection}/{key} already exists at version {current}; read it and update it \
                 with that version instead of creating it"
            ),
            Self::Unique {
                collection,
                key,
                index,
                value,
                ..
            } => write!(
                f,
                "{collection}/{key} cannot take {index} {value:?}: another record already holds \
                 it; choose a different {index}"
            ),
            Self::Transition {
                collection,
                key,
                from,
                to,
                allowed,
                ..
            } => write!(
                f,
                "{collection}/{key} cannot move from state {from:?} to {to:?}; from {from:?} it \
                 may move to {}",
                list_or_none(allowed)
            ),
            Self::InitialState {
                collection,
                key,
                state,
                allowed,
            } => write!(
                f,
                "{collection}/{key} cannot be created in state {state:?}; records of \
                 {collection} start in {}",
                list_or_none(allowed)
            ),
            Self::BaseNotRetained {
                collection,
                key,
                base,
                ..
            } => write!(
                f,
                "{collection}/{key} has moved on from version {base}, which its history no longer \
                 holds, so the change cannot be merged; re-read the record and apply it again"
            ),
            Self::Rule { code, detail, .. } => write!(f, "{code}: {detail}"),
        }
    }
}

impl std::error::Error for Conflict {}

fn list_or_none(states: &[String]) -> String {
    if states.is_empty() {
        "no other state".to_owned()
    } else {
        states
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A record as it was when a conflict was found, kept encoded until the caller asks for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    version: Version,
    modified: SystemTime,
    expires: Option<SystemTime>,
    payload: Arc<[u8]>,
}

impl Snapshot {
    pub(crate) fn new(
        version: Version,
        modified: SystemTime,
        expires: Option<SystemTime>,
        payload: &[u8],
    ) -> Self {
        Self {
            version,
            modified,
            expires,
            payload: payload.into(),
        }
    }

    /// The snapshot a conflict would carry for a record holding `value` at `version`, last
    /// modified at `modified`: for tests of code that handles conflicts, such as an HTTP
    /// handler's mapping of them.
    ///
    /// # Errors
    /// [`Error::Encode`] if the value does not serialize.
    pub fn of<T: Serialize>(
        version: Version,
        modified: SystemTime,
        value: &T,
    ) -> Result<Self, Error> {
        let encoded = codec::EncodedRecord::new(value, false)
            .map_err(|e| Error::encode(e, "a snapshot's record".to_owned()))?;
        Ok(Self::new(version, modified, None, encoded.payload()))
    }

    /// The record's version.
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// When the record was last modified.
    #[must_use]
    pub fn modified(&self) -> SystemTime {
        self.modified
    }

    fn decode<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Versioned<T>, Error> {
        let value = codec::decode_payload(&self.payload)
            .map_err(|e| Error::decode(e, format!("{collection}/{key}")))?;
        Ok(Versioned::new(
            self.version,
            value,
            self.modified,
            self.expires,
        ))
    }
}

impl fmt::Debug for Snapshot {
    // Values are the caller's data: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot::new(Version::new(9), SystemTime::UNIX_EPOCH, None, b"")
    }

    /// Each variant's message names what conflicted and says what to do next.
    #[test]
    fn every_variant_explains_itself() {
        let s = |c: Conflict| c.to_string();
        let coll = || "orders".to_owned();
        let key = || "o1".to_owned();
        let cases = [
            (
                s(Conflict::VersionMismatch {
                    collection: coll(),
                    key: key(),
                    expected: Version::new(3),
                    current: Some(Version::new(9)),
                    record: Some(snapshot()),
                }),
                &["orders/o1", "version 3", "version 9", "re-read"][..],
            ),
            (
                s(Conflict::VersionMismatch {
                    collection: coll(),
                    key: key(),
                    expected: Version::new(3),
                    current: None,
                    record: None,
                }),
                &["orders/o1", "no longer exists", "re-create"],
            ),
            (
                s(Conflict::AlreadyExists {
                    collection: coll(),
                    key: key(),
                    current: Version::new(9),
                    record: snapshot(),
                }),
                &["orders/o1", "already exists", "update it"],
            ),
            (
                s(Conflict::Unique {
                    collection: "users".into(),
                    key: "u2".into(),
                    index: "email".into(),
                    value: "a@x".into(),
                    holder: "u1".into(),
                }),
                &["users/u2", "email", "\"a@x\"", "choose a different email"],
            ),
            (
                s(Conflict::Transition {
                    collection: coll(),
                    key: key(),
                    from: "pending".into(),
                    to: "shipped".into(),
                    allowed: vec!["cancelled".into(), "paid".into()],
                    current: Version::new(9),
                    record: snapshot(),
                }),
                &[
                    "orders/o1",
                    "\"pending\"",
                    "\"shipped\"",
                    "\"cancelled\", \"paid\"",
                ],
            ),
            (
                s(Conflict::InitialState {
                    collection: coll(),
                    key: key(),
                    state: "paid".into(),
                    allowed: vec!["pending".into()],
                }),
                &["orders/o1", "\"paid\"", "start in \"pending\""],
            ),
            (
                s(Conflict::rule("out_of_stock", "sku-1 has no stock left")),
                &["out_of_stock", "sku-1 has no stock left"],
            ),
        ];
        for (message, parts) in cases {
            for part in parts {
                assert!(message.contains(part), "{message:?} lacks {part:?}");
            }
        }
    }

    #[test]
    fn rules_can_name_their_record_and_other_variants_ignore_it() {
        let rule = Conflict::rule("out_of_stock", "none left").at("items", "sku-1");
        assert_eq!(
            (rule.collection(), rule.key()),
            (Some("items"), Some("sku-1"))
        );
        assert_eq!(rule.kind(), ConflictKind::Rule);
        assert_eq!(Conflict::rule("c", "d").collection(), None);
    }
}
