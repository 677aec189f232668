//! `Idempotency-Key` on POST: a retry with the same key and body replays the first answer
//! without a second effect, even after a restart; another body is `422`; a retry while the
//! first request still runs is `409`; a request that failed leaves the key free.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use axum::http::Uri;
use futures::executor::block_on;
use revkv::Store;
use revkv::http::Policy;
use serde_json::{Value, json};
use support::{Answer, Client, Service};

fn order_with_key(client: &Client, key: &str, quantity: u32) -> Answer {
    client.send_json(
        "POST",
        "/orders",
        &[("idempotency-key", key)],
        &json!({"sku": "tea-1", "quantity": quantity}),
    )
}

fn assert_replays(first: &Answer, replay: &Answer) {
    assert_eq!(replay.status, first.status);
    assert_eq!(replay.body, first.body);
    for header in ["content-type", "location", "etag"] {
        assert_eq!(replay.header(header), first.header(header), "{header}");
    }
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert!(first.headers.get("idempotent-replayed").is_none());
}

#[test]
fn the_same_key_and_body_replay_the_first_answer_without_a_second_effect() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 10);
    let first = order_with_key(&client, "order-1", 3);
    assert_eq!(first.status, 201);
    let replay = order_with_key(&client, "order-1", 3);
    assert_replays(&first, &replay);
    assert_eq!(client.stock("tea-1"), 7, "the order was placed once");

    // Without a key, the same body is a second order.
    let second = client.post("/orders", &json!({"sku": "tea-1", "quantity": 3}));
    assert_eq!(second.status, 201);
    assert_ne!(second.json()["id"], first.json()["id"]);
    assert_eq!(client.stock("tea-1"), 4);
}

#[test]
fn the_same_key_with_another_body_or_route_is_422() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 10);
    assert_eq!(order_with_key(&client, "k", 1).status, 201);
    let expected = json!({"header": "Idempotency-Key"});
    order_with_key(&client, "k", 2).assert_problem(
        422,
        "/problems/idempotency-key-reused",
        "/orders",
        &expected,
    );
    let other_route = client.send_json(
        "POST",
        "/items",
        &[("idempotency-key", "k")],
        &json!({"sku": "tea-2", "stock": 1}),
    );
    other_route.assert_problem(422, "/problems/idempotency-key-reused", "/items", &expected);
    assert_eq!(client.stock("tea-1"), 9);
}

#[test]
fn a_retry_while_the_first_request_runs_is_409() {
    let service = Service::start();
    let client = service.client();
    let body = json!({"sku": "tea-1", "stock": 5});
    // Claim the key as the service does when a request with it arrives, and hold it.
    let request =
        app::idempotency::fingerprint(&Uri::from_static("/items"), body.to_string().as_bytes());
    let admit = service.app.keys.admit(Some("k".to_owned()), request);
    let app::idempotency::Admission::Run(Some(claim)) = block_on(admit).expect("admitted") else {
        panic!("a fresh key is claimed");
    };

    let retry = client.send_json("POST", "/items", &[("idempotency-key", "k")], &body);
    retry.assert_problem(
        409,
        "/problems/idempotency-key-in-flight",
        "/items",
        &json!({"header": "Idempotency-Key"}),
    );
    assert_eq!(retry.header("retry-after"), "1");
    assert_eq!(client.get("/items/tea-1", &[]).status, 404);

    block_on(service.app.keys.release(claim));
    let after = client.send_json("POST", "/items", &[("idempotency-key", "k")], &body);
    assert_eq!(after.status, 201);
}

#[test]
fn a_request_that_failed_leaves_its_key_free_for_a_retry() {
    let service = Service::start();
    let client = service.client();
    let (ada, etag) = client.create_user("ada", "ada@example.com");
    let bob: Value = json!({"username": "bob", "email": "ada@example.com"});
    let post_bob = || client.send_json("POST", "/users", &[("idempotency-key", "bob-1")], &bob);
    assert_eq!(post_bob().status, 409);

    let freed = client.send(
        "DELETE",
        &format!("/users/{ada}"),
        &[("if-match", &etag)],
        "",
    );
    assert_eq!(freed.status, 204);
    let retried = post_bob();
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert!(retried.headers.get("idempotent-replayed").is_none());
}

#[test]
fn answers_are_replayed_after_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let open = || Service::start_with(Store::open(dir.path()).expect("store"), Policy::default());

    let service = open();
    let client = service.client();
    client.create_item("tea-1", 10);
    let first = order_with_key(&client, "order-1", 2);
    assert_eq!(first.status, 201);
    drop(service);

    let service = open();
    let client = service.client();
    let replay = order_with_key(&client, "order-1", 2);
    assert_replays(&first, &replay);
    assert_eq!(client.stock("tea-1"), 8, "the order was placed once");
}

#[test]
fn a_key_left_in_flight_by_a_stopped_service_is_freed_when_it_starts() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let open = || Service::start_with(Store::open(dir.path()).expect("store"), Policy::default());
    let body = json!({"sku": "tea-1", "stock": 5});
    let request =
        app::idempotency::fingerprint(&Uri::from_static("/items"), body.to_string().as_bytes());

    let service = open();
    let admitted = block_on(service.app.keys.admit(Some("k".to_owned()), request));
    let admitted = admitted.expect("admitted");
    assert!(matches!(
        admitted,
        app::idempotency::Admission::Run(Some(_))
    ));
    drop(admitted);
    drop(service);

    let service = open();
    let client = service.client();
    let created = client.send_json("POST", "/items", &[("idempotency-key", "k")], &body);
    assert_eq!(created.status, 201, "{}", created.body);
}
