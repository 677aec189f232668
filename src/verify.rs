//! Consistency reports: do the unique indexes match the records exactly?

use std::fmt;

/// The result of [`Store::verify`](crate::Store::verify).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Records checked, over every collection.
    pub records: u64,
    /// Unique-index entries checked.
    pub index_entries: u64,
    /// Every difference found; empty when the store is consistent.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether no problem was found.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records and {} index entries checked, {} problems",
            self.records,
            self.index_entries,
            self.problems.len()
        )?;
        for problem in &self.problems {
            write!(f, "\n- {problem}")?;
        }
        Ok(())
    }
}

/// One difference between what is stored and what the declarations require.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A record's unique value has no index entry pointing at it (or the entry points at
    /// another record: two records share the value).
    MissingEntry {
        /// Collection of the record.
        collection: String,
        /// Unique index.
        index: String,
        /// The record's value for the index.
        value: String,
        /// Key of the record.
        key: String,
    },
    /// An index entry whose record does not exist or no longer has the value.
    StaleEntry {
        /// Collection of the index.
        collection: String,
        /// Unique index.
        index: String,
        /// The indexed value.
        value: String,
        /// The key the entry points at.
        holder: String,
    },
    /// A record in a state its state machine cannot reach from its initial states.
    UnreachableState {
        /// Collection of the record.
        collection: String,
        /// Key of the record.
        key: String,
        /// The record's state.
        state: String,
    },
    /// A record with other than one entry in an index of its collection: found by the check
    /// of a collection that is not open, which cannot derive the record's value.
    EntryCount {
        /// Collection of the record.
        collection: String,
        /// The index.
        index: String,
        /// Key of the record.
        key: String,
        /// Entries naming the record.
        entries: u64,
    },
    /// Stored bytes that do not decode.
    Undecodable {
        /// Where they are.
        location: String,
        /// Why they do not decode.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingEntry {
                collection,
                index,
                value,
                key,
            } => write!(
                f,
                "{collection}/{key} has {index} {value:?} but the index does not point at it"
            ),
            Self::StaleEntry {
                collection,
                index,
                value,
                holder,
            } => write!(
                f,
                "index {collection}.{index} maps {value:?} to {holder:?}, which does not hold it"
            ),
            Self::UnreachableState {
                collection,
                key,
                state,
            } => write!(
                f,
                "{collection}/{key} is in state {state:?}, which its state machine cannot reach"
            ),
            Self::EntryCount {
                collection,
                index,
                key,
                entries,
            } => write!(
                f,
                "{collection}/{key} has {entries} entries in index {index}, where it should have one"
            ),
            Self::Undecodable { location, reason } => write!(f, "{location}: {reason}"),
        }
    }
}
