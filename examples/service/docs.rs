//! Documents whose fields merge independently: a client that edited an older version sends
//! its whole edited document with the `version` it edited, and the service merges its change
//! into the current document instead of refusing it ("re-fetch, merge, re-apply", done by
//! `Collection::update_merge` with the version history of the last `DOC_HISTORY` versions).
//!
//! A field the client changed wins, unless someone else changed it too, differently: that is
//! the rule conflict `merge_conflict`, naming the field. An edit of a version the history no
//! longer holds cannot be merged: a version conflict with `current_version`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use revkv::Conflict;
use revkv::http::{Caching, HttpProblem, PROBLEM_JSON, Preconditions, json_body};

use super::model::{Doc, DocInput, DocView, doc_view, new_id};
use super::openapi::{ConditionalWriteFailures, RecordRead, WriteFailures};
use super::reply::Reply;
use super::{App, Outcome, bad_request, created, guarded_write, read, require_guard};

/// How many earlier versions of each document are kept to merge against.
pub const DOC_HISTORY: usize = 16;

/// `POST /docs {title, body, tags}`.
#[utoipa::path(
    post, path = "/docs", tag = "docs", params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    request_body(content = DocInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = DocView,
            headers(("Location" = String), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "A request with this Idempotency-Key is still running",
            body = HttpProblem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "While a request with this key runs"))),
        WriteFailures,
    ),
)]
pub async fn create_doc(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let doc = json_body::<DocInput>(&headers, &body)?.doc()?;
    let (docs, doc) = (&app.docs, &doc);
    app.post(&uri, &headers, &body, move |tx| {
        Box::pin(async move {
            let id = new_id("d_");
            let version = tx.insert(docs, &id, doc).await?;
            Ok(Ok(created(docs, &id, doc, version, doc_view)))
        })
    })
    .await
}

#[utoipa::path(
    get, path = "/docs/{id}", tag = "docs", params(("id" = String, Path), Preconditions),
    responses(
        (status = 200, description = "The record", body = DocView, headers(("ETag" = String),
            ("Last-Modified" = String), ("Cache-Control" = String, description = "no-cache"))),
        RecordRead,
    ),
)]
pub async fn get_doc(
    State(app): State<App>,
    Path(id): Path<String>,
    pre: Preconditions,
) -> Outcome {
    read(app.docs, id, &pre, Caching::Revalidate, doc_view).await
}

/// `PATCH /docs/{id} {title, body, tags, version}`: merges the client's edit of `version` into
/// the current document. With `If-Match` instead of `version`, replaces the document only if
/// it is still at that version (`412` otherwise), as RFC 9110 asks of `If-Match`.
#[utoipa::path(
    patch, path = "/docs/{id}", tag = "docs", params(("id" = String, Path), Preconditions),
    request_body(content = DocInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Merged or replaced", body = DocView, headers(("ETag" = String))),
        (status = 409, description = "A field changed differently by someone else (conflict: rule, code: merge_conflict), or the version edited is no longer kept (conflict: version)",
            body = HttpProblem, content_type = PROBLEM_JSON),
        ConditionalWriteFailures,
        WriteFailures,
    ),
)]
pub async fn edit_doc(
    State(app): State<App>,
    Path(id): Path<String>,
    pre: Preconditions,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let input = json_body::<DocInput>(&headers, &body)?;
    let mine = input.doc()?;
    let base = input.version;
    // A merge applies the edit to whatever version is current, so a precondition on the
    // current version would be ignored: refuse it rather than pretend to honour it.
    let conditional =
        pre.if_match.is_some() || pre.if_none_match.is_some() || pre.if_unmodified_since.is_some();
    if base.is_some() && conditional {
        return Err(bad_request(
            "send either version in the body, to merge your edit into the current document, \
             or If-Match, to replace only that version, not both",
        ));
    }
    require_guard(base, &pre)?;
    let docs = &app.docs;
    let (doc, version) = match base {
        Some(base) => {
            // The history is read blocking: a few microseconds on the embedded store.
            let history = docs.blocking();
            let merged = history.update_merge(&id, base, mine, |base, theirs, mine| {
                merge(base, theirs, mine).map_err(|conflict| conflict.at(docs.name(), &id))
            })?;
            (merged.value, merged.version)
        }
        None => {
            let (id, mine) = (&id, &mine);
            let version = guarded_write(&pre, docs, id, |current| async move {
                docs.update(id, current.version, mine).await
            })
            .await?;
            (mine.clone(), version)
        }
    };
    app.writes.flush().await?;
    Ok(Reply::json(StatusCode::OK, &doc_view(&id, &doc, version)).with_etag(version))
}

/// The client's edit (`mine`, made to `base`) applied to the current document (`theirs`),
/// field by field.
fn merge(base: &Doc, theirs: &Doc, mine: &Doc) -> Result<Doc, Conflict> {
    Ok(Doc {
        title: merge_field("title", &base.title, &theirs.title, &mine.title)?,
        body: merge_field("body", &base.body, &theirs.body, &mine.body)?,
        tags: merge_field("tags", &base.tags, &theirs.tags, &mine.tags)?,
    })
}

/// The client's value if only the client changed the field, the current one otherwise; a
/// conflict if both changed it to different values.
fn merge_field<T: PartialEq + Clone>(
    field: &str,
    base: &T,
    theirs: &T,
    mine: &T,
) -> Result<T, Conflict> {
    if mine == base || mine == theirs {
        Ok(theirs.clone())
    } else if theirs == base {
        Ok(mine.clone())
    } else {
        Err(Conflict::rule(
            "merge_conflict",
            format!(
                "the {field} was changed by someone else since the version you edited, and \
                 differently from your change; read the document again and re-apply your {field}"
            ),
        ))
    }
}
