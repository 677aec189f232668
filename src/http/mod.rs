//! The HTTP adapter (feature `http`): revkv's conflicts as correct HTTP answers, on the types
//! of the [`http`] crate, so any framework built on them can use it; the `axum` feature adds
//! first-class axum integration in the module `revkv::http::axum`.
//!
//! # What it does
//!
//! - **Validators.** A record's [`Version`](crate::Version) is its strong `ETag` ([`etag`],
//!   `"17"`), its modification time its `Last-Modified` ([`http_date`], [`Validators`]).
//! - **Preconditions.** [`parse_preconditions`] reads `If-Match` (lists, `*`),
//!   `If-None-Match` (lists, `*` for create-only), `If-Unmodified-Since` and
//!   `If-Modified-Since`; a malformed entity-tag list is a [`HeaderError`] (`400`), never a
//!   panic, and an invalid date is ignored, as RFC 9110 §13.1.3-4 require.
//!   [`Preconditions::evaluate_read`] and [`Preconditions::evaluate_write`] follow the order
//!   of RFC 9110 §13.2.2 (strong comparison for `If-Match`, weak for `If-None-Match`), and
//!   [`Preconditions::guard_write`] applies them atomically to a compare-and-swap write.
//! - **No lost update through a precondition.** Only `If-Match` with entity-tags makes a write
//!   conditional ([`Preconditions::guards_write`]); a route that requires conditional writes
//!   answers anything less with `428`. `If-Match: *` holds for any version, `If-None-Match:
//!   "4"` for all but one, and a date cannot tell two writes of one second apart, so two
//!   writers sending any of them would both succeed. Dates are still evaluated when sent, and
//!   against the exact modification time, not the whole second `Last-Modified` shows: a
//!   record changed after the named second began fails `If-Unmodified-Since` and is not
//!   `304` for `If-Modified-Since`, so neither ever answers for a stale state.
//! - **Caching.** Every answer says how it may be cached (RFC 9111): [`Validators::headers`]
//!   sends `Cache-Control: no-cache` with a record (revalidated by its `ETag`; [`Caching`] has
//!   the private variant), problems carry `no-store`, and the axum middleware
//!   `no_store_by_default` gives `no-store` to every other answer that does not say.
//! - **Problems.** Every failure becomes an RFC 9457 `application/problem+json` answer
//!   ([`HttpProblem`]) with `type`, `title`, `status`, `detail`, `instance` and the
//!   extension members ([`Members`]) a client needs to resolve it: `conflict` (`version`,
//!   `exists`, `unique`, `transition`, `rule`), `current_version`, `current_state`,
//!   `allowed`, `index`, `code`, `header`, and `oldest` (the oldest position a compacted change
//!   feed still holds).
//! - **Policy.** [`Policy`] decides the status of each failure and renders [`HttpError`]s.
//! - **Lists.** [`ListRequest`] reads a list route's `limit` and `page_token` as Google's
//!   AIP-158 defines them and applies them to a [`Query`](crate::Query); [`next_link`] makes
//!   the `Link: <...>; rel="next"` header (RFC 8288) of the next page.
//!
//! # Status policy
//!
//! | failure | status | `type` |
//! | --- | --- | --- |
//! | `If-Match` / `If-Unmodified-Since` / `If-None-Match` does not hold on a write | 412 (409 with [`Policy::precondition_failed_as_conflict`]) | `/problems/precondition-failed` |
//! | `If-None-Match` matches, or (without it) `If-Modified-Since` holds, on `GET`/`HEAD` | 304, no body | — |
//! | a route requires conditional writes and got no `If-Match` with entity-tags (`*`, `If-None-Match` and dates do not count) | 428 | `/problems/precondition-required` |
//! | stale version in the body ([`Conflict::VersionMismatch`](crate::Conflict::VersionMismatch)) | 409 | `/problems/version-conflict` |
//! | merge base no longer in the history ([`Conflict::BaseNotRetained`](crate::Conflict::BaseNotRetained)) | 409 | `/problems/version-conflict` |
//! | key taken by a create ([`Conflict::AlreadyExists`](crate::Conflict::AlreadyExists)) | 409 | `/problems/already-exists` |
//! | unique value taken ([`Conflict::Unique`](crate::Conflict::Unique)) | 409 | `/problems/unique-violation` |
//! | transition or initial state not allowed | 409 | `/problems/transition-not-allowed` |
//! | business rule ([`Conflict::Rule`](crate::Conflict::Rule)) | 409 | `/problems/rule-violation` |
//! | record not found ([`Error::NotFound`](crate::Error::NotFound)) | 404 | `/problems/not-found` |
//! | malformed `If-Match` or `If-None-Match` | 400 | `/problems/invalid-header` |
//! | invalid `If-Modified-Since` or `If-Unmodified-Since` | ignored (RFC 9110 §13.1.3-4) | — |
//! | empty or too long key | 400 | `/problems/invalid-key` |
//! | page token of another list, or malformed ([`Error::InvalidPageToken`](crate::Error::InvalidPageToken)); a list's bad `limit` ([`ListRequest`]) | 400 | `/problems/invalid-query` |
//! | body not JSON / not `application/json` (with `Accept`, and `Accept-Patch` on `PATCH`) / not fitting | 400 / 415 / 422 | `/problems/malformed-body`, `/problems/unsupported-media-type`, `/problems/invalid-body` |
//! | unique value too long for its index | 422 | `/problems/invalid-body` |
//! | value over the store's limit | 413 | `/problems/payload-too-large` |
//! | change feed position no longer retained ([`Error::HistoryCompacted`](crate::Error::HistoryCompacted)) | 410 | `/problems/history-compacted` |
//! | transaction contention ([`Error::Contention`](crate::Error::Contention)) | 503 + `Retry-After` | `/problems/contention` |
//! | disk short of space, write refused ([`Error::DiskFull`](crate::Error::DiskFull)) | 503 + `Retry-After` | `/problems/storage-full` |
//! | storage unreachable past its deadline ([`Error::Unavailable`](crate::Error::Unavailable)) | 503 + `Retry-After` | `/problems/storage-unavailable` |
//! | storage, corruption, schema, a missing change feed and other server failures | 500, no internals | `/problems/internal-error` |
//!
//! Type URIs are relative references, resolved against the service's own address; they are
//! stable and listed in [`ProblemKind`]. A unique-violation problem names the index but not
//! the record holding the value, unless [`Policy::reveal_unique_holder`] is set.
//!
//! # Example
//!
//! ```
//! use revkv::http::{Policy, json_body};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct User { email: String }
//!
//! let store = revkv::Store::temporary()?;
//! let users = store.collection::<User>("users").unique("email", |u: &User| u.email.clone()).open()?;
//! users.insert("u1", User { email: "a@example.com".into() })?;
//!
//! let taken = users.insert("u2", User { email: "a@example.com".into() }).unwrap_err();
//! let problem = Policy::default().render(&taken.into()).with_instance_path("/users");
//! let body: serde_json::Value = serde_json::from_str(&problem.to_json())?;
//! assert_eq!(body["status"], 409);
//! assert_eq!(body["type"], "/problems/unique-violation");
//! assert_eq!((body["conflict"].as_str(), body["index"].as_str()), (Some("unique"), Some("email")));
//! assert!(body.get("holder").is_none(), "the holder's key stays hidden");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "axum")]
pub mod axum;
mod caching;
mod error;
mod etag;
mod pages;
mod policy;
mod preconditions;
mod problem;

pub use caching::Caching;
pub use error::{HttpError, json_body};
pub use etag::{EntityTag, Validators, etag, http_date};
pub use pages::{ListRequest, next_link};
pub use policy::Policy;
pub use preconditions::{
    HeaderError, PreconditionFailed, Preconditions, ReadOutcome, TagCondition, parse_preconditions,
};
pub use problem::{HttpProblem, Members, PROBLEM_JSON, ProblemKind};
