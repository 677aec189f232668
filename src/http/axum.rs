//! First-class axum integration (feature `axum`): handlers return [`HttpError`], take
//! [`Preconditions`] as an extractor, and one middleware, [`problems`], renders every failure
//! under the service's [`Policy`], with the request path as `instance`. A second,
//! [`read_body_first`], keeps connections alive when a request is refused before its body
//! is read; a third, [`no_store_by_default`], keeps shared caches from storing answers that do
//! not say how they may be cached.
//!
//! Handlers await the [`AsyncCollection`](crate::AsyncCollection): no `spawn_blocking`.
//!
//! ```no_run
//! use axum::extract::{Path, State};
//! use axum::middleware::from_fn_with_state;
//! use axum::response::{IntoResponse, Response};
//! use axum::routing::get;
//! use revkv::http::{HttpError, Policy, Preconditions, ReadOutcome, Validators};
//! use revkv::{AsyncCollection, Error};
//!
//! fn missing(id: &str) -> Error {
//!     Error::NotFound { collection: "docs".into(), key: id.into() }
//! }
//!
//! async fn get_doc(
//!     State(docs): State<AsyncCollection<String>>,
//!     Path(id): Path<String>,
//!     preconditions: Preconditions,
//! ) -> Result<Response, HttpError> {
//!     let doc = docs.get(&id).await?.ok_or_else(|| missing(&id))?;
//!     let validators = Validators::of(&doc);
//!     Ok(match preconditions.evaluate_read(Some(validators))? {
//!         ReadOutcome::NotModified => {
//!             (http::StatusCode::NOT_MODIFIED, validators.headers()).into_response()
//!         }
//!         ReadOutcome::Proceed => (validators.headers(), doc.value).into_response(),
//!     })
//! }
//!
//! /// Replaces the document only at the version `If-Match` names: `428` without one, `412`
//! /// when it is stale, `409` when another write got in between.
//! async fn put_doc(
//!     State(docs): State<AsyncCollection<String>>,
//!     Path(id): Path<String>,
//!     preconditions: Preconditions,
//!     body: String,
//! ) -> Result<Response, HttpError> {
//!     if !preconditions.guards_write() {
//!         return Err(HttpError::precondition_required());
//!     }
//!     let (docs, id, body) = (&docs, &id, &body);
//!     let version = preconditions
//!         .guard_write_async(
//!             || docs.get(id),
//!             |current| async move {
//!                 let current = current.ok_or_else(|| missing(id))?;
//!                 docs.update(id, current.version, body).await
//!             },
//!         )
//!         .await?;
//!     Ok(format!("stored as version {version}").into_response())
//! }
//!
//! # fn main() -> revkv::Result<()> {
//! let store = revkv::Store::temporary()?;
//! let docs = store.collection::<String>("docs").open()?.to_async();
//! let app: axum::Router = axum::Router::new()
//!     .route("/docs/{id}", get(get_doc).put(put_doc))
//!     .with_state(docs)
//!     .layer(from_fn_with_state(64 * 1024, revkv::http::axum::read_body_first))
//!     .layer(from_fn_with_state(Policy::default(), revkv::http::axum::problems))
//!     .layer(axum::middleware::from_fn(revkv::http::axum::no_store_by_default));
//! # Ok(()) }
//! ```

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode};

use super::problem::PROBLEM_JSON;
use super::{
    Caching, HttpError, HttpProblem, Policy, Preconditions, ProblemKind, parse_preconditions,
};

/// `Accept-Patch` (RFC 5789 §3.1), which the `http` crate does not name.
const ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");

/// The most of a framework's plain-text error body that becomes a problem's `detail`.
const PLAIN_DETAIL_LIMIT: usize = 1024;

/// An error carried in its response until [`problems`] renders it under the service's policy.
#[derive(Clone)]
struct Unrendered(Arc<HttpError>);

impl IntoResponse for HttpError {
    /// Renders under [`Policy::default`]; the [`problems`] middleware, when installed,
    /// renders it again under the service's policy and adds `instance`.
    fn into_response(self) -> Response {
        let (parts, body) = Policy::default()
            .render(&self)
            .into_http_response()
            .into_parts();
        let mut response = Response::from_parts(parts, Body::from(body));
        response.extensions_mut().insert(Unrendered(Arc::new(self)));
        response
    }
}

impl IntoResponse for HttpProblem {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = HttpError;

    /// Parses the precondition headers; a malformed one is answered with `400`.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        Ok(parse_preconditions(&parts.headers)?)
    }
}

/// Middleware that reads each request body in full, up to `limit` bytes, before routing;
/// a longer body is answered with `413` (a problem under [`problems`]). Without it, an
/// answer given before a handler reads the body (to a malformed precondition header, say)
/// leaves the body unread, and hyper then closes the keep-alive connection under the client's
/// next request: always when the client waits for `100 Continue` before it sends the body (as
/// curl does for larger bodies), otherwise when the body has not all arrived yet. Install it
/// inside [`problems`], with
/// `.layer(axum::middleware::from_fn_with_state(limit, read_body_first))`.
pub async fn read_body_first(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // Over the limit (or cut off by the client, who no longer listens).
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    }
}

/// Middleware that answers every failure with an `application/problem+json` body:
/// [`HttpError`]s returned by handlers are rendered under `policy`, and the framework's own
/// plain error answers (unknown route `404`, wrong method `405` with `Allow`, body over the
/// limit `413`, rejected extractors) become problems of the matching [`ProblemKind`]. The
/// request path is set as `instance`; a `PATCH` refused with `415` says in `Accept-Patch` that
/// it takes `application/json` (RFC 5789 §2.2), the media type [`json_body`](super::json_body)
/// reads. Install it outermost with
/// `.layer(axum::middleware::from_fn_with_state(policy, problems))`.
pub async fn problems(State(policy): State<Policy>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let problem = if let Some(Unrendered(error)) = response.extensions().get::<Unrendered>() {
        policy.render(error)
    } else if is_unexplained_error(&response) {
        from_plain(response, &method).await
    } else {
        return response;
    };
    let mut problem = if problem.details().instance.is_none() {
        problem.with_instance_path(&path)
    } else {
        problem
    };
    if method == Method::PATCH
        && problem.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
        && !problem.headers().contains_key(ACCEPT_PATCH)
    {
        problem = problem.with_header(ACCEPT_PATCH, HeaderValue::from_static("application/json"));
    }
    let (parts, body) = problem.into_http_response().into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// Middleware that sends `Cache-Control: no-store` ([`Caching::NoStore`]) with every answer
/// that does not say how it may be cached, so that a handler that forgets cannot have a
/// shared cache serve one client's answer to another, or a stale one. Records answered with
/// [`Validators::headers`](super::Validators::headers) say `no-cache` and keep it. Install it
/// with `.layer(axum::middleware::from_fn(no_store_by_default))`.
pub async fn no_store_by_default(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(Caching::NoStore.header_value());
    response
}

fn is_unexplained_error(response: &Response) -> bool {
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    (response.status().is_client_error() || response.status().is_server_error()) && !is_problem
}

/// A problem for a plain error answer, keeping its status and headers (such as `Allow`).
async fn from_plain(response: Response, method: &Method) -> HttpProblem {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let mut problem = ProblemKind::for_status(status)
        .map_or_else(|| HttpProblem::plain(status), HttpProblem::of_kind);
    let detail = if status.is_client_error() {
        let text = to_bytes(body, PLAIN_DETAIL_LIMIT)
            .await
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .filter(|text| !text.trim().is_empty());
        text.unwrap_or_else(|| client_error_detail(status, method))
    } else {
        // A server error's text may describe internals: say nothing more than the status.
        "the server failed to complete the request".to_owned()
    };
    problem = problem.with_detail(detail);
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            problem = problem.with_header(name.clone(), value.clone());
        }
    }
    problem
}

fn client_error_detail(status: StatusCode, method: &Method) -> String {
    match status {
        StatusCode::NOT_FOUND => "no resource is at this path".to_owned(),
        // axum adds `Allow` after the middleware has run, so the detail points to it.
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("{method} is not supported here; the Allow header lists the methods that are")
        }
        _ => status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned(),
    }
}
