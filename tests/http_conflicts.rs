//! Every conflict of the example service is a `409` problem whose members let a client
//! resolve it: the unique index, the current version, the current and allowed states, the
//! rule's code.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use revkv::Store;
use revkv::http::Policy;
use serde_json::json;
use support::Service;

#[test]
fn a_taken_username_is_a_unique_conflict_naming_the_index() {
    let service = Service::start();
    let client = service.client();
    client.create_user("ada", "ada@example.com");
    let taken = client.post(
        "/users",
        &json!({"username": "ada", "email": "other@example.com"}),
    );
    let body = taken.assert_problem(
        409,
        "/problems/unique-violation",
        "/users",
        &json!({"conflict": "unique", "index": "username"}),
    );
    assert_eq!(
        body["detail"],
        r#"another record already has the username "ada"; choose a different username"#
    );
}

#[test]
fn a_taken_email_in_any_case_is_a_unique_conflict_that_hides_the_holder() {
    let service = Service::start();
    let client = service.client();
    let (holder, _) = client.create_user("ada", "Ada@Example.com");
    let taken = client.post(
        "/users",
        &json!({"username": "bob", "email": "ADA@example.COM"}),
    );
    taken.assert_problem(
        409,
        "/problems/unique-violation",
        "/users",
        &json!({"conflict": "unique", "index": "email"}),
    );
    assert!(
        !taken.body.contains(&holder),
        "the holder's id leaked: {}",
        taken.body
    );
}

#[test]
fn a_replacement_that_takes_another_users_email_is_a_unique_conflict() {
    let service = Service::start();
    let client = service.client();
    client.create_user("ada", "ada@example.com");
    let (bob, etag) = client.create_user("bob", "bob@example.com");
    let path = format!("/users/{bob}");
    let put = client.send_json(
        "PUT",
        &path,
        &[("if-match", &etag)],
        &json!({"username": "bob", "email": "Ada@example.com"}),
    );
    put.assert_problem(
        409,
        "/problems/unique-violation",
        &path,
        &json!({"conflict": "unique", "index": "email"}),
    );
    assert_eq!(client.get(&path, &[]).json()["email"], "bob@example.com");
}

#[test]
fn a_service_that_opts_in_reveals_the_holder() {
    let policy = Policy::default().reveal_unique_holder(true);
    let service = Service::start_with(Store::temporary().expect("store"), policy);
    let client = service.client();
    let (holder, _) = client.create_user("ada", "ada@example.com");
    let taken = client.post(
        "/users",
        &json!({"username": "bob", "email": "ada@example.com"}),
    );
    taken.assert_problem(
        409,
        "/problems/unique-violation",
        "/users",
        &json!({"conflict": "unique", "index": "email", "holder": holder}),
    );
}

#[test]
fn a_taken_sku_is_an_exists_conflict_with_the_current_version() {
    let service = Service::start();
    let client = service.client();
    let created = client.post("/items", &json!({"sku": "tea-1", "stock": 3}));
    let current = created.json()["version"].clone();
    let again = client.post("/items", &json!({"sku": "tea-1", "stock": 99}));
    again.assert_problem(
        409,
        "/problems/already-exists",
        "/items",
        &json!({"conflict": "exists", "current_version": current}),
    );
    assert_eq!(client.stock("tea-1"), 3);
}

#[test]
fn an_order_beyond_the_stock_is_the_rule_out_of_stock() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 2);
    let order = client.post("/orders", &json!({"sku": "tea-1", "quantity": 3}));
    let body = order.assert_problem(
        409,
        "/problems/rule-violation",
        "/orders",
        &json!({"conflict": "rule", "code": "out_of_stock"}),
    );
    assert_eq!(body["detail"], "tea-1 has 2 in stock; the order asks for 3");
    assert_eq!(client.stock("tea-1"), 2, "nothing was reserved");
}

#[test]
fn an_illegal_transition_names_the_current_and_the_allowed_states() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 5);
    let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
    let id = ordered.json()["id"].as_str().expect("id").to_owned();
    let version = ordered.json()["version"].clone();
    let path = format!("/orders/{id}/transitions");

    let skipped = client.post(&path, &json!({"to": "shipped"}));
    skipped.assert_problem(
        409,
        "/problems/transition-not-allowed",
        &path,
        &json!({"conflict": "transition", "current_state": "pending",
                "allowed": ["cancelled", "paid"], "current_version": version}),
    );

    let cancelled = client.post(&path, &json!({"to": "cancelled"}));
    let version = cancelled.json()["version"].clone();
    let revived = client.post(&path, &json!({"to": "paid"}));
    revived.assert_problem(
        409,
        "/problems/transition-not-allowed",
        &path,
        &json!({"conflict": "transition", "current_state": "cancelled",
                "allowed": [], "current_version": version}),
    );
    assert_eq!(
        client.get(&format!("/orders/{id}"), &[]).json()["status"],
        "cancelled"
    );
}
