//! `GET /stats`: where the store has seen contention since the service started, from
//! `Store::stats`, for an operator.
//!
//! Conflicts are counted as the store returned them, by collection and kind, so they include
//! the service's own bookkeeping: a replayed `Idempotency-Key` is an `exists` conflict of
//! `idempotency-keys`. A hot key of that collection is listed without its key, which is a
//! client's secret.

use axum::extract::State;
use axum::http::StatusCode;
use revkv::http::{Caching, HttpProblem, PROBLEM_JSON};
use revkv::{HOT_KEY_WINDOW, Stats};
use serde::Serialize;
use utoipa::ToSchema;

use super::idempotency::KEYS;
use super::reply::Reply;
use super::{App, Outcome};

/// The store's statistics as the API shows them.
#[derive(Serialize, ToSchema)]
struct StatsView {
    conflicts: Vec<ConflictCount>,
    update_with: UpdateWith,
    transaction_reruns: u64,
    hot_keys: Vec<HotKey>,
    hot_key_window_seconds: u64,
}

/// Conflicts of one kind in one collection (`null` for a rule raised about none).
#[derive(Serialize, ToSchema)]
struct ConflictCount {
    collection: Option<String>,
    kind: &'static str,
    count: u64,
}

#[derive(Serialize, ToSchema)]
struct UpdateWith {
    calls: u64,
    retries: u64,
    exhausted: u64,
}

/// A key with conflicts; `key` is left out where it is a secret.
#[derive(Serialize, ToSchema)]
struct HotKey {
    collection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    conflicts: u64,
}

/// Counts change with every request, so no cache keeps them.
#[utoipa::path(
    get, path = "/stats", tag = "meta",
    responses(
        (status = 200, description = "Contention since the service started", body = StatsView,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 500, description = "The server failed", body = HttpProblem, content_type = PROBLEM_JSON),
    ),
)]
pub async fn stats(State(app): State<App>) -> Outcome {
    let view = StatsView::from(app.store.stats());
    Ok(Reply::json(StatusCode::OK, &view).with_caching(Caching::NoStore))
}

impl From<Stats> for StatsView {
    fn from(stats: Stats) -> Self {
        Self {
            conflicts: stats
                .conflicts
                .into_iter()
                .map(|((collection, kind), count)| ConflictCount {
                    collection: Some(collection).filter(|name| !name.is_empty()),
                    kind: kind.as_str(),
                    count,
                })
                .collect(),
            update_with: UpdateWith {
                calls: stats.update_with.calls,
                retries: stats.update_with.retries,
                exhausted: stats.update_with.exhausted,
            },
            transaction_reruns: stats.transaction_reruns,
            hot_keys: stats
                .hot_keys
                .into_iter()
                .map(|hot| HotKey {
                    key: (hot.collection != KEYS).then_some(hot.key),
                    collection: hot.collection,
                    conflicts: hot.conflicts,
                })
                .collect(),
            hot_key_window_seconds: HOT_KEY_WINDOW.as_secs(),
        }
    }
}
