//! The bytes revkv puts on disk. Every stored value starts with a two-byte tag, its kind and its
//! format number, so that a layout written by a future revkv (or bytes that are not revkv's at
//! all) is detected instead of misread.
//!
//! | kind   | layout after the tag                                                       |
//! |--------|-----------------------------------------------------------------------------|
//! | record | version (u64 BE), modified (µs since the Unix epoch, u64 BE), bincode value |
//! | claim  | the key of the record that holds the unique value (UTF-8)                  |
//! | intent | bincode list of the writes of one transaction                              |
//! | meta   | bincode value (store bookkeeping)                                          |
//!
//! Decoding never trusts a length prefix: bincode 1's slice reader checks it against the bytes
//! that are left before it allocates.

use std::time::{Duration, SystemTime};

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Version;

/// A stored value's kind and the newest format of it this build reads and writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tag {
    kind: u8,
    format: u8,
    name: &'static str,
}

pub(crate) const RECORD: Tag = Tag {
    kind: b'R',
    format: 1,
    name: "record",
};
pub(crate) const CLAIM: Tag = Tag {
    kind: b'C',
    format: 1,
    name: "unique-index entry",
};
pub(crate) const INTENT: Tag = Tag {
    kind: b'I',
    format: 1,
    name: "transaction intent",
};
pub(crate) const META: Tag = Tag {
    kind: b'M',
    format: 1,
    name: "store metadata",
};

const TAG_LEN: usize = 2;
const RECORD_HEADER_LEN: usize = TAG_LEN + 8 + 8;

/// Why stored bytes could not be read; the caller adds where they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A known kind in a format newer than this build understands.
    FutureFormat {
        what: &'static str,
        found: u8,
        supported: u8,
    },
    /// Anything else: truncated, wrong kind, undecodable payload.
    Corrupt(String),
}

impl Tag {
    fn write(self, out: &mut Vec<u8>) {
        out.push(self.kind);
        out.push(self.format);
    }

    /// Checks the tag and returns the bytes after it.
    fn strip(self, bytes: &[u8]) -> Result<&[u8], DecodeError> {
        match bytes {
            [kind, format, rest @ ..] if *kind == self.kind => match format.cmp(&self.format) {
                std::cmp::Ordering::Equal => Ok(rest),
                std::cmp::Ordering::Greater => Err(DecodeError::FutureFormat {
                    what: self.name,
                    found: *format,
                    supported: self.format,
                }),
                std::cmp::Ordering::Less => Err(DecodeError::Corrupt(format!(
                    "{} format {format} was never written by revkv",
                    self.name
                ))),
            },
            [kind, _, ..] => Err(DecodeError::Corrupt(format!(
                "expected a {} but found kind byte {kind:#04x}",
                self.name
            ))),
            _ => Err(DecodeError::Corrupt(format!(
                "{} is truncated ({} bytes)",
                self.name,
                bytes.len()
            ))),
        }
    }
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// Serializes `value` after `tag`.
pub(crate) fn encode_tagged<T: Serialize + ?Sized>(
    tag: Tag,
    value: &T,
) -> Result<Vec<u8>, bincode::Error> {
    let mut out = Vec::new();
    tag.write(&mut out);
    options().serialize_into(&mut out, value)?;
    Ok(out)
}

/// Reads a value written by [`encode_tagged`] with the same tag.
pub(crate) fn decode_tagged<T: DeserializeOwned>(tag: Tag, bytes: &[u8]) -> Result<T, DecodeError> {
    decode_payload(tag.strip(bytes)?)
}

/// Decodes the bincode body of a record or tagged value.
pub(crate) fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    options()
        .deserialize(payload)
        .map_err(|e| DecodeError::Corrupt(format!("value does not decode: {e}")))
}

/// A record encoded before its version is known: the header is filled in by [`Self::stamp`]
/// at commit time, so the value is serialized once and outside any lock.
#[derive(Clone, Debug)]
pub(crate) struct EncodedRecord(Vec<u8>);

impl EncodedRecord {
    pub(crate) fn new<T: Serialize>(value: &T) -> Result<Self, bincode::Error> {
        // Sized up front: growing the buffer while serializing costs more than the sizing pass.
        let size = usize::try_from(options().serialized_size(value)?).unwrap_or(usize::MAX);
        let mut bytes = Vec::with_capacity(RECORD_HEADER_LEN.saturating_add(size));
        RECORD.write(&mut bytes);
        bytes.resize(RECORD_HEADER_LEN, 0);
        options().serialize_into(&mut bytes, value)?;
        Ok(Self(bytes))
    }

    /// Length of the serialized value without the header.
    pub(crate) fn payload_len(&self) -> usize {
        self.0.len() - RECORD_HEADER_LEN
    }

    pub(crate) fn stamp(&mut self, version: Version, modified: SystemTime) {
        self.0[TAG_LEN..TAG_LEN + 8].copy_from_slice(&version.get().to_be_bytes());
        self.0[TAG_LEN + 8..RECORD_HEADER_LEN].copy_from_slice(&micros(modified).to_be_bytes());
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The fixed part of a stored record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) version: Version,
    pub(crate) modified: SystemTime,
}

/// Splits stored record bytes into header and bincode payload.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<(RecordHeader, &[u8]), DecodeError> {
    let rest = RECORD.strip(bytes)?;
    let (Some(version), Some(modified)) = (rest.get(..8), rest.get(8..16)) else {
        return Err(DecodeError::Corrupt(format!(
            "record header is truncated ({} bytes)",
            bytes.len()
        )));
    };
    let version = Version::new(u64::from_be_bytes(version.try_into().unwrap_or_default()));
    let modified = u64::from_be_bytes(modified.try_into().unwrap_or_default());
    let header = RecordHeader {
        version,
        modified: SystemTime::UNIX_EPOCH + Duration::from_micros(modified),
    };
    Ok((header, &rest[16..]))
}

/// The bincode payload of record bytes that [`decode_record`] accepted.
pub(crate) fn record_payload(bytes: &[u8]) -> &[u8] {
    bytes.get(RECORD_HEADER_LEN..).unwrap_or_default()
}

/// A unique-index entry: which record holds the value.
pub(crate) fn encode_claim(holder: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(TAG_LEN + holder.len());
    CLAIM.write(&mut out);
    out.extend_from_slice(holder.as_bytes());
    out
}

pub(crate) fn decode_claim(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(CLAIM.strip(bytes)?)
        .map_err(|_| DecodeError::Corrupt("unique-index entry names a non-UTF-8 key".into()))
}

/// `time` at the precision records keep, so what a write returns equals what a read returns.
pub(crate) fn stored_precision(time: SystemTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros(time))
}

/// Microseconds since the Unix epoch, saturating at both ends.
pub(crate) fn micros(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_keeps_header_and_value() {
        let mut record = EncodedRecord::new(&("title", 7_u32)).expect("encodes");
        let when = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        record.stamp(Version::new(42), when);
        let (header, payload) = decode_record(record.bytes()).expect("decodes");
        assert_eq!(header.version, Version::new(42));
        assert_eq!(header.modified, when);
        assert_eq!(
            decode_payload::<(String, u32)>(payload),
            Ok(("title".into(), 7))
        );
    }

    #[test]
    fn future_format_is_told_apart_from_garbage() {
        let mut record = EncodedRecord::new(&1_u8).expect("encodes").0;
        record[1] = 9;
        assert!(matches!(
            decode_record(&record),
            Err(DecodeError::FutureFormat {
                found: 9,
                supported: 1,
                ..
            })
        ));
        assert!(matches!(
            decode_record(b"X1garbage"),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(decode_record(b"R"), Err(DecodeError::Corrupt(_))));
        assert!(matches!(
            decode_record(b"R\x01short"),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A string claiming u64::MAX / 2 bytes, followed by nothing.
        let mut bytes = vec![0xfd];
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(matches!(
            decode_payload::<String>(&bytes),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_corruption() {
        let mut bytes = options().serialize(&5_u32).expect("encodes");
        bytes.push(0);
        assert!(decode_payload::<u32>(&bytes).is_err());
    }
}
