//! Orders: a new order takes its quantity from the item's stock in the same transaction, and
//! moves along pending -> paid -> shipped or pending -> cancelled.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use revkv::Conflict;
use revkv::http::{HttpError, Preconditions, Validators, json_body};

use super::model::{Item, Order, OrderInput, TransitionInput, new_id, order_view};
use super::reply::Reply;
use super::{App, Outcome, not_found, read};

/// `POST /orders`: takes the quantity from the item's stock and creates a pending order, in
/// one transaction; not enough stock is the rule conflict `out_of_stock`.
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
    let (items, orders) = (app.items.clone(), app.orders.clone());
    app.post(&uri, &headers, &body, move |tx| {
        let sku = &input.sku;
        let Some(item) = tx.get(&items, sku)? else {
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
                .at("items", sku)
                .into());
        }
        let left = Item {
            stock: stock - input.quantity,
        };
        tx.update(&items, sku, item.version, left)?;
        let id = new_id("o_");
        let order = Order {
            sku: sku.clone(),
            quantity: input.quantity,
            status: "pending".to_owned(),
        };
        let version = tx.insert(&orders, &id, &order)?;
        let location = format!("/orders/{id}");
        Ok(Ok(Reply::created(
            &location,
            version,
            &order_view(&id, &order, version),
        )))
    })
    .await
}

pub async fn get_order(
    State(app): State<App>,
    Path(id): Path<String>,
    pre: Preconditions,
) -> Outcome {
    read(app.orders, id, &pre, order_view).await
}

/// `POST /orders/{id}/transitions`: moves the order along its state machine; cancelling
/// returns the quantity to stock in the same transaction. Asking for the state the order is
/// already in changes nothing. `If-Match` is honoured when sent.
pub async fn transition_order(
    State(app): State<App>,
    Path(id): Path<String>,
    uri: Uri,
    pre: Preconditions,
    headers: HeaderMap,
    body: Bytes,
) -> Outcome {
    let to = json_body::<TransitionInput>(&headers, &body)?.to;
    let (items, orders) = (app.items.clone(), app.orders.clone());
    app.post(&uri, &headers, &body, move |tx| {
        let order = tx
            .get(&orders, &id)?
            .ok_or_else(|| not_found(&orders, &id))?;
        if let Err(failed) = pre.evaluate_write(Some(Validators::of(&order))) {
            return Ok(Err(failed.into()));
        }
        let mut version = order.version;
        if order.value.status != to {
            let moved = Order {
                status: to.clone(),
                ..order.value.clone()
            };
            version = tx.update(&orders, &id, order.version, &moved)?;
            if to == "cancelled" {
                let sku = &order.value.sku;
                let item = tx.get(&items, sku)?.ok_or_else(|| not_found(&items, sku))?;
                // Stock plus open orders never exceeds what the item was created with.
                let restocked = Item {
                    stock: item.value.stock.saturating_add(order.value.quantity),
                };
                tx.update(&items, sku, item.version, restocked)?;
            }
        }
        let view = order_view(
            &id,
            &Order {
                status: to.clone(),
                ..order.value
            },
            version,
        );
        Ok(Ok(Reply::json(StatusCode::OK, &view).with_etag(version)))
    })
    .await
}
