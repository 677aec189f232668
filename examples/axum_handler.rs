//! A complete axum service on revkv, as the README's "Using the crate" shows it: `GET` answers
//! `304` to a client that has the current version, `PUT` replaces a note only with `If-Match`
//! (`428` without, `412` when stale), every failure is an RFC 9457 problem.
//!
//! `cargo run --features axum --example axum_handler`, then
//! `curl -i -X PUT localhost:3000/notes/n1 -H 'If-Match: "1"' -d 'new text'`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use revkv::http::axum::{no_store_by_default, problems};
use revkv::http::{HttpError, Policy, Preconditions, ReadOutcome, Validators};
use revkv::{AsyncCollection, Error, Store, Versioned};

type Notes = AsyncCollection<String>;

/// The note, or the error a missing one answers (`404`).
async fn read_note(notes: &Notes, id: &str) -> Result<Versioned<String>, HttpError> {
    let note = notes.get(id).await?;
    Ok(note.ok_or_else(|| Error::NotFound {
        collection: "notes".into(),
        key: id.into(),
    })?)
}

/// `GET /notes/{id}`: the note with its `ETag` and `Last-Modified`, or `304`.
async fn get_note(
    State(notes): State<Notes>,
    Path(id): Path<String>,
    preconditions: Preconditions,
) -> Result<(StatusCode, HeaderMap, String), HttpError> {
    let note = read_note(&notes, &id).await?;
    let validators = Validators::of(&note);
    match preconditions.evaluate_read(Some(validators))? {
        ReadOutcome::NotModified => Ok((
            StatusCode::NOT_MODIFIED,
            validators.headers(),
            String::new(),
        )),
        ReadOutcome::Proceed => Ok((StatusCode::OK, validators.headers(), note.value)),
    }
}

/// `PUT /notes/{id}` with `If-Match`: replaces the note if the client has seen its current
/// version; the answer's validators are those of the write itself.
async fn put_note(
    State(notes): State<Notes>,
    Path(id): Path<String>,
    preconditions: Preconditions,
    body: String,
) -> Result<(StatusCode, HeaderMap), HttpError> {
    if !preconditions.guards_write() {
        return Err(HttpError::precondition_required());
    }
    if body.trim().is_empty() {
        return Err(HttpError::invalid_body("a note needs some text"));
    }
    let (notes, id, body) = (&notes, &id, &body);
    let stored = preconditions
        .guard_update_async(
            || read_note(notes, id),
            |current| async move {
                let stored = notes.update_versioned(id, current.version, body.clone());
                Ok(stored.await?)
            },
        )
        .await?;
    Ok((StatusCode::NO_CONTENT, Validators::of(&stored).headers()))
}

fn app(notes: Notes) -> Router {
    Router::new()
        .route("/notes/{id}", get(get_note).put(put_note))
        .with_state(notes)
        .layer(from_fn_with_state(Policy::default(), problems))
        .layer(from_fn(no_store_by_default))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::temporary()?;
    let notes = store.collection::<String>("notes").open()?.to_async();
    notes.insert("n1", "first text".to_owned()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(notes)).await?;
    Ok(())
}
