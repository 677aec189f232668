//! Operating a store: export and import in an engine-neutral format, online backup, and a look
//! at what is stored without the service's types (the `revkv` command's library half).
//!
//! # The export format
//!
//! An export is text, one JSON object per line, each with one field that names its kind:
//!
//! ```text
//! {"header":{"revkv_export":1,"versions_below":1048577,"collections":[{"name":"users","unique":["email"],"indexes":["state"]}]}}
//! {"record":{"collection":"users","key":"ann","version":7,"modified_us":1765152000000000,"expires_us":null,"value":"A2FubgdwZW5kaW5n"}}
//! {"history":{"collection":"users","key":"ann","version":3,"modified_us":1765151000000000,"expires_us":null,"value":"A2FubgNuZXc="}}
//! {"end":{"records":1,"history":1}}
//! ```
//!
//! - `header` comes first. `revkv_export` is the format's number (a newer one is refused with
//!   [`Error::UnsupportedFormat`]); `versions_below` is above
//!   every version the exported store had issued, deleted records' included, so that an
//!   import never issues one of them again; `collections` lists each collection with the names
//!   of its unique and non-unique indexes.
//! - `record`: a record as stored: its version, modification and expiry times in microseconds
//!   since the Unix epoch, and its value as the collection stores it (the bincode encoding of
//!   the service's type), in standard base64. Expired records are not exported.
//! - `history`: an earlier version of a record, kept for [`Collection::get_at`] and merges.
//! - `end`: the counts of what came before it. An export without it was cut short, and an
//!   import refuses it.
//!
//! Index entries are not exported: they are derived from the records by the service's code,
//! and each collection builds its indexes from the imported records when the service first
//! opens it (where [`Store::verify`] then checks them).
//!
//! [`Collection::get_at`]: crate::Collection::get_at
//! [`Store::verify`]: crate::Store::verify

mod backup;
mod export;
mod format;
mod import;
mod inspect;

use std::time::SystemTime;

use self::format::Declared;
use crate::codec::decode_record;
use crate::meta::{Meta, pending_key};
use crate::{Error, Result, Version};

pub use self::inspect::{CollectionSummary, IndexSummary, Inspection};

/// The metadata key present while an import writes into a store: one that is there when
/// nothing is writing marks a store that an interrupted import left incomplete.
const TRANSFER: &str = "transfer";

/// A record as the store holds it, read without the collection's type: what an export line
/// carries, and what [`Store::stored`](crate::Store::stored) returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredRecord {
    /// The collection it belongs to.
    pub collection: String,
    /// Its key.
    pub key: String,
    /// Its version.
    pub version: Version,
    /// When it was written, to the microsecond.
    pub modified: SystemTime,
    /// When it expires, if it was written with a time to live.
    pub expires: Option<SystemTime>,
    /// Its value as stored: the bincode encoding of the collection's type.
    pub value: Vec<u8>,
}

/// What an export, import or backup carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transferred {
    /// Collections.
    pub collections: u64,
    /// Current records.
    pub records: u64,
    /// Earlier versions kept in collections' histories.
    pub history: u64,
}

/// The collections the store holds, with the names of the indexes they declare: built, or
/// imported and to be built at the collection's next open.
fn declared(meta: &Meta) -> Result<Vec<Declared>> {
    let mut collections = built(meta)?;
    for collection in &mut collections {
        if let Some(pending) = meta.get::<Declared>(&pending_key(&collection.name))? {
            *collection = pending;
        }
    }
    Ok(collections)
}

/// The collections the store holds, with the names of the indexes built for them.
fn built(meta: &Meta) -> Result<Vec<Declared>> {
    meta.names("collection/")?
        .into_iter()
        .map(|name| {
            let unique = meta.get(&format!("collection/{name}"))?.unwrap_or_default();
            let indexes = meta.get(&format!("lists/{name}"))?.unwrap_or_default();
            Ok(Declared {
                name,
                unique,
                indexes,
            })
        })
        .collect()
}

/// The record of `collection` stored at `key` as `bytes`.
fn decode_stored(collection: &str, key: &[u8], bytes: &[u8]) -> Result<StoredRecord> {
    let location = || format!("{collection}/{}", String::from_utf8_lossy(key));
    let (header, payload) = decode_record(bytes).map_err(|e| Error::decode(e, location()))?;
    let key = std::str::from_utf8(key).map_err(|_| Error::Corrupt {
        location: location(),
        reason: "the key is not UTF-8".into(),
    })?;
    Ok(StoredRecord {
        collection: collection.to_owned(),
        key: key.to_owned(),
        version: header.version,
        modified: header.modified,
        expires: header.expires,
        value: payload.to_vec(),
    })
}
