//! `GET /changes?since=N[&wait=SECONDS][&limit=N]`: the store's change feed over HTTP.
//!
//! The answer is `{"changes": [...], "next": N}`: the changes to users, items, orders and
//! documents after position `since`, in commit order, each `{seq, collection, key, version,
//! kind}` with `value`, the record as `GET` shows it, unless it was deleted; a user is shown
//! without its e-mail, so the feed does not tell who holds an address. `next` is the `since`
//! of the next request: no change is skipped or repeated. The service's own bookkeeping
//! (idempotency keys) is not shown, but `next` moves past it.
//!
//! With `wait`, a request that finds no change waits up to that many seconds (at most
//! `MAX_WAIT_SECONDS`) for one, awaiting the feed's stream, and answers as soon as one is committed,
//! or with an empty list when the wait ends. A `since` older than the feed retains is
//! `410 Gone` with the member `oldest`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use futures::StreamExt;
use revkv::http::{Caching, HttpError, HttpProblem, PROBLEM_JSON};
use revkv::{Change, ChangeKind, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::model::{
    DocView, ItemView, OrderView, PublicUserView, doc_view, item_view, order_view, public_user_view,
};
use super::reply::Reply;
use super::{App, DOCS, ITEMS, ORDERS, Outcome, USERS, bad_request};

/// The longest a request may wait for a change.
const MAX_WAIT_SECONDS: u64 = 30;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// What a request for changes asks.
struct FeedQuery {
    since: u64,
    wait: Duration,
    limit: usize,
}

/// One page of the feed.
#[derive(Serialize, ToSchema)]
struct Page {
    changes: Vec<ChangeView>,
    next: u64,
}

/// A change as the API shows it.
#[derive(Serialize, ToSchema)]
struct ChangeView {
    seq: u64,
    collection: String,
    key: String,
    version: Version,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<RecordView>,
}

/// A record as `GET` shows it (a user as anyone may see it), whichever collection it is in.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum RecordView {
    User(PublicUserView),
    Item(ItemView),
    Order(OrderView),
    Doc(DocView),
}

/// A page differs from one request to the next, so no cache keeps it.
#[utoipa::path(
    get, path = "/changes", tag = "changes",
    params(
        ("since" = u64, Query, minimum = 0, description = "0 for the start, else the last answer's next"),
        ("wait" = Option<u64>, Query, minimum = 0, maximum = 30, description = "Seconds to wait for a change"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
    ),
    responses(
        (status = 200, description = "The changes after since, in commit order", body = Page,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "A parameter missing, unknown, repeated or out of range",
            body = HttpProblem, content_type = PROBLEM_JSON),
        (status = 410, description = "The feed no longer holds since: see oldest",
            body = HttpProblem, content_type = PROBLEM_JSON),
        (status = 500, description = "The server failed", body = HttpProblem, content_type = PROBLEM_JSON),
    ),
)]
pub async fn changes(State(app): State<App>, uri: Uri) -> Outcome {
    let query = FeedQuery::parse(uri.query().unwrap_or_default())?;
    let page = app.changes_after(&query).await?;
    Ok(Reply::json(StatusCode::OK, &page).with_caching(Caching::NoStore))
}

impl App {
    /// Up to `limit` visible changes after `since`: those committed already, read without a
    /// deadline (on etcd, round trips); when they show nothing, the first change shown within
    /// `wait`.
    async fn changes_after(&self, query: &FeedQuery) -> Result<Page, HttpError> {
        let mut page = Page {
            changes: Vec::new(),
            next: query.since,
        };
        while page.changes.len() < query.limit {
            let room = query.limit - page.changes.len();
            let committed = self.writes.changes_after(page.next, room).await?;
            if committed.is_empty() {
                break;
            }
            for change in &committed {
                page.take(change, ChangeView::of(change)?);
            }
        }
        if !page.changes.is_empty() {
            return Ok(page);
        }
        let deadline = tokio::time::Instant::now() + query.wait;
        let mut changes = self.writes.changes(page.next)?;
        while page.changes.is_empty() {
            let Ok(Some(change)) = tokio::time::timeout_at(deadline, changes.next()).await else {
                break;
            };
            let change = change?;
            page.take(&change, ChangeView::of(&change)?);
        }
        Ok(page)
    }
}

impl ChangeView {
    /// The change as the API shows it; `None` for the service's own bookkeeping.
    fn of(change: &Change) -> Result<Option<Self>, HttpError> {
        let value = match change.collection.as_str() {
            USERS => shown(change, public_user_view)?.map(RecordView::User),
            ITEMS => shown(change, item_view)?.map(RecordView::Item),
            ORDERS => shown(change, order_view)?.map(RecordView::Order),
            DOCS => shown(change, doc_view)?.map(RecordView::Doc),
            _ => return Ok(None),
        };
        let kind = match change.kind {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            _ => "other",
        };
        Ok(Some(Self {
            seq: change.seq,
            collection: change.collection.clone(),
            key: change.key.clone(),
            version: change.version,
            kind,
            value,
        }))
    }
}

impl Page {
    fn take(&mut self, change: &Change, view: Option<ChangeView>) {
        self.next = change.seq;
        self.changes.extend(view);
    }
}

/// The changed record as `GET` shows it; `None` for a deletion.
fn shown<T: DeserializeOwned, V>(
    change: &Change,
    view: fn(&str, &T, Version) -> V,
) -> revkv::Result<Option<V>> {
    let record = change.value::<T>()?;
    Ok(record.map(|record| view(&change.key, &record, change.version)))
}

impl FeedQuery {
    /// Parses `since` (required), `wait` (seconds, at most `MAX_WAIT_SECONDS`, default 0) and
    /// `limit` (1 to `MAX_LIMIT`, default `DEFAULT_LIMIT`), percent-decoded as any query is
    /// (`since=%30` is `since=0`); anything else is `400`.
    fn parse(query: &str) -> Result<Self, HttpError> {
        let (mut since, mut wait, mut limit) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "since" => &mut since,
                "wait" => &mut wait,
                "limit" => &mut limit,
                _ => return Err(bad_request(format!("unknown parameter {name:?}"))),
            };
            if slot.is_some() {
                return Err(bad_request(format!("{name} is given more than once")));
            }
            let number = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad_request(format!("{name} must be a whole number")))?;
            *slot = Some(number);
        }
        let since = since.ok_or_else(|| {
            bad_request("since is required: 0 to read from the start, else the last answer's next")
        })?;
        let wait = wait.unwrap_or(0);
        if wait > MAX_WAIT_SECONDS {
            return Err(bad_request(format!(
                "wait is at most {MAX_WAIT_SECONDS} seconds"
            )));
        }
        let limit = match limit.map(usize::try_from) {
            None => DEFAULT_LIMIT,
            Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
            Some(_) => return Err(bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
        };
        Ok(Self {
            since,
            wait: Duration::from_secs(wait),
            limit,
        })
    }
}
