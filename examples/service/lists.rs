//! Lists, a page at a time (Google's AIP-158): `limit` is coerced down to `MAX_LIMIT`, the
//! answer's `next_page_token` (empty on the last page) resumes the list, and a `Link` header
//! names the next page. Paging while others write never skips or repeats a record that stays.

use axum::extract::State;
use axum::http::header::LINK;
use axum::http::{StatusCode, Uri};
use revkv::http::{HttpProblem, ListRequest, PROBLEM_JSON, next_link};
use revkv::{Page, Query};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Order, OrderView, PublicUserView, User, order_view, public_user_view};
use super::reply::Reply;
use super::{App, Outcome};

/// The records a page holds unless `limit` asks for fewer.
const DEFAULT_LIMIT: usize = 50;
/// The most a page holds, whatever `limit` asks for.
const MAX_LIMIT: usize = 100;

/// A page of users: without their e-mail addresses, which only each user's own record shows.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    items: Vec<PublicUserView>,
    /// The `page_token` of the next page; empty on the last page.
    next_page_token: String,
}

/// A page of orders.
#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    items: Vec<OrderView>,
    /// The `page_token` of the next page; empty on the last page.
    next_page_token: String,
}

/// What a list answers besides its page.
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers in the OpenAPI document; never built"
)]
pub enum ListFailures {
    /// `limit` is not a whole number, `page_token` was not issued for this list, or a
    /// parameter is given twice.
    #[response(status = 400, content_type = PROBLEM_JSON)]
    BadRequest(HttpProblem),
    /// The server failed.
    #[response(status = 500, content_type = PROBLEM_JSON)]
    Internal(HttpProblem),
    /// The server's storage cannot be reached: retry after Retry-After.
    #[response(status = 503, content_type = PROBLEM_JSON, headers(
        ("Retry-After" = u32, description = "Seconds to wait before a retry"),
    ))]
    Unavailable(HttpProblem),
}

/// `GET /users`: every user, by id.
#[utoipa::path(
    get, path = "/users", tag = "users",
    params(
        ("limit" = Option<u64>, Query, description = "At most this many users (default 50, at most 100)"),
        ("page_token" = Option<String>, Query, description = "The next_page_token of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of users", body = UserPage,
            headers(("Link" = String, description = "<...>; rel=\"next\", unless this is the last page"))),
        ListFailures,
    ),
)]
pub async fn list_users(State(app): State<App>, uri: Uri) -> Outcome {
    let list = ListRequest::from_query(uri.query(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let page = app.users.query(&list.apply(Query::all())).await?;
    let (items, next_page_token) = shown(page, |id, user: &User, version| {
        public_user_view(id, user, version)
    });
    let link = next_page_token.clone();
    Ok(answer(
        &uri,
        &UserPage {
            items,
            next_page_token,
        },
        &link,
    ))
}

/// `GET /orders`: the orders in one `state` (by id), or all of them.
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    params(
        ("state" = Option<String>, Query, description = "Only orders in this state: pending, paid, shipped or cancelled"),
        ("limit" = Option<u64>, Query, description = "At most this many orders (default 50, at most 100)"),
        ("page_token" = Option<String>, Query, description = "The next_page_token of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage,
            headers(("Link" = String, description = "<...>; rel=\"next\", unless this is the last page"))),
        ListFailures,
    ),
)]
pub async fn list_orders(State(app): State<App>, uri: Uri) -> Outcome {
    let list = ListRequest::from_query(uri.query(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let state = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "state")
        .map(|(_, state)| state.into_owned());
    let query = match &state {
        Some(state) => Query::index("state", state),
        None => Query::all(),
    };
    let page = app.orders.query(&list.apply(query)).await?;
    let (items, next_page_token) = shown(page, |id, order: &Order, version| {
        order_view(id, order, version)
    });
    let link = next_page_token.clone();
    Ok(answer(
        &uri,
        &OrderPage {
            items,
            next_page_token,
        },
        &link,
    ))
}

/// The records of `page`, each shown by `view`, and the token of the next page (empty on the
/// last page).
fn shown<T, V>(page: Page<T>, view: impl Fn(&str, &T, revkv::Version) -> V) -> (Vec<V>, String) {
    let items = (page.records.iter())
        .map(|(id, record)| view(id, &record.value, record.version))
        .collect();
    (items, page.next.unwrap_or_default())
}

/// `body` as JSON, with a `Link` to the page after the one answered to `uri` unless `next`,
/// its token, is empty.
fn answer(uri: &Uri, body: &impl Serialize, next: &str) -> Reply {
    let reply = Reply::json(StatusCode::OK, body);
    if next.is_empty() {
        return reply;
    }
    reply.with_header(&LINK, next_link(uri, next).to_str().unwrap_or_default())
}
