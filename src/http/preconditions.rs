//! Conditional requests (RFC 9110 §13): parsing the precondition headers and evaluating them
//! against a record's [`Validators`], in the order of RFC 9110 §13.2.2.

use std::fmt;
use std::future::{Future, ready};
use std::time::SystemTime;

use futures::TryFutureExt;
use http::HeaderMap;
use http::header::{HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};

use super::HttpError;
use super::etag::{EntityTag, Validators, parse_tag_list, trim_ows};
use crate::blocking::block_on;
use crate::{Conflict, ConflictKind, Version, Versioned};

/// How many times [`Preconditions::guard_write`] re-reads a record that changed under it.
const WRITE_ATTEMPTS: u32 = 16;

/// The value of an `If-Match` or `If-None-Match` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagCondition {
    /// `*`: any current representation.
    Any,
    /// A list of entity-tags, never empty.
    Tags(Vec<EntityTag>),
}

/// The preconditions of a request, parsed from its headers by [`parse_preconditions`].
///
/// `If-Range` is not parsed: revkv's records are answered whole, never as ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preconditions {
    /// `If-Match`: the record must exist and, unless `*`, be at one of the listed versions
    /// (strong comparison).
    pub if_match: Option<TagCondition>,
    /// `If-None-Match`: the record must not exist (`*`, create-only) or not be at one of the
    /// listed versions (weak comparison).
    pub if_none_match: Option<TagCondition>,
    /// `If-Unmodified-Since`: the record must not have changed since this date began. The
    /// exact modification time is compared, so a record changed later in the second the date
    /// names fails the condition, including when the date is its own `Last-Modified`.
    pub if_unmodified_since: Option<SystemTime>,
    /// `If-Modified-Since`: for reads, answer `304 Not Modified` only if the record has not
    /// changed since this date began (compared like `if_unmodified_since`, so a change within
    /// the second of a `Last-Modified` is never answered with `304`).
    pub if_modified_since: Option<SystemTime>,
}

/// A precondition header whose value does not follow its grammar; answered with `400`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {} header is malformed: {reason}", header_title(header))]
pub struct HeaderError {
    header: HeaderName,
    reason: &'static str,
}

impl HeaderError {
    /// A malformed `header`, and why.
    #[must_use]
    pub const fn new(header: HeaderName, reason: &'static str) -> Self {
        Self { header, reason }
    }

    /// The malformed header.
    #[must_use]
    pub const fn header(&self) -> &HeaderName {
        &self.header
    }
}

/// A precondition that evaluated to false: answered with `412` (or `409` by
/// [`Policy::precondition_failed_as_conflict`](super::Policy::precondition_failed_as_conflict)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreconditionFailed {
    header: HeaderName,
    current: Option<Version>,
}

impl PreconditionFailed {
    /// The header whose condition failed.
    #[must_use]
    pub const fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The record's current version; `None` when it does not exist.
    #[must_use]
    pub const fn current_version(&self) -> Option<Version> {
        self.current
    }
}

impl fmt::Display for PreconditionFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.current {
            Some(version) => write!(
                f,
                "the {} condition does not hold: the record is at version {version}; read it \
                 again and send its current ETag",
                header_title(&self.header)
            ),
            None => write!(
                f,
                "the {} condition does not hold: the record does not exist",
                header_title(&self.header)
            ),
        }
    }
}

impl std::error::Error for PreconditionFailed {}

/// What a read (`GET` or `HEAD`) should answer once its preconditions hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Answer with the record.
    Proceed,
    /// Answer `304 Not Modified` with the record's validators and no body.
    NotModified,
}

/// Parses `If-Match`, `If-None-Match`, `If-Unmodified-Since` and `If-Modified-Since`.
///
/// Entity-tag lists may span several header lines. Dates are HTTP-dates in any of the three
/// formats of RFC 9110 §5.6.7; a date field that is not exactly one valid HTTP-date is ignored,
/// as RFC 9110 §13.1.3 and §13.1.4 require. Ignoring a date never lets a write through
/// unguarded: a date is not a guard ([`Preconditions::guards_write`]).
///
/// # Errors
/// A [`HeaderError`] naming the first malformed entity-tag header: a list that is empty or
/// does not follow `#entity-tag`, or `*` combined with tags.
///
/// ```
/// use http::HeaderMap;
/// use revkv::http::{TagCondition, parse_preconditions};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("if-match", r#""4", W/"5""#.parse()?);
/// let parsed = parse_preconditions(&headers)?;
/// let Some(TagCondition::Tags(tags)) = parsed.if_match else { panic!("a list") };
/// assert_eq!(tags.len(), 2);
///
/// headers.insert("if-match", "4".parse()?);
/// assert!(parse_preconditions(&headers).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_preconditions(headers: &HeaderMap) -> Result<Preconditions, HeaderError> {
    Ok(Preconditions {
        if_match: tag_condition(headers, &IF_MATCH)?,
        if_none_match: tag_condition(headers, &IF_NONE_MATCH)?,
        if_unmodified_since: date_condition(headers, &IF_UNMODIFIED_SINCE),
        if_modified_since: date_condition(headers, &IF_MODIFIED_SINCE),
    })
}

/// `"*" / #entity-tag`, over every line of the header.
fn tag_condition(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Option<TagCondition>, HeaderError> {
    let fail = |reason| HeaderError::new(name.clone(), reason);
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let (mut any, mut tags) = (false, Vec::new());
    for line in lines {
        let line = trim_ows(line.as_bytes());
        if line == b"*" {
            any = true;
        } else {
            tags.extend(parse_tag_list(line).map_err(fail)?);
        }
    }
    match (any, tags.is_empty()) {
        (true, true) => Ok(Some(TagCondition::Any)),
        (true, false) => Err(fail(
            "* stands alone and cannot be combined with entity-tags",
        )),
        (false, true) => Err(fail("the header lists no entity-tag")),
        (false, false) => Ok(Some(TagCondition::Tags(tags))),
    }
}

/// Exactly one HTTP-date; anything else is no date at all.
fn date_condition(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut lines = headers.get_all(name).iter();
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    let text = line.to_str().ok()?;
    httpdate::parse_http_date(text.trim_matches([' ', '\t'])).ok()
}

impl Preconditions {
    /// Whether the request carries no precondition at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Whether the request names the versions it may replace: `If-Match` with entity-tags.
    /// A route that requires conditional writes answers a request without one with
    /// `428 Precondition Required` ([`HttpError::precondition_required`]).
    ///
    /// Only a strong entity-tag keeps two writers from overwriting each other: both read
    /// version 4, the first writes version 5, and the second's `If-Match: "4"` fails. The other
    /// preconditions are evaluated when sent, but do not make a write conditional:
    /// `If-Match: *` holds for any version, `If-None-Match: "4"` for every version but one, and
    /// a date has one-second resolution, which cannot tell two writes of one second apart (RFC
    /// 9110 §8.8.2.2 calls `Last-Modified` weak for that reason).
    #[must_use]
    pub const fn guards_write(&self) -> bool {
        matches!(self.if_match, Some(TagCondition::Tags(_)))
    }

    /// Evaluates the preconditions of a `GET` or `HEAD` against the record's validators
    /// (`None` when the record does not exist).
    ///
    /// # Errors
    /// [`PreconditionFailed`] when `If-Match` or `If-Unmodified-Since` does not hold.
    pub fn evaluate_read(
        &self,
        current: Option<Validators>,
    ) -> Result<ReadOutcome, PreconditionFailed> {
        self.evaluate(current, true)
    }

    /// Evaluates the preconditions of a write (any method but `GET` and `HEAD`) against the
    /// record's validators (`None` when the record does not exist).
    ///
    /// # Errors
    /// [`PreconditionFailed`] when any precondition does not hold.
    pub fn evaluate_write(&self, current: Option<Validators>) -> Result<(), PreconditionFailed> {
        self.evaluate(current, false).map(drop)
    }

    /// RFC 9110 §13.2.2, steps 1 to 4.
    fn evaluate(
        &self,
        current: Option<Validators>,
        is_read: bool,
    ) -> Result<ReadOutcome, PreconditionFailed> {
        let failed = |header: &HeaderName| PreconditionFailed {
            header: header.clone(),
            current: current.map(|c| c.version),
        };
        // Dates are compared with the exact modification time, not with the whole second that
        // Last-Modified shows: a record changed later in the second a date names has changed
        // since that date. So a condition on a date holds only for a record that has not
        // changed since the date began, and never for a stale state.
        let modified = current.map(|c| c.modified);
        if let Some(condition) = &self.if_match {
            if !matches(condition, current, EntityTag::strong_matches) {
                return Err(failed(&IF_MATCH));
            }
        } else if let (Some(date), Some(modified)) = (self.if_unmodified_since, modified)
            && modified > date
        {
            return Err(failed(&IF_UNMODIFIED_SINCE));
        }
        if let Some(condition) = &self.if_none_match {
            if matches(condition, current, EntityTag::weak_matches) {
                return if is_read {
                    Ok(ReadOutcome::NotModified)
                } else {
                    Err(failed(&IF_NONE_MATCH))
                };
            }
        } else if let (true, Some(date), Some(modified)) =
            (is_read, self.if_modified_since, modified)
            && modified <= date
        {
            return Ok(ReadOutcome::NotModified);
        }
        Ok(ReadOutcome::Proceed)
    }

    /// Runs a write whose preconditions must hold for the record it replaces, atomically:
    /// `read` fetches the record, the preconditions are evaluated against it, and `write`
    /// gets the record they held for and must write with compare-and-swap against its
    /// version (or a version the client sent). When the write conflicts because the record
    /// moved on since `read`, it all runs again on the new record, so a precondition is
    /// never taken as holding for a state the write did not replace.
    ///
    /// `read` may turn a missing record into [`crate::Error::NotFound`] (a `404`) for routes
    /// that only update, as RFC 9110 §13.2.1 asks ([`Self::guard_update`] does that for the
    /// common shape); returning `None` instead lets `If-Match` fail with `412` and
    /// `If-None-Match: *` pass, for routes that may create.
    ///
    /// `write` may run a transaction: a version conflict on the guarded record that it
    /// returns is handled the same way, so the client gets `412` when its precondition no
    /// longer holds for the record as it is now.
    ///
    /// # Errors
    /// [`PreconditionFailed`], what `read` and `write` return, and [`crate::Error::Contention`]
    /// when the record kept changing under the write.
    ///
    /// ```
    /// use revkv::http::{Preconditions, TagCondition, EntityTag};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Doc { title: String }
    /// let store = revkv::Store::temporary()?;
    /// let docs = store.collection::<Doc>("docs").open()?;
    /// let v1 = docs.insert("d1", Doc { title: "one".into() })?;
    ///
    /// let mut preconditions = Preconditions::default();
    /// preconditions.if_match = Some(TagCondition::Tags(vec![EntityTag::strong(v1)]));
    /// let write = |current: Option<&revkv::Versioned<Doc>>| {
    ///     let expected = current.map_or(v1, |c| c.version);
    ///     docs.update("d1", expected, Doc { title: "two".into() })
    /// };
    /// let v2 = preconditions.guard_write(|| docs.get("d1"), write).expect("If-Match holds");
    /// // The same If-Match again: the record is at v2 now, so the precondition fails.
    /// let failed = preconditions.guard_write(|| docs.get("d1"), write).unwrap_err();
    /// assert_eq!(failed.to_string(), format!(
    ///     "the If-Match condition does not hold: the record is at version {v2}; read it \
    ///      again and send its current ETag"));
    /// # Ok::<(), revkv::Error>(())
    /// ```
    pub fn guard_write<T, R>(
        &self,
        mut read: impl FnMut() -> crate::Result<Option<Versioned<T>>>,
        mut write: impl FnMut(Option<&Versioned<T>>) -> crate::Result<R>,
    ) -> Result<R, HttpError> {
        block_on(self.guard_write_async(|| ready(read()), |current| ready(write(current.as_ref()))))
    }

    /// [`Self::guard_write`] for async handlers: `read` and `write` return futures (of the
    /// [`AsyncCollection`](crate::AsyncCollection)'s operations, say), and `write` gets the
    /// record it checked.
    ///
    /// # Errors
    /// As [`Self::guard_write`].
    pub async fn guard_write_async<T, R, Read, Write>(
        &self,
        mut read: impl FnMut() -> Read,
        mut write: impl FnMut(Option<Versioned<T>>) -> Write,
    ) -> Result<R, HttpError>
    where
        Read: Future<Output = crate::Result<Option<Versioned<T>>>>,
        Write: Future<Output = crate::Result<R>>,
    {
        let validators = |current: &Option<Versioned<T>>| current.as_ref().map(Validators::of);
        let read = || read().map_err(HttpError::from);
        let write = |current| write(current).map_err(HttpError::from);
        self.guard(validators, read, write).await
    }
}

impl Preconditions {
    /// [`Self::guard_write`] for routes that only update an existing record: `read` returns
    /// the record or the error to answer without it (such as [`crate::Error::NotFound`], a
    /// `404`), and `write` gets the record itself and may refuse with any [`HttpError`] (a
    /// `422` for a change the record does not allow, say). A version conflict on the record
    /// that `write` returns runs it all again on the record as it is now, as in
    /// [`Self::guard_write`].
    ///
    /// # Errors
    /// [`PreconditionFailed`] (`412`), what `read` and `write` return, and
    /// [`crate::Error::Contention`] when the record kept changing under the write.
    ///
    /// ```
    /// use revkv::http::{HttpError, Policy, Preconditions};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Note { done: bool }
    /// let store = revkv::Store::temporary()?;
    /// let notes = store.collection::<Note>("notes").open()?;
    /// let v1 = notes.insert("n1", Note { done: true })?;
    /// let read = || {
    ///     let found = notes.get("n1")?;
    ///     found.ok_or_else(|| revkv::Error::NotFound { collection: "notes".into(), key: "n1".into() }.into())
    /// };
    /// let reopen = |current: &revkv::Versioned<Note>| {
    ///     if current.value.done {
    ///         return Err(HttpError::invalid_body("a done note cannot be edited"));
    ///     }
    ///     Ok(notes.update("n1", current.version, Note { done: false })?)
    /// };
    /// let refused = Preconditions::default().guard_update(read, reopen).unwrap_err();
    /// assert_eq!(Policy::default().render(&refused).status(), 422);
    /// # Ok::<(), revkv::Error>(())
    /// ```
    pub fn guard_update<T, R>(
        &self,
        mut read: impl FnMut() -> Result<Versioned<T>, HttpError>,
        mut write: impl FnMut(&Versioned<T>) -> Result<R, HttpError>,
    ) -> Result<R, HttpError> {
        block_on(self.guard_update_async(|| ready(read()), |current| ready(write(&current))))
    }

    /// [`Self::guard_update`] for async handlers.
    ///
    /// # Errors
    /// As [`Self::guard_update`].
    pub async fn guard_update_async<T, R, Read, Write>(
        &self,
        read: impl FnMut() -> Read,
        write: impl FnMut(Versioned<T>) -> Write,
    ) -> Result<R, HttpError>
    where
        Read: Future<Output = Result<Versioned<T>, HttpError>>,
        Write: Future<Output = Result<R, HttpError>>,
    {
        let validators = |current: &Versioned<T>| Some(Validators::of(current));
        self.guard(validators, read, write).await
    }

    /// What [`Self::guard_write_async`] and [`Self::guard_update_async`] run: reads the
    /// record `C` (which `validators` describes), evaluates the preconditions against it, and
    /// writes; a version conflict on a record that moved since the read runs it all again.
    async fn guard<C, R, Read, Write>(
        &self,
        validators: impl Fn(&C) -> Option<Validators>,
        mut read: impl FnMut() -> Read,
        mut write: impl FnMut(C) -> Write,
    ) -> Result<R, HttpError>
    where
        Read: Future<Output = Result<C, HttpError>>,
        Write: Future<Output = Result<R, HttpError>>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let current = read().await?;
            let read_at = validators(&current);
            self.evaluate_write(read_at)?;
            match write(current).await {
                Err(error)
                    if matches!(error.store_error(),
                        Some(crate::Error::Conflict(conflict)) if moved_since(conflict, read_at)) =>
                    {}
                done => return done,
            }
        }
        Err(crate::Error::Contention {
            attempts: WRITE_ATTEMPTS,
        }
        .into())
    }
}

/// With the feature `openapi`, the four precondition headers the extractor reads, as optional
/// header parameters of an operation: `#[utoipa::path(..., params(Preconditions))]`.
#[cfg(feature = "openapi")]
impl utoipa::IntoParams for Preconditions {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        [
            (
                IF_MATCH,
                "Entity-tags, such as \"17\", of which the record must be at one (or * for any): \
                 412 when it is not. Only a list of entity-tags makes a write conditional.",
            ),
            (
                IF_NONE_MATCH,
                "Entity-tags of which the record must be at none (or * for none at all): 304 on \
                 GET or HEAD, 412 on a write, when it is.",
            ),
            (
                IF_MODIFIED_SINCE,
                "An HTTP-date: 304 on GET or HEAD unless the record changed since it began. \
                 Ignored with If-None-Match, or when not a valid HTTP-date.",
            ),
            (
                IF_UNMODIFIED_SINCE,
                "An HTTP-date: 412 if the record changed since it began. Ignored with \
                 If-Match, or when not a valid HTTP-date.",
            ),
        ]
        .into_iter()
        .map(|(name, description)| {
            ParameterBuilder::new()
                .name(header_title(&name))
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        })
        .collect()
    }
}

/// A header name as people write it: `If-Match` rather than the wire form `if-match`.
pub(crate) fn header_title(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn matches(
    condition: &TagCondition,
    current: Option<Validators>,
    compare: fn(&EntityTag, Version) -> bool,
) -> bool {
    match (condition, current) {
        (_, None) => false,
        (TagCondition::Any, Some(_)) => true,
        (TagCondition::Tags(tags), Some(current)) => {
            tags.iter().any(|tag| compare(tag, current.version))
        }
    }
}

/// Whether a version or existence conflict shows the record changed after it was read.
fn moved_since(conflict: &Conflict, read: Option<Validators>) -> bool {
    matches!(
        conflict.kind(),
        ConflictKind::Version | ConflictKind::Exists
    ) && conflict.current_version() != read.map(|r| r.version)
}

#[cfg(test)]
mod tests;
