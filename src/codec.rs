//! The bytes revkv puts on disk. Every stored value starts with a two-byte tag, its kind and its
//! format number, so that a layout written by a future revkv (or bytes that are not revkv's at
//! all) is detected instead of misread.
//!
//! | kind   | layout after the tag                                                       |
//! |--------|-----------------------------------------------------------------------------|
//! | record | version (u64 BE), modified (µs since the Unix epoch, u64 BE), bincode value |
//! | record, format 2 | as format 1, with the expiry time (µs, u64 BE) after `modified` |
//! | claim  | the key of the record that holds the unique value (UTF-8)                  |
//! | intent | bincode list of the writes of one transaction                              |
//! | feed   | bincode entry: one commit's single-key writes and the changes among them  |
//! | meta   | bincode value (store bookkeeping)                                          |
//! | journal | bincode list of the writes of one logical write (a frame's payload)       |
//!
//! Decoding never trusts a length prefix: bincode 1's slice reader checks it against the bytes
//! that are left before it allocates.

use std::borrow::Cow;
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

/// Records are written in format 1, or in format 2 when they carry an expiry time; both are read.
pub(crate) const RECORD: Tag = Tag {
    kind: b'R',
    format: 2,
    name: "record",
};
const RECORD_WITHOUT_EXPIRY: u8 = 1;
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
pub(crate) const FEED: Tag = Tag {
    kind: b'F',
    format: 1,
    name: "change feed entry",
};
pub(crate) const JOURNAL: Tag = Tag {
    kind: b'J',
    format: 1,
    name: "journal frame",
};
pub(crate) const META: Tag = Tag {
    kind: b'M',
    format: 1,
    name: "store metadata",
};

const TAG_LEN: usize = 2;
const RECORD_HEADER_LEN: usize = TAG_LEN + 8 + 8;
const EXPIRING_RECORD_HEADER_LEN: usize = RECORD_HEADER_LEN + 8;

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
pub(crate) struct EncodedRecord {
    bytes: Vec<u8>,
    header_len: usize,
}

impl EncodedRecord {
    /// Encodes `value`, with room for an expiry time if `expiring`.
    pub(crate) fn new<T: Serialize>(value: &T, expiring: bool) -> Result<Self, bincode::Error> {
        // Sized up front: growing the buffer while serializing costs more than the sizing pass.
        let size = usize::try_from(options().serialized_size(value)?).unwrap_or(usize::MAX);
        let mut record = Self::header(expiring, size);
        options().serialize_into(&mut record.bytes, value)?;
        Ok(record)
    }

    /// A record of `payload`, a value serialized already (an imported one), with room for
    /// an expiry time if `expiring`.
    pub(crate) fn from_payload(payload: &[u8], expiring: bool) -> Self {
        let mut record = Self::header(expiring, payload.len());
        record.bytes.extend_from_slice(payload);
        record
    }

    /// A header not stamped yet, with room for a payload of `size` bytes after it.
    fn header(expiring: bool, size: usize) -> Self {
        let (format, header_len) = if expiring {
            (RECORD.format, EXPIRING_RECORD_HEADER_LEN)
        } else {
            (RECORD_WITHOUT_EXPIRY, RECORD_HEADER_LEN)
        };
        let mut bytes = Vec::with_capacity(header_len.saturating_add(size));
        bytes.extend_from_slice(&[RECORD.kind, format]);
        bytes.resize(header_len, 0);
        Self { bytes, header_len }
    }

    /// The serialized value without the header.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// Length of the serialized value without the header.
    pub(crate) fn payload_len(&self) -> usize {
        self.bytes.len() - self.header_len
    }

    /// Fills in the header. `expires` is ignored unless the record was encoded as expiring.
    pub(crate) fn stamp(
        &mut self,
        version: Version,
        modified: SystemTime,
        expires: Option<SystemTime>,
    ) {
        let header = &mut self.bytes[TAG_LEN..self.header_len];
        header[..8].copy_from_slice(&version.get().to_be_bytes());
        header[8..16].copy_from_slice(&micros(modified).to_be_bytes());
        if let (Some(expires), Some(slot)) = (expires, header.get_mut(16..24)) {
            slot.copy_from_slice(&micros(expires).to_be_bytes());
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The fixed part of a stored record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) version: Version,
    pub(crate) modified: SystemTime,
    /// When the record stops existing, if it was written with a time to live.
    pub(crate) expires: Option<SystemTime>,
    /// Where the bincode payload starts.
    pub(crate) len: usize,
}

impl RecordHeader {
    /// Whether the record has expired at `now`.
    pub(crate) fn expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| expires <= now)
    }
}

/// Splits stored record bytes into header and bincode payload.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<(RecordHeader, &[u8]), DecodeError> {
    let len = match bytes {
        [kind, RECORD_WITHOUT_EXPIRY, ..] if *kind == RECORD.kind => RECORD_HEADER_LEN,
        [kind, format, ..] if *kind == RECORD.kind && *format == RECORD.format => {
            EXPIRING_RECORD_HEADER_LEN
        }
        // A future format, another kind, or garbage: the tag check says which.
        _ => {
            return Err(RECORD
                .strip(bytes)
                .err()
                .unwrap_or_else(|| DecodeError::Corrupt("unreadable record header".into())));
        }
    };
    let Some(header) = bytes.get(TAG_LEN..len) else {
        return Err(DecodeError::Corrupt(format!(
            "record header is truncated ({} bytes)",
            bytes.len()
        )));
    };
    let field = |at: usize| u64::from_be_bytes(header[at..at + 8].try_into().unwrap_or_default());
    // Checked: on platforms with a narrower time type a hostile timestamp could overflow.
    let time = |at: usize| {
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_micros(field(at)))
            .ok_or_else(|| DecodeError::Corrupt("a record time is out of range".into()))
    };
    let header = RecordHeader {
        version: Version::new(field(0)),
        modified: time(8)?,
        expires: (len == EXPIRING_RECORD_HEADER_LEN)
            .then(|| time(16))
            .transpose()?,
        len,
    };
    Ok((header, &bytes[len..]))
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

/// The key of a non-unique index entry: the value with each zero byte escaped as `0x00 0xff`,
/// the terminator `0x00`, then the record's key. Entries sort by value, then by key (keys are
/// UTF-8, never empty, and so never start with `0xff`), and the entries of one value lie
/// between [`index_value_prefix`] and that prefix followed by `0xff`.
pub(crate) fn encode_index_entry(value: &str, key: &str) -> Vec<u8> {
    let mut out = index_value_prefix(value);
    out.extend_from_slice(key.as_bytes());
    out
}

/// What every entry of `value` starts with (as do the entries of longer values that escape a
/// zero byte right after it, which sort after `0xff`).
pub(crate) fn index_value_prefix(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    for &byte in value.as_bytes() {
        out.push(byte);
        if byte == 0 {
            out.push(0xff);
        }
    }
    out.push(0);
    out
}

/// The value and the key of a non-unique index entry (the value borrowed unless it escapes a
/// zero byte).
pub(crate) fn decode_index_entry(entry: &[u8]) -> Result<(Cow<'_, str>, &str), DecodeError> {
    let corrupt = |what: &str| DecodeError::Corrupt(format!("index entry {what}"));
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| corrupt("is not UTF-8"));
    // The terminator: the first zero byte that does not escape one.
    let mut end = 0;
    let mut escaped = false;
    loop {
        match (entry.get(end), entry.get(end + 1)) {
            (None, _) => return Err(corrupt("has no end of its value")),
            (Some(0), Some(0xff)) => {
                escaped = true;
                end += 2;
            }
            (Some(0), _) => break,
            (Some(_), _) => end += 1,
        }
    }
    let key = text(&entry[end + 1..])?;
    if key.is_empty() {
        return Err(corrupt("names no key"));
    }
    let value = &entry[..end];
    if !escaped {
        return Ok((Cow::Borrowed(text(value)?), key));
    }
    let mut unescaped = Vec::with_capacity(value.len());
    let mut bytes = value.iter();
    while let Some(&byte) = bytes.next() {
        unescaped.push(byte);
        if byte == 0 {
            bytes.next(); // the escape's 0xff
        }
    }
    let value = String::from_utf8(unescaped).map_err(|_| corrupt("is not UTF-8"))?;
    Ok((Cow::Owned(value), key))
}

/// `time` at the precision records keep, so what a write returns equals what a read returns.
pub(crate) fn stored_precision(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        // Whole microseconds, without the 128-bit division of `Duration::as_micros`.
        Ok(since) => {
            let micros = Duration::new(since.as_secs(), since.subsec_micros() * 1_000);
            SystemTime::UNIX_EPOCH + micros
        }
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

/// Microseconds since the Unix epoch, saturating at both ends.
pub(crate) fn micros(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_keeps_header_and_value() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let later = when + Duration::from_secs(60);
        for expires in [None, Some(later)] {
            let mut record =
                EncodedRecord::new(&("title", 7_u32), expires.is_some()).expect("encodes");
            record.stamp(Version::new(42), when, expires);
            let (header, payload) = decode_record(record.bytes()).expect("decodes");
            assert_eq!(
                (header.version, header.modified, header.expires),
                (Version::new(42), when, expires)
            );
            assert_eq!(
                decode_payload::<(String, u32)>(payload),
                Ok(("title".into(), 7))
            );
            assert_eq!(header.expired(later), expires.is_some());
            assert!(!header.expired(when));
        }
    }

    #[test]
    fn future_format_is_told_apart_from_garbage() {
        let mut record = EncodedRecord::new(&1_u8, false).expect("encodes").bytes;
        record[1] = 9;
        assert!(matches!(
            decode_record(&record),
            Err(DecodeError::FutureFormat {
                found: 9,
                supported: 2,
                ..
            })
        ));
        assert!(matches!(
            decode_record(b"X1garbage"),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(decode_record(b"R"), Err(DecodeError::Corrupt(_))));
        for truncated in [&b"R\x01short"[..], b"R\x02seventeen bytes.."] {
            assert!(matches!(
                decode_record(truncated),
                Err(DecodeError::Corrupt(_))
            ));
        }
        assert!(matches!(
            decode_record(b"R\x00"),
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

    /// A record's value, as a struct of four strings encodes.
    type Item = (String, String, String, String);

    /// What the engine stores in tagged values: an intent's or a frame's writes, the indexes
    /// a collection declares, a counter.
    type Writes = Vec<(String, Vec<u8>, Option<Vec<u8>>)>;

    /// A value decoded from `bytes` encodes to bytes that decode to the same value.
    fn tagged_round_trip<T>(tag: Tag, bytes: &[u8])
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(value) = decode_tagged::<T>(tag, bytes) {
            let again = encode_tagged(tag, &value).expect("a decoded value encodes");
            assert_eq!(decode_tagged::<T>(tag, &again), Ok(value));
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes (with a prefix that gets past the tag check) through every decoder
        /// of stored bytes: an error or a value, never a panic, and a value survives encoding
        /// again, its header read exactly.
        #[test]
        fn decoders_give_errors_or_values_that_round_trip(
            tag in proptest::sample::select(vec![b'R', b'C', b'I', b'F', b'J', b'M']),
            format in 0_u8..4,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
        ) {
            let bytes: Vec<u8> = [tag, format].into_iter().chain(rest).collect();
            if let Ok((header, payload)) = decode_record(&bytes) {
                let header_len = if bytes[1] == 1 { 18 } else { 26 };
                assert_eq!(
                    (header.len, header.expires.is_some()),
                    (header_len, header_len == 26)
                );
                assert_eq!(header.version.get().to_be_bytes(), bytes[2..10]);
                if let Ok(item) = decode_payload::<Item>(payload) {
                    let mut again = EncodedRecord::new(&item, header.expires.is_some())
                        .expect("a decoded item encodes");
                    again.stamp(header.version, header.modified, header.expires);
                    let (header_again, payload_again) =
                        decode_record(again.bytes()).expect("a re-encoded record decodes");
                    assert_eq!(header_again, header);
                    assert_eq!(decode_payload(payload_again), Ok(item));
                }
            }
            if let Ok(holder) = decode_claim(&bytes) {
                assert_eq!(encode_claim(holder), bytes, "a claim is not canonical");
            }
            tagged_round_trip::<Writes>(INTENT, &bytes);
            tagged_round_trip::<Writes>(JOURNAL, &bytes);
            tagged_round_trip::<Vec<String>>(META, &bytes);
            tagged_round_trip::<u64>(META, &bytes);
        }
    }

    proptest::proptest! {
        /// Index entries round-trip, sort by value then key, and a value's range holds its
        /// entries and no other value's, whatever zero bytes the values and keys hold.
        #[test]
        fn index_entries_sort_by_value_then_key(
            a in "[a\\x00b]{0,4}", b in "[a\\x00b]{0,4}",
            k in "[kz\\x00]{1,3}", l in "[kz\\x00]{1,3}",
        ) {
            let (ak, bl) = (encode_index_entry(&a, &k), encode_index_entry(&b, &l));
            assert_eq!(decode_index_entry(&ak), Ok((a.as_str().into(), k.as_str())));
            assert_eq!(ak.cmp(&bl), (&a, &k).cmp(&(&b, &l)));
            let of_b = index_value_prefix(&b);
            let within = ak >= of_b && ak < [&of_b[..], &[0xff]].concat();
            assert_eq!(within, a == b);
        }

        /// Arbitrary bytes decode to an entry that encodes to them again, or to an error.
        #[test]
        fn index_entries_decode_canonically_or_not_at_all(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
        ) {
            if let Ok((value, key)) = decode_index_entry(&bytes) {
                assert_eq!(encode_index_entry(&value, key), bytes);
            }
        }
    }

    #[test]
    fn trailing_bytes_are_corruption() {
        let mut bytes = options().serialize(&5_u32).expect("encodes");
        bytes.push(0);
        assert!(decode_payload::<u32>(&bytes).is_err());
    }
}
