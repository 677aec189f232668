//! The service's OpenAPI 3.1 document, served at `GET /openapi.json`. It is generated from the
//! handlers' `#[utoipa::path]` attributes, and the router registers every handler through
//! them (`router` in `app.rs`), so no route is served undocumented and no documented route is
//! missing. Problems are documented with revkv's schema of them (feature `openapi`).

use std::sync::Arc;

use axum::Extension;
use axum::http::StatusCode;
use revkv::http::{HttpProblem, PROBLEM_JSON};
use utoipa::openapi::OpenApi as Document;
use utoipa::{IntoResponses, OpenApi};

use super::Outcome;
use super::reply::Reply;

// The answers that several routes share, each described once. Handlers answer `Reply` and
// `HttpError`; these enums only describe those answers to the document, so none is built.

/// What a `GET` of one record answers besides the record itself.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers in the OpenAPI document; never built"
)]
pub enum RecordRead {
    /// The client has the current version: a matching If-None-Match or, without one, an
    /// If-Modified-Since the record has not changed since.
    #[response(status = 304, headers(
        ("ETag" = String, description = "The record's version"),
        ("Last-Modified" = String, description = "When it last changed"),
        ("Cache-Control" = String, description = "As the 200 answer says"),
    ))]
    NotModified,
    /// The path is not UTF-8, or If-Match or If-None-Match is malformed.
    #[response(status = 400, content_type = PROBLEM_JSON)]
    BadRequest(HttpProblem),
    /// No record is there (a key too long to be stored names none either).
    #[response(status = 404, content_type = PROBLEM_JSON)]
    NotFound(HttpProblem),
    /// If-Match or If-Unmodified-Since does not hold: `current_version` is the version to read.
    #[response(status = 412, content_type = PROBLEM_JSON)]
    PreconditionFailed(HttpProblem),
    /// The server failed.
    #[response(status = 500, content_type = PROBLEM_JSON)]
    Internal(HttpProblem),
}

/// What every write with a JSON body may answer besides its own outcomes.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers in the OpenAPI document; never built"
)]
pub enum WriteFailures {
    /// Malformed JSON, a path that is not UTF-8, or a malformed If-Match, If-None-Match or
    /// Idempotency-Key.
    #[response(status = 400, content_type = PROBLEM_JSON)]
    BadRequest(HttpProblem),
    /// The body is over 16 KiB.
    #[response(status = 413, content_type = PROBLEM_JSON)]
    TooLarge(HttpProblem),
    /// The body is not sent as application/json.
    #[response(status = 415, content_type = PROBLEM_JSON, headers(
        ("Accept" = String, description = "application/json"),
        ("Accept-Patch" = String, description = "application/json, on PATCH"),
    ))]
    NotJson(HttpProblem),
    /// JSON that does not fit the request (see its schema), or an Idempotency-Key sent before
    /// with another body.
    #[response(status = 422, content_type = PROBLEM_JSON)]
    Invalid(HttpProblem),
    /// The server failed.
    #[response(status = 500, content_type = PROBLEM_JSON)]
    Internal(HttpProblem),
    /// Too many concurrent writers, or the server's disk is full: retry after Retry-After.
    #[response(status = 503, content_type = PROBLEM_JSON, headers(
        ("Retry-After" = u32, description = "Seconds to wait before a retry"),
    ))]
    Unavailable(HttpProblem),
}

/// What a write of an existing record answers when the record or the request's version does
/// not fit: with `WriteFailures`, the statuses of `PUT`, `DELETE` and `PATCH`.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers in the OpenAPI document; never built"
)]
pub enum ConditionalWriteFailures {
    /// No record is there.
    #[response(status = 404, content_type = PROBLEM_JSON)]
    NotFound(HttpProblem),
    /// If-Match, If-None-Match or If-Unmodified-Since does not hold: `current_version` is the
    /// version to read.
    #[response(status = 412, content_type = PROBLEM_JSON)]
    PreconditionFailed(HttpProblem),
    /// Neither If-Match with entity-tags nor version in the body: If-Match: *, If-None-Match
    /// and dates cannot tell two versions apart, so they do not make a write conditional.
    #[response(status = 428, content_type = PROBLEM_JSON)]
    PreconditionRequired(HttpProblem),
}

/// What the document says of the service as a whole; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(info(
    title = "revkv example shop",
    description = "Users, items, orders and documents on revkv: every conflict is an RFC 9457 \
                   problem with the status RFC 9110 gives it. Writes that replace a record need \
                   If-Match with the ETag last read (or version in the body); reads answer 304 \
                   for a client that has the current version.",
    license(name = "MIT OR Apache-2.0"),
))]
pub struct ApiDoc;

/// The document as the router built it, shared by every request for it.
pub type Shared = Arc<Document>;

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)),
)]
pub async fn document(Extension(document): Extension<Shared>) -> Outcome {
    Ok(Reply::json(StatusCode::OK, document.as_ref()))
}
