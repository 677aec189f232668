//! The lines of an export (see the module docs of [`crate::admin`]).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{StoredRecord, Transferred};
use crate::codec::{RecordHeader, micros};
use crate::{Error, Version};

/// The number of the export format this build writes, and the newest it reads.
pub(crate) const EXPORT_FORMAT: u8 = 1;

/// One line of an export.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Line<'a> {
    Header(Header),
    #[serde(borrow)]
    Record(RecordLine<'a>),
    #[serde(borrow)]
    History(RecordLine<'a>),
    End(Counts),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) revkv_export: u8,
    pub(crate) versions_below: u64,
    pub(crate) collections: Vec<Declared>,
}

/// A collection and the names of its indexes.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct Declared {
    pub(crate) name: String,
    pub(crate) unique: Vec<String>,
    pub(crate) indexes: Vec<String>,
}

/// A record, or an earlier version of one: borrowed where an export writes it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordLine<'a> {
    #[serde(borrow)]
    collection: Cow<'a, str>,
    #[serde(borrow)]
    key: Cow<'a, str>,
    version: u64,
    modified_us: u64,
    expires_us: Option<u64>,
    /// The value as stored, in standard base64.
    #[serde(borrow)]
    value: Cow<'a, str>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counts {
    pub(crate) records: u64,
    pub(crate) history: u64,
}

impl From<&Transferred> for Counts {
    fn from(t: &Transferred) -> Self {
        Self {
            records: t.records,
            history: t.history,
        }
    }
}

impl<'a> From<&'a StoredRecord> for RecordLine<'a> {
    fn from(record: &'a StoredRecord) -> Self {
        Self {
            collection: Cow::Borrowed(&record.collection),
            key: Cow::Borrowed(&record.key),
            version: record.version.get(),
            modified_us: micros(record.modified),
            expires_us: record.expires.map(micros),
            value: Cow::Owned(STANDARD.encode(&record.value)),
        }
    }
}

impl<'a> RecordLine<'a> {
    /// The line of a record of `collection` stored at `key` with `header` and `payload`, its
    /// value encoded into `buffer` (which an export reuses from line to line).
    pub(crate) fn stored(
        collection: &'a str,
        key: &'a str,
        header: &RecordHeader,
        payload: &[u8],
        buffer: &'a mut String,
    ) -> Self {
        buffer.clear();
        STANDARD.encode_string(payload, buffer);
        Self {
            collection: Cow::Borrowed(collection),
            key: Cow::Borrowed(key),
            version: header.version.get(),
            modified_us: micros(header.modified),
            expires_us: header.expires.map(micros),
            value: Cow::Borrowed(buffer.as_str()),
        }
    }

    /// The record, or why the line does not hold one.
    pub(crate) fn into_record(self) -> Result<StoredRecord, String> {
        let time = |us: u64| {
            SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_micros(us))
                .ok_or_else(|| format!("the time {us} is out of range"))
        };
        if self.version == 0 {
            return Err("version 0 is never issued".into());
        }
        Ok(StoredRecord {
            value: STANDARD
                .decode(self.value.as_bytes())
                .map_err(|e| format!("the value is not base64: {e}"))?,
            modified: time(self.modified_us)?,
            expires: self.expires_us.map(time).transpose()?,
            version: Version::new(self.version),
            collection: self.collection.into_owned(),
            key: self.key.into_owned(),
        })
    }
}

/// An [`Error::InvalidExport`] at line `line`.
pub(crate) fn invalid(line: u64, reason: impl Into<String>) -> Error {
    Error::InvalidExport {
        line,
        reason: reason.into(),
    }
}
