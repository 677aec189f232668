//! Every route of the example service answers its success with the status, headers and body
//! the API promises: created resources with `Location`, `ETag` and a body with `id` and
//! `version`; reads with `ETag` and `Last-Modified`.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use serde_json::json;
use support::Service;

#[test]
fn users_are_created_read_replaced_and_deleted() {
    let service = Service::start();
    let client = service.client();

    let created = client.post(
        "/users",
        &json!({"username": "ada", "email": "Ada@Example.com"}),
    );
    assert_eq!(created.status, 201);
    let body = created.json();
    let id = body["id"].as_str().expect("id");
    let version = body["version"].as_u64().expect("version");
    assert_eq!(created.header("location"), format!("/users/{id}"));
    assert_eq!(created.header("etag"), format!("\"{version}\""));
    assert_eq!(created.header("content-type"), "application/json");
    assert_eq!(
        body,
        json!({"id": id, "username": "ada", "email": "Ada@Example.com", "version": version})
    );

    let read = client.get(&format!("/users/{id}"), &[]);
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), body);
    assert_eq!(read.header("etag"), created.header("etag"));
    let last_modified = httpdate::parse_http_date(read.header("last-modified"));
    assert!(last_modified.is_ok(), "{:?}", read.headers);

    let etag = created.header("etag");
    let replaced = client.send_json(
        "PUT",
        &format!("/users/{id}"),
        &[("if-match", etag)],
        &json!({"username": "ada", "email": "ada@lovelace.org"}),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let new_version = replaced.json()["version"].as_u64().expect("version");
    assert!(new_version > version);
    assert!(
        replaced.headers.get("etag").is_none(),
        "RFC 9110 §9.3.4: what is stored is not what was sent, so no ETag"
    );
    assert_eq!(replaced.json()["email"], "ada@lovelace.org");
    assert_eq!(
        client.get(&format!("/users/{id}"), &[]).json(),
        replaced.json()
    );

    let deleted = client.send(
        "DELETE",
        &format!("/users/{id}"),
        &[("if-match", &format!("\"{new_version}\""))],
        "",
    );
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    assert_eq!(client.get(&format!("/users/{id}"), &[]).status, 404);
}

#[test]
fn items_are_created_and_read_under_their_sku() {
    let service = Service::start();
    let client = service.client();
    let created = client.post("/items", &json!({"sku": "tea-1", "stock": 12}));
    assert_eq!(created.status, 201);
    let version = created.json()["version"].as_u64().expect("version");
    assert_eq!(
        created.json(),
        json!({"id": "tea-1", "sku": "tea-1", "stock": 12, "version": version})
    );
    assert_eq!(created.header("location"), "/items/tea-1");
    assert_eq!(created.header("etag"), format!("\"{version}\""));

    let read = client.get("/items/tea-1", &[]);
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), created.json());
    assert_eq!(read.header("etag"), created.header("etag"));
    assert!(httpdate::parse_http_date(read.header("last-modified")).is_ok());
}

#[test]
fn an_order_reserves_stock_and_moves_pending_paid_shipped() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 10);

    let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 3}));
    assert_eq!(ordered.status, 201, "{}", ordered.body);
    let order = ordered.json();
    let id = order["id"].as_str().expect("id");
    let version = order["version"].as_u64().expect("version");
    assert_eq!(
        order,
        json!({"id": id, "sku": "tea-1", "quantity": 3, "status": "pending", "version": version})
    );
    assert_eq!(ordered.header("location"), format!("/orders/{id}"));
    assert_eq!(ordered.header("etag"), format!("\"{version}\""));
    assert_eq!(client.stock("tea-1"), 7);
    assert_eq!(client.get(&format!("/orders/{id}"), &[]).json(), order);

    let mut last = version;
    for state in ["paid", "shipped"] {
        let moved = client.post(&format!("/orders/{id}/transitions"), &json!({"to": state}));
        assert_eq!(moved.status, 200, "{}", moved.body);
        let now = moved.json()["version"].as_u64().expect("version");
        assert!(now > last);
        assert_eq!(moved.json()["status"], state);
        assert_eq!(moved.header("etag"), format!("\"{now}\""));
        last = now;
    }
    let read = client.get(&format!("/orders/{id}"), &[]).json();
    assert_eq!(
        (read["status"].as_str(), read["version"].as_u64()),
        (Some("shipped"), Some(last))
    );
    assert_eq!(client.stock("tea-1"), 7, "shipping keeps the reservation");
}

#[test]
fn cancelling_returns_the_stock_once() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 10);
    let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 4}));
    let id = ordered.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(client.stock("tea-1"), 6);

    let path = format!("/orders/{id}/transitions");
    let cancelled = client.post(&path, &json!({"to": "cancelled"}));
    assert_eq!(cancelled.status, 200);
    assert_eq!(client.stock("tea-1"), 10);

    // Asking again for the state it is in is not a transition: 409, no second restock.
    let again = client.post(&path, &json!({"to": "cancelled"}));
    let current = cancelled.json()["version"].clone();
    again.assert_problem(
        409,
        "/problems/transition-not-allowed",
        &path,
        &json!({"conflict": "transition", "current_version": current,
                "current_state": "cancelled", "allowed": []}),
    );
    assert_eq!(client.stock("tea-1"), 10);
    let read = client.get(&format!("/orders/{id}"), &[]);
    assert_eq!(read.json(), cancelled.json(), "nothing changed");
}

#[test]
fn a_transition_to_the_state_the_order_is_in_is_409_like_any_undeclared_one() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 10);
    let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
    let id = ordered.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/orders/{id}/transitions");
    let again = client.post(&path, &json!({"to": "pending"}));
    again.assert_problem(
        409,
        "/problems/transition-not-allowed",
        &path,
        &json!({"conflict": "transition", "current_version": ordered.json()["version"],
                "current_state": "pending", "allowed": ["cancelled", "paid"]}),
    );
}

#[test]
fn head_answers_the_headers_of_get() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 1);
    let get = client.get("/items/tea-1", &[]);
    let head = client.send("HEAD", "/items/tea-1", &[], "");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(head.header("last-modified"), get.header("last-modified"));
}
