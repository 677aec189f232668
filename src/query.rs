//! Queries: a range of a collection's keys, or of an index's values, read a page at a time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Error, Result, Versioned};

/// What to read from a collection with [`Collection::query`](crate::Collection::query) (or in a
/// transaction, [`Transaction::query`](crate::Transaction::query)): records by an index value,
/// by a range of index values, by a key range or by a key prefix, in order or in reverse, a
/// page at a time.
///
/// Records come in key order, or for an index range in value order and then key order; ranges
/// are half-open (`start` included, `end` not). Expired records never appear.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)]
/// # struct Order { customer: String }
/// use revkv::Query;
///
/// let store = revkv::Store::temporary()?;
/// let orders = store
///     .collection::<Order>("orders")
///     .index("customer", |o: &Order| o.customer.clone())
///     .open()?;
/// for id in ["o-1", "o-2", "o-3"] {
///     orders.insert(id, Order { customer: "ann".into() })?;
/// }
/// let first = orders.query(&Query::index("customer", "ann").limit(2))?;
/// assert_eq!(first.records.len(), 2);
/// let token = first.next.expect("one more record");
/// let rest = orders.query(&Query::index("customer", "ann").limit(2).after(&token))?;
/// assert_eq!(rest.records[0].0, "o-3");
/// assert!(rest.next.is_none());
/// # Ok::<(), revkv::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Query {
    pub(crate) what: Selection,
    pub(crate) limit: Option<usize>,
    pub(crate) reverse: bool,
    pub(crate) after: Option<String>,
}

/// Which records a [`Query`] selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    Index {
        index: String,
        value: String,
    },
    IndexRange {
        index: String,
        start: String,
        end: String,
    },
    Range {
        start: String,
        end: String,
    },
    Prefix(String),
}

impl Query {
    fn of(what: Selection) -> Self {
        Self {
            what,
            limit: None,
            reverse: false,
            after: None,
        }
    }

    /// The records whose index `index` (unique or not) holds `value`, in key order.
    pub fn index(index: &str, value: &str) -> Self {
        Self::of(Selection::Index {
            index: index.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The records whose index `index` holds a value from `start` up to, not including,
    /// `end`, in value order (by bytes), then key order.
    pub fn index_range(index: &str, start: &str, end: &str) -> Self {
        Self::of(Selection::IndexRange {
            index: index.to_owned(),
            start: start.to_owned(),
            end: end.to_owned(),
        })
    }

    /// The records with keys from `start` up to, not including, `end`, in key order.
    pub fn range(start: &str, end: &str) -> Self {
        Self::of(Selection::Range {
            start: start.to_owned(),
            end: end.to_owned(),
        })
    }

    /// The records whose keys start with `prefix`, in key order.
    pub fn prefix(prefix: &str) -> Self {
        Self::of(Selection::Prefix(prefix.to_owned()))
    }

    /// Every record, in key order.
    pub fn all() -> Self {
        Self::prefix("")
    }

    /// At most `records` records per page (by default, all of them in one page). A query with
    /// a limit of zero is [`Error::InvalidQuery`].
    pub fn limit(mut self, records: usize) -> Self {
        self.limit = Some(records);
        self
    }

    /// The same records in the opposite order.
    pub fn reverse(mut self) -> Self {
        self.reverse = !self.reverse;
        self
    }

    /// Resumes after the last record of the page whose [`Page::next`] is `token`. A token is
    /// only good for the query that gave it (the same selection and direction; the limit may
    /// change); any other is [`Error::InvalidPageToken`].
    pub fn after(mut self, token: &str) -> Self {
        self.after = Some(token.to_owned());
        self
    }

    /// A checksum of what the query selects and in which direction: what a token must match.
    fn fingerprint(&self) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        let mut field = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        match &self.what {
            Selection::Index { index, value } => {
                field(b"index");
                field(index.as_bytes());
                field(value.as_bytes());
            }
            Selection::IndexRange { index, start, end } => {
                field(b"index-range");
                field(index.as_bytes());
                field(start.as_bytes());
                field(end.as_bytes());
            }
            Selection::Range { start, end } => {
                field(b"range");
                field(start.as_bytes());
                field(end.as_bytes());
            }
            Selection::Prefix(prefix) => {
                field(b"prefix");
                field(prefix.as_bytes());
            }
        }
        field(&[u8::from(self.reverse)]);
        hasher.finalize()
    }

    /// The token that resumes this query after `position`, the storage key of the last record
    /// returned.
    pub(crate) fn token(&self, position: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(5 + position.len());
        bytes.push(TOKEN_FORMAT);
        bytes.extend_from_slice(&self.fingerprint().to_be_bytes());
        bytes.extend_from_slice(position);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Where to resume: the position in the query's token, if it has one.
    pub(crate) fn resume_after(&self) -> Result<Option<Vec<u8>>> {
        let Some(token) = &self.after else {
            return Ok(None);
        };
        let invalid = |reason: &'static str| Error::InvalidPageToken { reason };
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid("it is not a page token this store issued"))?;
        match bytes.split_first_chunk::<5>() {
            Some(([TOKEN_FORMAT, fingerprint @ ..], position)) => {
                if u32::from_be_bytes(*fingerprint) != self.fingerprint() {
                    return Err(invalid("it was issued for another query"));
                }
                Ok(Some(position.to_vec()))
            }
            _ => Err(invalid("it is not a page token this store issued")),
        }
    }
}

/// The layout of page tokens: a format byte, the query's fingerprint, the position.
const TOKEN_FORMAT: u8 = 1;

/// One page of a [`Query`]'s records.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The records, with their keys, in the query's order.
    pub records: Vec<(String, Versioned<T>)>,
    /// The token for the next page ([`Query::after`]); `None` on the last page.
    ///
    /// Paging with tokens while others write never skips or repeats a record that stays
    /// unchanged (in its key and index value) throughout: a token holds the position of the
    /// last record returned, not an offset.
    pub next: Option<String>,
}
