//! The status policy: which answer each failure gets.

use http::header::{ACCEPT, RETRY_AFTER};
use http::{HeaderValue, StatusCode};

use super::error::{BodyError, Cause, HttpError};
use super::preconditions::header_title;
use super::problem::{HttpProblem, Members, ProblemKind};
use crate::{Conflict, ConflictKind, Error};

/// Seconds a client is asked to wait after a `503` for contention.
const CONTENTION_RETRY_AFTER: HeaderValue = HeaderValue::from_static("1");
/// Seconds a client is asked to wait after a `503` for a disk short of space: freeing space
/// takes an operator, not a moment.
const STORAGE_RETRY_AFTER: HeaderValue = HeaderValue::from_static("60");
/// Seconds a client is asked to wait after a `503` for storage that could not be reached: the
/// request already waited out the engine's deadline.
const UNAVAILABLE_RETRY_AFTER: HeaderValue = HeaderValue::from_static("5");

/// Decides how each failure is answered, and renders [`HttpError`]s into [`HttpProblem`]s.
///
/// The defaults follow RFC 9110: a failed `If-Match` or `If-Unmodified-Since` is `412`, a
/// stale version in the body and every other conflict `409`. The key of the record that holds
/// a unique value is not revealed.
///
/// ```
/// use revkv::http::{HttpError, Policy, Preconditions, TagCondition};
///
/// // If-Match: * on a record that does not exist.
/// let mut preconditions = Preconditions::default();
/// preconditions.if_match = Some(TagCondition::Any);
/// let failed: HttpError = preconditions.evaluate_write(None).unwrap_err().into();
/// assert_eq!(Policy::default().render(&failed).status(), 412);
/// let as_conflict = Policy::default().precondition_failed_as_conflict(true);
/// assert_eq!(as_conflict.render(&failed).status(), 409);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Policy {
    precondition_failed_as_conflict: bool,
    reveal_unique_holder: bool,
    /// How problems show an index: by another name, without its value.
    indexes: Vec<IndexShown>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct IndexShown {
    index: String,
    label: Option<String>,
    hide_value: bool,
}

impl Policy {
    /// Answer failed preconditions with `409 Conflict` instead of `412 Precondition Failed`,
    /// for APIs that follow that convention. The problem type stays
    /// `/problems/precondition-failed`.
    pub const fn precondition_failed_as_conflict(mut self, yes: bool) -> Self {
        self.precondition_failed_as_conflict = yes;
        self
    }

    /// Send the key of the record that holds a taken unique value, as the member `holder`.
    /// Only for services whose clients may see every record of the collection.
    pub const fn reveal_unique_holder(mut self, yes: bool) -> Self {
        self.reveal_unique_holder = yes;
        self
    }

    /// Show the index `index` as `label` in problem bodies (the `index` member and the
    /// detail): the name a client knows, not the one the service declared (`owner_title`
    /// shown as `title`).
    pub fn label_index(mut self, index: &str, label: &str) -> Self {
        self.shown_mut(index).label = Some(label.to_owned());
        self
    }

    /// Leave the value out of the problem bodies of the index `index`: for a value the client
    /// did not send as it is stored (a composite value, a normalised one) or should not see.
    ///
    /// ```
    /// use revkv::Conflict;
    /// use revkv::http::{HttpError, Policy};
    ///
    /// let taken: HttpError = Conflict::Unique {
    ///     collection: "notes".into(),
    ///     key: "n2".into(),
    ///     index: "owner_title".into(),
    ///     value: revkv::composite(["ann", "groceries"]),
    ///     holder: "n1".into(),
    /// }
    /// .into();
    /// let policy = Policy::default()
    ///     .label_index("owner_title", "title")
    ///     .hide_index_value("owner_title");
    /// let problem = policy.render(&taken);
    /// assert_eq!(
    ///     problem.details().detail.as_deref(),
    ///     Some("another record already has this title; choose a different title")
    /// );
    /// ```
    pub fn hide_index_value(mut self, index: &str) -> Self {
        self.shown_mut(index).hide_value = true;
        self
    }

    fn shown_mut(&mut self, index: &str) -> &mut IndexShown {
        let at = match self.indexes.iter().position(|shown| shown.index == index) {
            Some(at) => at,
            None => {
                self.indexes.push(IndexShown {
                    index: index.to_owned(),
                    label: None,
                    hide_value: false,
                });
                self.indexes.len() - 1
            }
        };
        &mut self.indexes[at]
    }

    /// The name problems show for `index`, and whether they hide its values.
    fn index_shown<'a>(&'a self, index: &'a str) -> (&'a str, bool) {
        match self.indexes.iter().find(|shown| shown.index == index) {
            Some(shown) => (shown.label.as_deref().unwrap_or(index), shown.hide_value),
            None => (index, false),
        }
    }

    /// The answer to `error` under this policy.
    #[must_use]
    pub fn render(&self, error: &HttpError) -> HttpProblem {
        match &error.cause {
            Cause::Store(error) => match &**error {
                Error::Conflict(conflict) => self.conflict(conflict),
                Error::IndexValueTooLong {
                    index, len, max, ..
                } => {
                    let (index, _) = self.index_shown(index);
                    HttpProblem::of_kind(ProblemKind::InvalidBody).with_detail(format!(
                        "the {index} of {len} bytes is longer than the limit of {max} bytes"
                    ))
                }
                other => store_error(other),
            },
            Cause::PreconditionFailed(failed) => {
                let mut problem = HttpProblem::of_kind(ProblemKind::PreconditionFailed)
                    .with_detail(failed.to_string())
                    .with_members(Members {
                        current_version: failed.current_version(),
                        header: Some(header_title(failed.header())),
                        ..Members::conflict(ConflictKind::Version)
                    });
                if self.precondition_failed_as_conflict {
                    problem = problem.with_status(StatusCode::CONFLICT);
                }
                problem
            }
            Cause::PreconditionRequired => HttpProblem::of_kind(ProblemKind::PreconditionRequired)
                .with_detail(error.to_string()),
            Cause::Header(header_error) => HttpProblem::of_kind(ProblemKind::InvalidHeader)
                .with_detail(header_error.to_string())
                .with_members(Members {
                    header: Some(header_title(header_error.header())),
                    ..Members::default()
                }),
            Cause::Body(body) => {
                let kind = match body {
                    BodyError::Malformed(_) => ProblemKind::MalformedBody,
                    BodyError::Invalid(_) => ProblemKind::InvalidBody,
                    BodyError::NotJson => {
                        // RFC 9110 §15.5.16: say which media type would have been accepted.
                        return HttpProblem::of_kind(ProblemKind::UnsupportedMediaType)
                            .with_detail(error.to_string())
                            .with_header(ACCEPT, HeaderValue::from_static("application/json"));
                    }
                };
                HttpProblem::of_kind(kind).with_detail(error.to_string())
            }
            Cause::Internal => internal_error(),
            Cause::Problem(problem) => (**problem).clone(),
        }
    }

    fn conflict(&self, conflict: &Conflict) -> HttpProblem {
        let members = Members {
            current_version: conflict.current_version(),
            ..Members::conflict(conflict.kind())
        };
        let (kind, members, detail) = match conflict {
            Conflict::VersionMismatch { .. } | Conflict::BaseNotRetained { .. } => {
                (ProblemKind::VersionConflict, members, None)
            }
            Conflict::AlreadyExists { .. } => (ProblemKind::AlreadyExists, members, None),
            Conflict::Unique {
                index,
                value,
                holder,
                ..
            } => {
                let (index, hide_value) = self.index_shown(index);
                let members = Members {
                    index: Some(index.to_owned()),
                    holder: self.reveal_unique_holder.then(|| holder.clone()),
                    ..members
                };
                // The conflict's own message names the key being written, which for a create
                // is one the client never sees.
                let detail = if hide_value {
                    format!("another record already has this {index}; choose a different {index}")
                } else {
                    format!(
                        "another record already has the {index} {value:?}; choose a different \
                         {index}"
                    )
                };
                (ProblemKind::UniqueViolation, members, Some(detail))
            }
            Conflict::Transition { from, allowed, .. } => {
                let members = Members {
                    current_state: Some(from.clone()),
                    allowed: Some(allowed.clone()),
                    ..members
                };
                (ProblemKind::TransitionNotAllowed, members, None)
            }
            Conflict::InitialState { allowed, .. } => {
                let members = Members {
                    allowed: Some(allowed.clone()),
                    ..members
                };
                (ProblemKind::TransitionNotAllowed, members, None)
            }
            Conflict::Rule { code, detail, .. } => {
                let members = Members {
                    code: Some(code.clone()),
                    ..members
                };
                (ProblemKind::RuleViolation, members, Some(detail.clone()))
            }
        };
        HttpProblem::of_kind(kind)
            .with_detail(detail.unwrap_or_else(|| conflict.to_string()))
            .with_members(members)
    }
}

/// Store errors other than conflicts: the client's fault with what to fix, or the server's
/// with nothing about its internals. The details name no collection: a collection is the
/// service's own, and its name need not be the route's.
fn store_error(error: &Error) -> HttpProblem {
    let (kind, detail) = match error {
        Error::NotFound { .. } => (
            ProblemKind::NotFound,
            "no record exists at this path".into(),
        ),
        Error::EmptyKey { .. } => (ProblemKind::InvalidKey, "the key must not be empty".into()),
        Error::KeyTooLong { len, max, .. } => (
            ProblemKind::InvalidKey,
            format!("a key of {len} bytes is longer than the limit of {max} bytes"),
        ),
        Error::ValueTooLarge { len, max, .. } => (
            ProblemKind::PayloadTooLarge,
            format!("a value of {len} bytes is larger than the limit of {max} bytes"),
        ),
        Error::CommitTooLarge { .. } => (ProblemKind::PayloadTooLarge, error.to_string()),
        Error::InvalidPageToken { .. } | Error::InvalidQuery { .. } => {
            (ProblemKind::InvalidQuery, error.to_string())
        }
        Error::Contention { .. } => {
            return HttpProblem::of_kind(ProblemKind::Contention)
                .with_detail(
                    "the request lost the race against other writers too many times; retry it",
                )
                .with_header(RETRY_AFTER, CONTENTION_RETRY_AFTER);
        }
        // Nothing of the write was stored, and the store takes writes again once space is
        // freed; the path and the byte counts stay in the server's logs.
        Error::DiskFull { .. } => {
            return HttpProblem::of_kind(ProblemKind::StorageFull)
                .with_detail("the server cannot store more data until space is freed; retry later")
                .with_header(RETRY_AFTER, STORAGE_RETRY_AFTER);
        }
        // The outage is the storage's; which member failed, and how, stays in the logs.
        Error::Unavailable { .. } => {
            return HttpProblem::of_kind(ProblemKind::StorageUnavailable)
                .with_detail("the server cannot reach its storage right now; retry later")
                .with_header(RETRY_AFTER, UNAVAILABLE_RETRY_AFTER);
        }
        Error::HistoryCompacted { oldest } => {
            return HttpProblem::of_kind(ProblemKind::HistoryCompacted)
                .with_detail(format!(
                    "{error}: read the current state again, then follow the feed from there"
                ))
                .with_members(Members {
                    oldest: Some(*oldest),
                    ..Members::default()
                });
        }
        // The service's own mistakes (such as `NoChangeFeed`, a store opened without the
        // feed a route reads) and failures of the storage below.
        _ => return internal_error(),
    };
    HttpProblem::of_kind(kind).with_detail(detail)
}

fn internal_error() -> HttpProblem {
    HttpProblem::of_kind(ProblemKind::InternalError)
        .with_detail("the server failed to complete the request")
}

#[cfg(test)]
mod tests;
