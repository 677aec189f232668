//! Orders: a new order takes its quantity from the item's stock in the same transaction, and
//! moves along pending -> paid -> shipped or pending -> cancelled.
//!
//! A new order holds its stock for `Settings::hold`: it is written with that time to live, and
//! if it is still pending then, it expires and the sweeper returns its stock (the `on_expiry`
//! handler of `App::open`). Paying or cancelling is a plain update, which clears the time to
//! live, so a cancelled order's stock, returned by the cancellation, is never returned twice.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use revkv::http::{
    Caching, HttpError, HttpProblem, Members, PROBLEM_JSON, Preconditions, ProblemKind, Validators,
    json_body,
};
use revkv::{Collection, Conflict, Transaction, Version};

use super::model::{
    Item, ORDER_TRANSITIONS, Order, OrderInput, OrderView, TransitionInput, new_id, order_view,
    sku_fits,
};
use super::openapi::{RecordRead, WriteFailures};
use super::reply::Reply;
use super::{App, Outcome, created, not_found, read};

/// `POST /orders`: takes the quantity from the item's stock and creates a pending order that
/// holds it for `Settings::hold`, in one transaction; not enough stock is the rule conflict
/// `out_of_stock`.
#[utoipa::path(
    post, path = "/orders", tag = "orders", params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    request_body(content = OrderInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = OrderView,
            headers(("Location" = String), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "Not enough stock (conflict: rule, code: out_of_stock); or a request with this Idempotency-Key is still running",
            body = HttpProblem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "While a request with this key runs"))),
        WriteFailures,
    ),
)]
pub async fn create_order(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let input = json_body::<OrderInput>(&headers, &body)?;
    if input.quantity == 0 {
        return Err(HttpError::invalid_body("quantity must be at least 1"));
    }
    // A SKU no item can have is unknown like any other, not a malformed key.
    if !sku_fits(&input.sku) {
        return Err(HttpError::invalid_body("there is no item with that sku"));
    }
    let (items, orders, hold, input) = (&app.items, &app.orders, app.hold, &input);
    app.post(&uri, &headers, &body, move |tx| {
        Box::pin(async move {
            let sku = &input.sku;
            let Some(item) = tx.get(items, sku).await? else {
                let unknown = format!("there is no item with sku {sku:?}");
                return Ok(Err(HttpError::invalid_body(unknown)));
            };
            let stock = item.value.stock;
            if stock < input.quantity {
                let detail = format!(
                    "{sku} has {stock} in stock; the order asks for {}",
                    input.quantity
                );
                return Err(Conflict::rule("out_of_stock", detail)
                    .at(items.name(), sku)
                    .into());
            }
            let left = Item {
                stock: stock - input.quantity,
            };
            tx.update(items, sku, item.version, left).await?;
            let id = new_id("o_");
            let order = Order {
                sku: sku.clone(),
                quantity: input.quantity,
                status: "pending".to_owned(),
            };
            let version = tx.insert_expiring(orders, &id, &order, hold).await?;
            Ok(Ok(created(orders, &id, &order, version, order_view)))
        })
    })
    .await
}

#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders", params(("id" = String, Path), Preconditions),
    responses(
        (status = 200, description = "The record", body = OrderView, headers(("ETag" = String),
            ("Last-Modified" = String), ("Cache-Control" = String, description = "no-cache"))),
        RecordRead,
    ),
)]
pub async fn get_order(
    State(app): State<App>,
    Path(id): Path<String>,
    pre: Preconditions,
) -> Outcome {
    read(app.orders, id, &pre, Caching::Revalidate, order_view).await
}

/// `POST /orders/{id}/transitions`: moves the order along its state machine; cancelling
/// returns the quantity to stock in the same transaction. Either ends the hold. Only the
/// declared transitions are allowed: asking for the state the order is already in is a
/// transition conflict like any other. `If-Match` is honoured when sent. An order whose hold
/// has lapsed reads as absent: `404`.
#[utoipa::path(
    post, path = "/orders/{id}/transitions", tag = "orders",
    params(("id" = String, Path), Preconditions, ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    request_body(content = TransitionInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Moved", body = OrderView, headers(("ETag" = String))),
        (status = 404, description = "No order is there, or its hold has lapsed",
            body = HttpProblem, content_type = PROBLEM_JSON),
        (status = 409, description = "Not a declared transition, the state it is in included (conflict: transition); or a request with this Idempotency-Key is still running",
            body = HttpProblem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "While a request with this key runs"))),
        (status = 412, description = "If-Match, If-None-Match or If-Unmodified-Since does not hold",
            body = HttpProblem, content_type = PROBLEM_JSON),
        WriteFailures,
    ),
)]
pub async fn transition_order(
    State(app): State<App>,
    Path(id): Path<String>,
    uri: Uri,
    pre: Preconditions,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let to = json_body::<TransitionInput>(&headers, &body)?.to;
    let to = &to;
    let (items, orders, id, pre) = (&app.items, &app.orders, &id, &pre);
    app.post(&uri, &headers, &body, move |tx| {
        Box::pin(async move {
            let order = tx
                .get(orders, id)
                .await?
                .ok_or_else(|| not_found(orders, id))?;
            if let Err(failed) = pre.evaluate_write(Some(Validators::of(&order))) {
                return Ok(Err(failed.into()));
            }
            if order.value.status == *to {
                // The store's state machine lets an update stay in its state (to change other
                // fields); a transition route does not.
                return Ok(Err(already_in(&order.value.status, order.version)));
            }
            let moved = Order {
                status: to.clone(),
                ..order.value.clone()
            };
            // A plain update: it clears the hold's time to live.
            let version = tx.update(orders, id, order.version, &moved).await?;
            if to == "cancelled" {
                // Shared with the expiry handler, which runs in a blocking transaction.
                return_stock(tx.blocking(), items.blocking(), &order.value)?;
            }
            let view = order_view(id, &moved, version);
            Ok(Ok(Reply::json(StatusCode::OK, &view).with_etag(version)))
        })
    })
    .await
}

/// The transition conflict for a request to move an order to the state it is in.
fn already_in(state: &str, version: Version) -> HttpError {
    let mut allowed: Vec<String> = ORDER_TRANSITIONS
        .iter()
        .filter(|(from, _)| *from == state)
        .map(|(_, to)| (*to).to_owned())
        .collect();
    allowed.sort();
    let mut members = Members::default();
    members.conflict = Some("transition");
    members.current_version = Some(version);
    members.current_state = Some(state.to_owned());
    members.allowed = Some(allowed);
    HttpProblem::of_kind(ProblemKind::TransitionNotAllowed)
        .with_detail(format!("the order is already {state:?}"))
        .with_members(members)
        .into()
}

/// Puts a pending order's quantity back in stock: it was cancelled, or its hold lapsed. Only
/// pending orders hold stock; paid ones have taken it for good.
pub fn return_stock(
    tx: &mut Transaction<'_>,
    items: &Collection<Item>,
    order: &Order,
) -> revkv::Result<()> {
    if order.status != "pending" {
        return Ok(());
    }
    let sku = &order.sku;
    let item = tx.get(items, sku)?.ok_or_else(|| revkv::Error::NotFound {
        collection: items.name().to_owned(),
        key: sku.clone(),
    })?;
    // Stock plus open orders never exceeds what the item was created with.
    let restocked = Item {
        stock: item.value.stock.saturating_add(order.quantity),
    };
    tx.update(items, sku, item.version, restocked).map(drop)
}
