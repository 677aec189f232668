//! The error a handler returns: why a request failed, rendered into a problem by a policy.

use std::fmt;

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::preconditions::{HeaderError, PreconditionFailed};
use super::problem::HttpProblem;
use crate::Conflict;

/// Why a request failed, before a [`Policy`](super::Policy) turns it into an answer.
///
/// Convert into it with `?` from [`crate::Error`], [`Conflict`], [`HeaderError`] and
/// [`PreconditionFailed`]; render it with [`Policy::render`](super::Policy::render) (or, with
/// the `axum` feature, return it from a handler).
pub struct HttpError {
    pub(crate) cause: Cause,
}

/// Large causes are boxed, so that an `HttpError` stays small enough to return by value
/// (clippy's `result_large_err` in a service's handlers).
pub(crate) enum Cause {
    Store(Box<crate::Error>),
    PreconditionFailed(Box<PreconditionFailed>),
    PreconditionRequired,
    Header(Box<HeaderError>),
    Body(BodyError),
    Internal,
    Problem(Box<HttpProblem>),
}

/// A request body that cannot be used.
pub(crate) enum BodyError {
    /// Not JSON at all (`400`).
    Malformed(String),
    /// JSON that does not fit the request (`422`).
    Invalid(String),
    /// Not declared as JSON (`415`).
    NotJson,
}

impl HttpError {
    /// A write without any precondition on a route that requires one (`428`).
    #[must_use]
    pub const fn precondition_required() -> Self {
        Self {
            cause: Cause::PreconditionRequired,
        }
    }

    /// A well-formed body whose content the request cannot use (`422`), such as a missing
    /// member or a value out of range; `detail` tells the client what to fix.
    #[must_use]
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self {
            cause: Cause::Body(BodyError::Invalid(detail.into())),
        }
    }

    /// A failure of the server itself (`500`), such as a worker that panicked. The answer
    /// says nothing more.
    #[must_use]
    pub const fn internal() -> Self {
        Self {
            cause: Cause::Internal,
        }
    }

    /// The store error behind this one, if any: for logging what the answer does not show.
    #[must_use]
    pub fn store_error(&self) -> Option<&crate::Error> {
        match &self.cause {
            Cause::Store(error) => Some(error),
            _ => None,
        }
    }
}

impl From<crate::Error> for HttpError {
    fn from(error: crate::Error) -> Self {
        Self {
            cause: Cause::Store(Box::new(error)),
        }
    }
}

impl From<Conflict> for HttpError {
    fn from(conflict: Conflict) -> Self {
        crate::Error::Conflict(conflict).into()
    }
}

impl From<HeaderError> for HttpError {
    fn from(error: HeaderError) -> Self {
        Self {
            cause: Cause::Header(Box::new(error)),
        }
    }
}

impl From<PreconditionFailed> for HttpError {
    fn from(failed: PreconditionFailed) -> Self {
        Self {
            cause: Cause::PreconditionFailed(Box::new(failed)),
        }
    }
}

impl From<HttpProblem> for HttpError {
    /// A service's own problem, answered as it is.
    fn from(problem: HttpProblem) -> Self {
        Self {
            cause: Cause::Problem(Box::new(problem)),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Store(error) => error.fmt(f),
            Cause::PreconditionFailed(failed) => failed.fmt(f),
            Cause::PreconditionRequired => f.write_str(
                "this route writes only conditionally: send If-Match with the ETag you last read",
            ),
            Cause::Header(error) => error.fmt(f),
            Cause::Body(BodyError::Malformed(detail) | BodyError::Invalid(detail)) => {
                f.write_str(detail)
            }
            Cause::Body(BodyError::NotJson) => {
                f.write_str("the body must be sent as Content-Type: application/json")
            }
            Cause::Internal => f.write_str("the server failed to complete the request"),
            Cause::Problem(problem) => match &problem.details().detail {
                Some(detail) => f.write_str(detail),
                None => problem.status().fmt(f),
            },
        }
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Store(error) => f.debug_tuple("HttpError").field(error).finish(),
            _ => f.debug_tuple("HttpError").field(&self.to_string()).finish(),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Store(error) => Some(error),
            Cause::PreconditionFailed(failed) => Some(failed),
            Cause::Header(error) => Some(error),
            _ => None,
        }
    }
}

/// Decodes a JSON request body, after checking that `headers` declare it as JSON
/// (`application/json` or any `+json` type).
///
/// # Errors
/// An [`HttpError`] answered with `415` when the body is not declared as JSON, `400` when it
/// is not well-formed JSON, and `422` when it is JSON that does not fit `T`.
///
/// ```
/// use http::HeaderMap;
/// #[derive(serde::Deserialize, Debug)]
/// struct Item { sku: String }
///
/// let mut headers = HeaderMap::new();
/// headers.insert("content-type", "application/json".parse()?);
/// let item: Item = revkv::http::json_body(&headers, br#"{"sku": "a-1"}"#)?;
/// assert_eq!(item.sku, "a-1");
///
/// let policy = revkv::http::Policy::default();
/// let malformed = revkv::http::json_body::<Item>(&headers, b"{").unwrap_err();
/// assert_eq!(policy.render(&malformed).status(), 400);
/// let invalid = revkv::http::json_body::<Item>(&headers, b"{}").unwrap_err();
/// assert_eq!(policy.render(&invalid).status(), 422);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, HttpError> {
    if !is_json(headers) {
        return Err(HttpError {
            cause: Cause::Body(BodyError::NotJson),
        });
    }
    serde_json::from_slice(body).map_err(|error| {
        let detail = format!("the body cannot be read: {error}");
        let cause = if error.is_data() {
            BodyError::Invalid(detail)
        } else {
            BodyError::Malformed(detail)
        };
        HttpError {
            cause: Cause::Body(cause),
        }
    })
}

/// Whether `Content-Type` is `application/json` or a `+json` type, parameters ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::HttpError;

    /// Small enough for a service's handlers returning `Result<_, HttpError>` to pass clippy's
    /// `result_large_err` at its default threshold of 128 bytes.
    #[test]
    fn an_http_error_is_small_enough_to_return_by_value() {
        let size = std::mem::size_of::<HttpError>();
        assert!(size <= 32, "HttpError is {size} bytes");
    }
}
