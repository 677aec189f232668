//! The example service's routes: users, items, orders and documents on revkv, the change feed
//! and the conflict statistics, every failure answered as an RFC 9457 problem. `main.rs` serves
//! it; the tests in `tests/http_*.rs` include this file to drive it over real HTTP.
//!
//! Handlers await revkv's async API (`AsyncCollection`, `AsyncStore`): no store call blocks a
//! runtime thread, and none needs `spawn_blocking`. Every write is flushed to disk before it
//! is answered (`AsyncStore::flush`, whose `fdatasync` runs on a thread of the store's).
//!
//! Two things expire by the store's time to live, removed by its sweeper: an unpaid order's
//! hold on stock (`Settings::hold`) and the answers kept for idempotency keys
//! (`Settings::idempotency_ttl`).

#[path = "changes.rs"]
mod changes;
#[path = "docs.rs"]
pub mod docs;
#[path = "idempotency.rs"]
pub mod idempotency;
#[path = "lists.rs"]
mod lists;
#[path = "metrics.rs"]
mod metrics;
#[path = "model.rs"]
mod model;
#[path = "openapi.rs"]
mod openapi;
#[path = "orders.rs"]
mod orders;
#[path = "reply.rs"]
mod reply;
#[path = "stats.rs"]
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::{Extension, Router};
use futures::future::BoxFuture;
use revkv::http::axum::{no_store_by_default, problems, read_body_first};
use revkv::http::{
    Caching, HttpError, HttpProblem, PROBLEM_JSON, Policy, Preconditions, ProblemKind, ReadOutcome,
    Validators, json_body,
};
use revkv::{AsyncCollection, AsyncStore, AsyncTransaction, Store, Version, Versioned};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::docs::DOC_HISTORY;
use self::idempotency::{Admission, IdempotencyKeys};
use self::model::{
    Doc, Item, ItemInput, ItemView, ORDER_TRANSITIONS, Order, User, UserInput, UserView,
    VersionInput, item_view, new_id, user_view,
};
use self::openapi::{ConditionalWriteFailures, RecordRead, WriteFailures};
use self::orders::return_stock;
use self::reply::Reply;

/// The largest request body accepted; a larger one is answered with `413`.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The collections the API serves (and `GET /changes` shows).
const USERS: &str = "users";
const ITEMS: &str = "items";
const ORDERS: &str = "orders";
const DOCS: &str = "docs";

/// What a request's transaction decided: an answer, or a refusal that changes nothing.
type Outcome = Result<Reply, HttpError>;

/// How long what the service keeps for a while lasts.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long a new order holds its stock: unless it is paid or cancelled by then, it
    /// expires and its stock returns.
    pub hold: Duration,
    /// How long the answer to an `Idempotency-Key` is kept.
    pub idempotency_ttl: Duration,
}

impl Default for Settings {
    /// Holds of 15 minutes; idempotency keys for 24 hours.
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(15 * 60),
            idempotency_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The service's collections. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    writes: AsyncStore,
    users: AsyncCollection<User>,
    items: AsyncCollection<Item>,
    orders: AsyncCollection<Order>,
    docs: AsyncCollection<Doc>,
    hold: Duration,
    pub keys: IdempotencyKeys,
}

impl App {
    /// Opens the service's collections in `store`. Expired holds and keys are removed by the
    /// store's sweeper (`StoreBuilder::sweep_every`) or `Store::sweep_expired`.
    pub fn open(store: Store, settings: Settings) -> revkv::Result<Self> {
        metrics::install();
        let users = store
            .collection::<User>(USERS)
            .unique("username", |u: &User| u.username.clone())
            .unique("email", |u: &User| u.email.to_lowercase())
            .open()?;
        let items = store.collection::<Item>(ITEMS).open()?;
        let restock = items.clone();
        let orders = store
            .collection::<Order>(ORDERS)
            .index("state", |o: &Order| o.status.clone())
            .states(|o: &Order| o.status.clone(), ORDER_TRANSITIONS)
            .initial_states(["pending"])
            // A lapsed hold returns its stock in the transaction that removes the order.
            .on_expiry(move |tx, _id, order: &Order| return_stock(tx, &restock, order))
            .open()?;
        let docs = store.collection::<Doc>(DOCS).history(DOC_HISTORY).open()?;
        let keys = IdempotencyKeys::open(&store, settings.idempotency_ttl)?;
        Ok(Self {
            writes: store.to_async(),
            store,
            users: users.to_async(),
            items: items.to_async(),
            orders: orders.to_async(),
            docs: docs.to_async(),
            hold: settings.hold,
            keys,
        })
    }

    /// Runs a POST: admits it by its `Idempotency-Key`, runs `effect` in one transaction
    /// together with recording its answer, and makes both durable before answering.
    async fn post<'a, E>(
        &'a self,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        effect: E,
    ) -> Outcome
    where
        E: for<'t> Fn(&'t mut AsyncTransaction<'a>) -> BoxFuture<'t, revkv::Result<Outcome>>
            + Send
            + Sync
            + 'a,
    {
        let key = idempotency::key(headers)?;
        let request = idempotency::fingerprint(uri, body);
        let claim = match self.keys.admit(key, request).await? {
            Admission::Replay(reply) => return Ok(reply),
            Admission::Run(claim) => claim,
        };
        // Each run's future owns what it uses: it may outlive this call's locals.
        let effect = Arc::new(effect);
        let outcome = self
            .writes
            .transaction(|tx| {
                let (effect, keys, claim) = (Arc::clone(&effect), self.keys.clone(), claim.clone());
                Box::pin(async move {
                    let outcome = effect(tx).await?;
                    if let (Ok(reply), Some(claim)) = (&outcome, &claim) {
                        keys.complete(tx, claim, reply).await?;
                    }
                    Ok(outcome)
                })
            })
            .await;
        match outcome.unwrap_or_else(|error| Err(error.into())) {
            Ok(reply) => {
                self.writes.flush().await?;
                Ok(reply)
            }
            Err(refused) => {
                if let Some(claim) = claim {
                    self.keys.release(claim).await;
                }
                Err(refused)
            }
        }
    }
}

/// The service's routes, answering failures under `policy`, and its OpenAPI document, built
/// from the same handlers.
pub fn router(app: App, policy: Policy) -> Router {
    let (routes, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(create_user, lists::list_users))
        .routes(routes!(get_user, replace_user, delete_user))
        .routes(routes!(create_item))
        .routes(routes!(get_item))
        .routes(routes!(orders::create_order, lists::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::transition_order))
        .routes(routes!(docs::create_doc))
        .routes(routes!(docs::get_doc, docs::edit_doc))
        .routes(routes!(changes::changes))
        .routes(routes!(stats::stats))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::document))
        .with_state(app)
        .split_for_parts();
    routes
        .layer(Extension(Arc::new(document)))
        .layer(from_fn_with_state(BODY_LIMIT, read_body_first))
        .layer(from_fn_with_state(policy, problems))
        .layer(from_fn(no_store_by_default))
}

/// `POST /users`: registers a user under a new id.
#[utoipa::path(
    post, path = "/users", tag = "users", params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    request_body(content = UserInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = UserView,
            headers(("Location" = String), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The username, or the e-mail in any case, is taken (conflict: unique); or a request with this Idempotency-Key is still running",
            body = HttpProblem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "While a request with this key runs"))),
        WriteFailures,
    ),
)]
async fn create_user(State(app): State<App>, uri: Uri, headers: HeaderMap, body: Bytes) -> Outcome {
    let user = json_body::<UserInput>(&headers, &body)?.user()?;
    let (users, user) = (&app.users, &user);
    app.post(&uri, &headers, &body, move |tx| {
        Box::pin(async move {
            let id = new_id("u_");
            let version = tx.insert(users, &id, user).await?;
            Ok(Ok(created(users, &id, user, version, user_view)))
        })
    })
    .await
}

/// A user carries an e-mail address, which only the client's own cache may keep.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users", params(("id" = String, Path), Preconditions),
    responses(
        (status = 200, description = "The record", body = UserView, headers(("ETag" = String),
            ("Last-Modified" = String), ("Cache-Control" = String, description = "private, no-cache"))),
        RecordRead,
    ),
)]
async fn get_user(State(app): State<App>, Path(id): Path<String>, pre: Preconditions) -> Outcome {
    read(app.users, id, &pre, Caching::PrivateRevalidate, user_view).await
}

/// `PUT /users/{id}`: replaces the user if it is still at the version the client read, sent
/// as `If-Match` (`412` when stale) or as `version` in the body (`409` when stale). The answer
/// has no `ETag`: what is stored differs from what was sent (trimmed, with `id` and `version`),
/// and RFC 9110 §9.3.4 then forbids one; the body's `version` is the one to send next.
#[utoipa::path(
    put, path = "/users/{id}", tag = "users", params(("id" = String, Path), Preconditions),
    request_body(content = UserInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The user as stored; no ETag (RFC 9110 9.3.4)", body = UserView),
        (status = 409, description = "The body's version is stale (conflict: version), or the username or e-mail is taken (conflict: unique)",
            body = HttpProblem, content_type = PROBLEM_JSON),
        ConditionalWriteFailures,
        WriteFailures,
    ),
)]
async fn replace_user(
    State(app): State<App>,
    Path(id): Path<String>,
    pre: Preconditions,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let input = json_body::<UserInput>(&headers, &body)?;
    let user = input.user()?;
    let body_version = input.version;
    require_guard(body_version, &pre)?;
    let (users, id, user) = (&app.users, &id, &user);
    let version = guarded_write(&pre, users, id, |current| async move {
        let expected = body_version.unwrap_or(current.version);
        users.update(id, expected, user).await
    })
    .await?;
    app.writes.flush().await?;
    Ok(Reply::json(StatusCode::OK, &user_view(id, user, version)))
}

/// `DELETE /users/{id}`: as `PUT`, with the version in `If-Match` or in an optional body.
#[utoipa::path(
    delete, path = "/users/{id}", tag = "users", params(("id" = String, Path), Preconditions),
    request_body(content = Option<VersionInput>, content_type = "application/json"),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The body's version is stale (conflict: version)",
            body = HttpProblem, content_type = PROBLEM_JSON),
        ConditionalWriteFailures,
        WriteFailures,
    ),
)]
async fn delete_user(
    State(app): State<App>,
    Path(id): Path<String>,
    pre: Preconditions,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let body_version = if body.is_empty() {
        None
    } else {
        json_body::<VersionInput>(&headers, &body)?.version
    };
    require_guard(body_version, &pre)?;
    let (users, id) = (&app.users, &id);
    guarded_write(&pre, users, id, |current| async move {
        let expected = body_version.unwrap_or(current.version);
        users.delete(id, expected).await
    })
    .await?;
    app.writes.flush().await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

#[utoipa::path(
    post, path = "/items", tag = "items", params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    request_body(content = ItemInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = ItemView,
            headers(("Location" = String), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "An item has this SKU (conflict: exists); or a request with this Idempotency-Key is still running",
            body = HttpProblem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "While a request with this key runs"))),
        WriteFailures,
    ),
)]
async fn create_item(State(app): State<App>, uri: Uri, headers: HeaderMap, body: Bytes) -> Outcome {
    let input = json_body::<ItemInput>(&headers, &body)?;
    input.validate()?;
    let (items, input) = (&app.items, &input);
    app.post(&uri, &headers, &body, move |tx| {
        Box::pin(async move {
            let item = Item { stock: input.stock };
            let version = tx.insert(items, &input.sku, &item).await?;
            Ok(Ok(created(items, &input.sku, &item, version, item_view)))
        })
    })
    .await
}

#[utoipa::path(
    get, path = "/items/{sku}", tag = "items", params(("sku" = String, Path), Preconditions),
    responses(
        (status = 200, description = "The record", body = ItemView, headers(("ETag" = String),
            ("Last-Modified" = String), ("Cache-Control" = String, description = "no-cache"))),
        RecordRead,
    ),
)]
async fn get_item(State(app): State<App>, Path(sku): Path<String>, pre: Preconditions) -> Outcome {
    read(app.items, sku, &pre, Caching::Revalidate, item_view).await
}

/// `GET` of one record: `200` with `ETag`, `Last-Modified` and `Cache-Control` as `caching`
/// says, `304` when `If-None-Match` or `If-Modified-Since` says the client has it, `412` when
/// `If-Match` or `If-Unmodified-Since` fails.
async fn read<T, V>(
    collection: AsyncCollection<T>,
    key: String,
    pre: &Preconditions,
    caching: Caching,
    view: fn(&str, &T, revkv::Version) -> V,
) -> Outcome
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize,
{
    let record = existing(&collection, &key).await?;
    let validators = Validators::of(&record);
    Ok(match pre.evaluate_read(Some(validators))? {
        ReadOutcome::NotModified => Reply::empty(StatusCode::NOT_MODIFIED),
        ReadOutcome::Proceed => {
            Reply::json(StatusCode::OK, &view(&key, &record.value, record.version))
        }
    }
    .with_headers(&validators.headers_with(caching)))
}

/// The record under `key`; a missing one is `404`, and so is a key the store could not hold
/// (empty or too long), since no record can be there.
async fn existing<T>(collection: &AsyncCollection<T>, key: &str) -> revkv::Result<Versioned<T>>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    match collection.get(key).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) | Err(revkv::Error::EmptyKey { .. } | revkv::Error::KeyTooLong { .. }) => {
            Err(not_found(collection, key))
        }
        Err(error) => Err(error),
    }
}

/// A write of the existing record `key` under the request's preconditions (`412` when they
/// fail, `404` when the record does not exist); `write` gets the current record.
async fn guarded_write<T, R, W>(
    pre: &Preconditions,
    collection: &AsyncCollection<T>,
    key: &str,
    write: impl Fn(Versioned<T>) -> W,
) -> Result<R, HttpError>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    W: Future<Output = revkv::Result<R>>,
{
    let write = &write;
    pre.guard_write_async(
        || async { existing(collection, key).await.map(Some) },
        // `existing` never reads `None`: an absent record is a 404 before this runs.
        |current| async move {
            match current {
                Some(current) => write(current).await,
                None => Err(not_found(collection, key)),
            }
        },
    )
    .await
}

/// `428 Precondition Required` for a write that names no version: neither `version` in the
/// body nor an `If-Match` with entity-tags (see `Preconditions::guards_write` for why no other
/// precondition will do).
fn require_guard(body_version: Option<Version>, pre: &Preconditions) -> Result<(), HttpError> {
    if body_version.is_none() && !pre.guards_write() {
        Err(HttpError::precondition_required())
    } else {
        Ok(())
    }
}

/// `201 Created` for the record `id` just written to `collection`, whose route is the
/// collection's name: `Location`, `ETag` and the record as `view` shows it.
fn created<T, V: Serialize>(
    collection: &AsyncCollection<T>,
    id: &str,
    value: &T,
    version: Version,
    view: fn(&str, &T, Version) -> V,
) -> Reply
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let location = format!("/{}/{id}", collection.name());
    Reply::created(&location, version, &view(id, value, version))
}

/// `400` with `detail`, for a request the service cannot make sense of.
fn bad_request(detail: impl Into<String>) -> HttpError {
    HttpProblem::of_kind(ProblemKind::BadRequest)
        .with_detail(detail)
        .into()
}

fn not_found<T>(collection: &AsyncCollection<T>, key: &str) -> revkv::Error
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    revkv::Error::NotFound {
        collection: collection.name().to_owned(),
        key: key.to_owned(),
    }
}
