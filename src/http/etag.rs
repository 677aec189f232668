//! Validators of a versioned record: its strong entity-tag and its modification date.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CACHE_CONTROL, ETAG, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue};

use super::Caching;
use crate::{Version, Versioned};

/// The latest instant an HTTP-date can name (9999-12-31T23:59:59Z); `httpdate` refuses later.
const LAST_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// The strong entity-tag of a version: the version number in quotes, such as `"17"`.
///
/// ```
/// let tag = revkv::http::etag(revkv::Version::new(17));
/// assert_eq!(tag, "\"17\"");
/// ```
#[must_use]
pub fn etag(version: Version) -> HeaderValue {
    // Quotes around decimal digits are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// An instant as an HTTP-date (IMF-fixdate, whole seconds, GMT). Instants outside what an
/// HTTP-date can name are clamped to 1970-01-01 and 9999-12-31.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let date = revkv::http::http_date(UNIX_EPOCH + Duration::from_millis(784_111_777_900));
/// assert_eq!(date, "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
#[must_use]
pub fn http_date(instant: SystemTime) -> HeaderValue {
    let clamped = UNIX_EPOCH + Duration::from_secs(whole_seconds(instant));
    HeaderValue::from_str(&httpdate::fmt_http_date(clamped))
        .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// Seconds since the epoch, truncated and clamped to the range of HTTP-dates: the precision
/// at which `Last-Modified` is sent.
fn whole_seconds(instant: SystemTime) -> u64 {
    instant
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
        .min(LAST_HTTP_DATE_SECS)
}

/// What a conditional request is compared with: a record's version and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The record's version, sent as the strong entity-tag [`etag`].
    pub version: Version,
    /// When the record was last written, sent as `Last-Modified`.
    pub modified: SystemTime,
}

impl Validators {
    /// Validators of a record at `version`, last written at `modified`.
    #[must_use]
    pub const fn new(version: Version, modified: SystemTime) -> Self {
        Self { version, modified }
    }

    /// The validators of a record read from a collection.
    #[must_use]
    pub fn of<T>(record: &Versioned<T>) -> Self {
        Self::new(record.version, record.modified)
    }

    /// The headers of an answer that carries the record (`200`, or `304`): `ETag`,
    /// `Last-Modified`, and `Cache-Control: no-cache` ([`Caching::Revalidate`]).
    #[must_use]
    pub fn headers(&self) -> HeaderMap {
        self.headers_with(Caching::Revalidate)
    }

    /// `ETag`, `Last-Modified` and `Cache-Control` as `caching` says.
    #[must_use]
    pub fn headers_with(&self, caching: Caching) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(ETAG, etag(self.version));
        headers.insert(LAST_MODIFIED, http_date(self.modified));
        headers.insert(CACHE_CONTROL, caching.header_value());
        headers
    }
}

impl<T> From<&Versioned<T>> for Validators {
    fn from(record: &Versioned<T>) -> Self {
        Self::of(record)
    }
}

/// One entity-tag of an `If-Match` or `If-None-Match` list (RFC 9110 §8.8.3).
#[derive(Clone, PartialEq, Eq)]
pub struct EntityTag {
    weak: bool,
    opaque: Vec<u8>,
}

impl EntityTag {
    /// The strong entity-tag of `version`, as [`etag`] sends it.
    #[must_use]
    pub fn strong(version: Version) -> Self {
        Self {
            weak: false,
            opaque: version.to_string().into_bytes(),
        }
    }

    /// Whether the tag was sent with the weakness indicator `W/`.
    #[must_use]
    pub const fn is_weak(&self) -> bool {
        self.weak
    }

    /// The characters between the quotes.
    #[must_use]
    pub fn opaque(&self) -> &[u8] {
        &self.opaque
    }

    /// Strong comparison (for `If-Match`): both tags strong and their characters equal.
    #[must_use]
    pub fn strong_matches(&self, version: Version) -> bool {
        !self.weak && self.weak_matches(version)
    }

    /// Weak comparison (for `If-None-Match`): the characters equal, weak or not.
    #[must_use]
    pub fn weak_matches(&self, version: Version) -> bool {
        self.opaque == version.to_string().as_bytes()
    }
}

impl fmt::Debug for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let weak = if self.weak { "W/" } else { "" };
        write!(f, "{weak}\"{}\"", self.opaque.escape_ascii())
    }
}

/// Parses one field line of a comma-separated entity-tag list (`#entity-tag`): optional
/// whitespace around members, empty members ignored, as RFC 9110 §5.6.1 requires.
pub(crate) fn parse_tag_list(line: &[u8]) -> Result<Vec<EntityTag>, &'static str> {
    let mut tags = Vec::new();
    let mut rest = trim_ows(line);
    while let Some((&first, after)) = rest.split_first() {
        if first == b',' {
            rest = trim_ows(after);
            continue;
        }
        let (tag, after) = parse_entity_tag(rest)?;
        tags.push(tag);
        rest = trim_ows(after);
        match rest.split_first() {
            None => break,
            Some((b',', after)) => rest = trim_ows(after),
            Some(_) => return Err("entity-tags must be separated by commas"),
        }
    }
    Ok(tags)
}

/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`, returning the tag and what follows it.
fn parse_entity_tag(input: &[u8]) -> Result<(EntityTag, &[u8]), &'static str> {
    let (weak, rest) = match input.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let quoted = rest
        .strip_prefix(b"\"")
        .ok_or("an entity-tag is a quoted string such as \"17\" or W/\"17\"")?;
    let end = quoted
        .iter()
        .position(|&b| b == b'"')
        .ok_or("an entity-tag lacks its closing quote")?;
    let (opaque, after_quote) = quoted.split_at(end);
    if !opaque.iter().all(|&b| is_etagc(b)) {
        return Err("an entity-tag holds a character that is not allowed in it");
    }
    let tag = EntityTag {
        weak,
        opaque: opaque.to_vec(),
    };
    Ok((tag, after_quote.get(1..).unwrap_or_default()))
}

/// `etagc = %x21 / %x23-7E / obs-text`: visible characters except the double quote.
const fn is_etagc(b: u8) -> bool {
    b == 0x21 || (b >= 0x23 && b <= 0x7e) || b >= 0x80
}

/// Strips optional whitespace (spaces and tabs) from both ends.
pub(crate) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', rest)) = bytes.split_first() {
        bytes = rest;
    }
    while let Some((b' ' | b'\t', rest)) = bytes.split_last() {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(line: &str) -> Vec<String> {
        parse_tag_list(line.as_bytes())
            .expect("parses")
            .iter()
            .map(|t| format!("{t:?}"))
            .collect()
    }

    #[test]
    fn lists_allow_whitespace_weak_tags_and_empty_members() {
        assert_eq!(tags(r#""1""#), [r#""1""#]);
        assert_eq!(
            tags(r#" "1" ,W/"2",	"x!#~" "#),
            [r#""1""#, r#"W/"2""#, r#""x!#~""#]
        );
        assert_eq!(tags(r#", "1",, ,"2","#), [r#""1""#, r#""2""#]);
        assert_eq!(tags(r#""""#), [r#""""#]);
        assert!(tags("").is_empty());
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            "1",
            r#""1"#,
            r#"w/"1""#,
            "W/1",
            r#""1" "2""#,
            r#""a"b""#,
            r#""1";"2""#,
            "*",
            r#""1", *"#,
            "\"a b\"",
        ] {
            assert!(parse_tag_list(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn obs_text_is_allowed_inside_tags() {
        let parsed = parse_tag_list(b"\"caf\xc3\xa9\"").expect("parses");
        assert_eq!(parsed[0].opaque(), b"caf\xc3\xa9");
    }

    #[test]
    fn strong_comparison_refuses_weak_tags_and_weak_comparison_does_not() {
        let v = Version::new(17);
        let parse = |s: &str| parse_tag_list(s.as_bytes()).expect("parses").remove(0);
        assert!(parse(r#""17""#).strong_matches(v));
        assert!(!parse(r#"W/"17""#).strong_matches(v));
        assert!(parse(r#"W/"17""#).weak_matches(v));
        assert!(!parse(r#""017""#).weak_matches(v));
        assert!(!parse(r#""18""#).weak_matches(v));
        assert_eq!(EntityTag::strong(v), parse(r#""17""#));
    }

    #[test]
    fn dates_outside_the_http_date_range_are_clamped_not_panicking() {
        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(http_date(before_epoch), "Thu, 01 Jan 1970 00:00:00 GMT");
        let far_future = UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE_SECS * 2);
        assert_eq!(http_date(far_future), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn validators_send_etag_last_modified_and_cache_control() {
        let modified = UNIX_EPOCH + Duration::from_micros(784_111_777_123_456);
        let validators = Validators::new(Version::new(3), modified);
        let headers = validators.headers();
        assert_eq!(headers[ETAG], "\"3\"");
        assert_eq!(headers[LAST_MODIFIED], "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(headers[CACHE_CONTROL], "no-cache");
        let private = validators.headers_with(Caching::PrivateRevalidate);
        assert_eq!(private[CACHE_CONTROL], "private, no-cache");
    }
}
