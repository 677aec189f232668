//! RFC 9457 problem details: the catalogue of problem types and the rendered answer.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};
use problem_details::{JsonProblemDetails, ProblemDetails};
use serde::Serialize;

use super::Caching;
use crate::{ConflictKind, Version};

/// The media type of every problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem types revkv answers with. Each has a stable URI, relative to the service
/// (`/problems/<name>`), that clients can match on; see the module documentation for when
/// each is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// `/problems/version-conflict` (409): the version sent in the body is not the current one.
    VersionConflict,
    /// `/problems/precondition-failed` (412): `If-Match`, `If-None-Match` or
    /// `If-Unmodified-Since` does not hold.
    PreconditionFailed,
    /// `/problems/precondition-required` (428): the route only writes conditionally.
    PreconditionRequired,
    /// `/problems/already-exists` (409): a create found the key taken.
    AlreadyExists,
    /// `/problems/unique-violation` (409): a unique index already holds a value.
    UniqueViolation,
    /// `/problems/transition-not-allowed` (409): the state machine does not allow the change.
    TransitionNotAllowed,
    /// `/problems/rule-violation` (409): a business rule refused the write; see `code`.
    RuleViolation,
    /// `/problems/not-found` (404): no such record or route.
    NotFound,
    /// `/problems/method-not-allowed` (405): see the `Allow` header.
    MethodNotAllowed,
    /// `/problems/invalid-header` (400): a header does not follow its grammar.
    InvalidHeader,
    /// `/problems/bad-request` (400): the request line or path cannot be used.
    BadRequest,
    /// `/problems/invalid-key` (400): a key in the path is empty or too long.
    InvalidKey,
    /// `/problems/invalid-query` (400): a query parameter cannot be used, such as a page
    /// token issued for another list or a limit that is not a number.
    InvalidQuery,
    /// `/problems/malformed-body` (400): the body is not well-formed JSON.
    MalformedBody,
    /// `/problems/invalid-body` (422): well-formed JSON with missing or invalid members.
    InvalidBody,
    /// `/problems/payload-too-large` (413): the body or the stored value is too large.
    PayloadTooLarge,
    /// `/problems/unsupported-media-type` (415): the body is not `application/json`.
    UnsupportedMediaType,
    /// `/problems/history-compacted` (410): the change feed no longer holds the changes after
    /// the position asked for; see `oldest`.
    HistoryCompacted,
    /// `/problems/contention` (503): too many concurrent writers; retry after `Retry-After`.
    Contention,
    /// `/problems/storage-full` (503): the server's disk is short of space, so the write was
    /// refused and nothing of it stored; retry after `Retry-After`.
    StorageFull,
    /// `/problems/storage-unavailable` (503): the storage could not be reached for as long as
    /// a request waits (an etcd cluster without a quorum, say); retry after `Retry-After`.
    StorageUnavailable,
    /// `/problems/internal-error` (500): the server failed; the body says no more.
    InternalError,
}

impl ProblemKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [Self; 22] = [
        Self::VersionConflict,
        Self::PreconditionFailed,
        Self::PreconditionRequired,
        Self::AlreadyExists,
        Self::UniqueViolation,
        Self::TransitionNotAllowed,
        Self::RuleViolation,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::InvalidHeader,
        Self::BadRequest,
        Self::InvalidKey,
        Self::InvalidQuery,
        Self::MalformedBody,
        Self::InvalidBody,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::HistoryCompacted,
        Self::Contention,
        Self::StorageFull,
        Self::StorageUnavailable,
        Self::InternalError,
    ];

    /// The type URI, such as `/problems/version-conflict`.
    #[must_use]
    pub const fn uri(self) -> &'static str {
        match self {
            Self::VersionConflict => "/problems/version-conflict",
            Self::PreconditionFailed => "/problems/precondition-failed",
            Self::PreconditionRequired => "/problems/precondition-required",
            Self::AlreadyExists => "/problems/already-exists",
            Self::UniqueViolation => "/problems/unique-violation",
            Self::TransitionNotAllowed => "/problems/transition-not-allowed",
            Self::RuleViolation => "/problems/rule-violation",
            Self::NotFound => "/problems/not-found",
            Self::MethodNotAllowed => "/problems/method-not-allowed",
            Self::InvalidHeader => "/problems/invalid-header",
            Self::BadRequest => "/problems/bad-request",
            Self::InvalidKey => "/problems/invalid-key",
            Self::InvalidQuery => "/problems/invalid-query",
            Self::MalformedBody => "/problems/malformed-body",
            Self::InvalidBody => "/problems/invalid-body",
            Self::PayloadTooLarge => "/problems/payload-too-large",
            Self::UnsupportedMediaType => "/problems/unsupported-media-type",
            Self::HistoryCompacted => "/problems/history-compacted",
            Self::Contention => "/problems/contention",
            Self::StorageFull => "/problems/storage-full",
            Self::StorageUnavailable => "/problems/storage-unavailable",
            Self::InternalError => "/problems/internal-error",
        }
    }

    /// The short, fixed summary sent as `title`.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::VersionConflict => "The record has changed since that version",
            Self::PreconditionFailed => "A precondition does not hold",
            Self::PreconditionRequired => "This write must be conditional",
            Self::AlreadyExists => "The record already exists",
            Self::UniqueViolation => "A unique value is already taken",
            Self::TransitionNotAllowed => "The state machine does not allow this transition",
            Self::RuleViolation => "A business rule refused the request",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::InvalidHeader => "A header is malformed",
            Self::BadRequest => "Bad request",
            Self::InvalidKey => "The key is not valid",
            Self::InvalidQuery => "A query parameter is not valid",
            Self::MalformedBody => "The body is not well-formed JSON",
            Self::InvalidBody => "The body is not valid for this request",
            Self::PayloadTooLarge => "The content is too large",
            Self::UnsupportedMediaType => "The body must be application/json",
            Self::HistoryCompacted => "The change feed no longer holds that position",
            Self::Contention => "Too many concurrent writers",
            Self::StorageFull => "The server is out of storage space",
            Self::StorageUnavailable => "The server's storage is unavailable",
            Self::InternalError => "Internal server error",
        }
    }

    /// The status this kind is answered with (a policy may change it for
    /// [`ProblemKind::PreconditionFailed`]).
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::VersionConflict
            | Self::AlreadyExists
            | Self::UniqueViolation
            | Self::TransitionNotAllowed
            | Self::RuleViolation => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidHeader
            | Self::BadRequest
            | Self::InvalidKey
            | Self::InvalidQuery
            | Self::MalformedBody => StatusCode::BAD_REQUEST,
            Self::InvalidBody => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::HistoryCompacted => StatusCode::GONE,
            Self::Contention | Self::StorageFull | Self::StorageUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The kind for an error status that a framework answered without a problem body (an
    /// unknown route, a wrong method, a body over the limit), if the catalogue has one.
    #[must_use]
    pub fn for_status(status: StatusCode) -> Option<Self> {
        match status {
            StatusCode::BAD_REQUEST => Some(Self::BadRequest),
            StatusCode::NOT_FOUND => Some(Self::NotFound),
            StatusCode::METHOD_NOT_ALLOWED => Some(Self::MethodNotAllowed),
            StatusCode::PAYLOAD_TOO_LARGE => Some(Self::PayloadTooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(Self::UnsupportedMediaType),
            StatusCode::UNPROCESSABLE_ENTITY => Some(Self::InvalidBody),
            StatusCode::SERVICE_UNAVAILABLE => Some(Self::Contention),
            StatusCode::INTERNAL_SERVER_ERROR => Some(Self::InternalError),
            _ => None,
        }
    }
}

/// The extension members of a problem: what a client needs to resolve it without guessing.
/// Members that do not apply are left out of the body.
///
/// With the feature `openapi`, these are part of the schema of [`HttpProblem`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Members {
    /// The kind of conflict: `version`, `exists`, `unique`, `transition` or `rule`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub conflict: Option<&'static str>,
    /// The record's current version (send it as `If-Match: "<version>"` to write again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<Version>,
    /// The record's current state, for transition conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_state: Option<String>,
    /// The states the record may move to (or be created in), for transition conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// The unique index whose value is taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The key of the record holding the unique value; only when the policy reveals it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// The machine-readable code of a business rule, such as `out_of_stock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The request header that is malformed or whose condition failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The oldest position the change feed still holds, for a compacted history: read the
    /// current state again, then follow the feed from just before this position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<u64>,
}

impl Members {
    pub(crate) fn conflict(kind: ConflictKind) -> Self {
        Self {
            conflict: Some(kind.as_str()),
            ..Self::default()
        }
    }
}

/// A rendered problem: status, RFC 9457 body and the headers that go with it (such as
/// `Retry-After` or `Allow`). Built by [`Policy::render`](super::Policy::render) from an
/// [`HttpError`](super::HttpError), or directly for a service's own problem types.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpProblem {
    details: ProblemDetails<Members>,
    headers: HeaderMap,
}

impl HttpProblem {
    /// A problem of a service's own `problem_type` (an absolute URI or a relative reference
    /// such as `/problems/out-of-credit`), answered with `status`.
    #[must_use]
    pub fn new(status: StatusCode, problem_type: Uri, title: impl Into<String>) -> Self {
        Self {
            details: ProblemDetails::new()
                .with_type(problem_type)
                .with_status(status)
                .with_title(title)
                .with_extensions(Members::default()),
            headers: HeaderMap::new(),
        }
    }

    /// A problem of one of revkv's kinds, with the kind's status and title.
    #[must_use]
    pub fn of_kind(kind: ProblemKind) -> Self {
        Self::new(kind.status(), Uri::from_static(kind.uri()), kind.title())
    }

    /// A problem with only a status and its reason phrase as title, of type `about:blank`.
    #[must_use]
    pub fn plain(status: StatusCode) -> Self {
        Self {
            details: ProblemDetails::from_status_code(status).with_extensions(Members::default()),
            headers: HeaderMap::new(),
        }
    }

    /// Changes the status (the title stays).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.details.status = Some(status);
        self
    }

    /// Sets the human-readable explanation of this occurrence.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.details.detail = Some(detail.into());
        self
    }

    /// Sets the extension members.
    #[must_use]
    pub fn with_members(mut self, members: Members) -> Self {
        self.details.extensions = members;
        self
    }

    /// Sets `instance`, the URI of this occurrence (usually the request's path).
    #[must_use]
    pub fn with_instance(mut self, instance: Uri) -> Self {
        self.details.instance = Some(instance);
        self
    }

    /// Sets `instance` from a request path; a path that is not a valid URI reference (ASCII,
    /// no scheme) is left out rather than sent mangled.
    #[must_use]
    pub fn with_instance_path(self, path: &str) -> Self {
        match Uri::try_from(path) {
            Ok(uri) if path.is_ascii() && uri.scheme().is_none() => self.with_instance(uri),
            _ => self,
        }
    }

    /// Adds a header to the answer (for example `Retry-After`).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.details
            .status
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problem details (standard members and [`Members`]).
    #[must_use]
    pub const fn details(&self) -> &ProblemDetails<Members> {
        &self.details
    }

    /// The headers that go with the problem, besides `Content-Type`.
    #[must_use]
    pub const fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, as `application/problem+json`.
    #[must_use]
    pub fn to_json(&self) -> String {
        JsonProblemDetails::from(self.details.clone())
            .to_body_string()
            // The members are strings, numbers and URIs, which always serialize.
            .unwrap_or_else(|_| format!(r#"{{"status":{}}}"#, self.status().as_u16()))
    }

    /// The whole answer as an `http::Response`, for any framework built on the `http` crate,
    /// with `Cache-Control: no-store` unless the problem sets its own: a problem concerns one
    /// request, and some error statuses (`404`, `405`, `410`) are otherwise cacheable.
    #[must_use]
    pub fn into_http_response(self) -> Response<String> {
        let body = self.to_json();
        let mut response = Response::new(body);
        *response.status_mut() = self.status();
        *response.headers_mut() = self.headers;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers
            .entry(CACHE_CONTROL)
            .or_insert(Caching::NoStore.header_value());
        response
    }
}

/// With the feature `openapi`, `HttpProblem` is the OpenAPI schema (named `Problem`) of the
/// body of every problem revkv renders, for a service's `utoipa` document:
/// `(status = 409, body = HttpProblem, content_type = PROBLEM_JSON)`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for HttpProblem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AllOfBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type,
        };
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        // Type URIs and instances are relative references such as `/problems/not-found`.
        let reference = |description: &str| {
            text(description).format(Some(SchemaFormat::Custom("uri-reference".into())))
        };
        let standard = ObjectBuilder::new()
            .property(
                "type",
                reference("the problem type: one of the stable /problems/ URIs"),
            )
            .property("title", text("a short summary of the problem type"))
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Integer))
                    .minimum(Some(400))
                    .maximum(Some(599))
                    .description(Some("the HTTP status of the answer")),
            )
            .property(
                "detail",
                text("what happened this time, and what to do about it"),
            )
            .property("instance", reference("the request's path"))
            .required("type")
            .required("title")
            .required("status");
        AllOfBuilder::new()
            .item(standard)
            .item(<Members as utoipa::PartialSchema>::schema())
            .description(Some("An RFC 9457 problem: application/problem+json"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for HttpProblem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Members as utoipa::ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_parsable_uri_a_title_and_an_error_status() {
        let mut uris = std::collections::HashSet::new();
        for kind in ProblemKind::ALL {
            let uri = Uri::from_static(kind.uri());
            assert!(uri.scheme().is_none() && uri.path().starts_with("/problems/"));
            assert!(uris.insert(kind.uri()), "{kind:?} repeats a URI");
            assert!(!kind.title().is_empty());
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
        }
    }

    #[test]
    fn kinds_for_framework_statuses_keep_the_status() {
        for status in [400, 404, 405, 413, 415, 422, 500, 503] {
            let status = StatusCode::from_u16(status).expect("valid");
            let kind = ProblemKind::for_status(status).expect("in the catalogue");
            assert_eq!(kind.status(), status);
        }
        assert_eq!(ProblemKind::for_status(StatusCode::IM_A_TEAPOT), None);
    }

    #[test]
    fn the_body_has_the_standard_and_the_applicable_extension_members() {
        let problem = HttpProblem::of_kind(ProblemKind::RuleViolation)
            .with_detail("no stock left")
            .with_instance_path("/orders")
            .with_members(Members {
                code: Some("out_of_stock".into()),
                ..Members::conflict(ConflictKind::Rule)
            });
        let body: serde_json::Value = serde_json::from_str(&problem.to_json()).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "/problems/rule-violation",
                "title": "A business rule refused the request",
                "status": 409,
                "detail": "no stock left",
                "instance": "/orders",
                "conflict": "rule",
                "code": "out_of_stock",
            })
        );
        let response = problem.into_http_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }

    #[test]
    fn instance_paths_that_are_not_uri_references_are_left_out() {
        for path in ["/a b", "http://elsewhere/x", "", "/\u{e9}"] {
            let problem = HttpProblem::plain(StatusCode::NOT_FOUND).with_instance_path(path);
            assert_eq!(problem.details().instance, None, "{path:?}");
        }
    }
}
