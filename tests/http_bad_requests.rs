//! Requests the example service cannot use are answered with problem bodies too: malformed
//! JSON `400`, JSON of the wrong shape `422`, not JSON `415`, too large `413`, unknown route
//! `404`, wrong method `405` with `Allow`.
#![cfg(feature = "axum")]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use serde_json::json;
use support::Service;

#[test]
fn malformed_json_is_400() {
    let service = Service::start();
    let client = service.client();
    for body in [r#"{"username": "ada""#, "not json", ""] {
        let answer = client.send(
            "POST",
            "/users",
            &[("content-type", "application/json")],
            body,
        );
        answer.assert_problem(400, "/problems/malformed-body", "/users", &json!({}));
    }
}

#[test]
fn json_of_the_wrong_shape_or_with_invalid_values_is_422() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 1);
    let cases = [
        ("/users", json!({"username": "ada"})),
        (
            "/users",
            json!({"username": "", "email": "ada@example.com"}),
        ),
        (
            "/users",
            json!({"username": "ada", "email": "not-an-address"}),
        ),
        ("/items", json!({"sku": "tea-1", "stock": -1})),
        ("/items", json!({"sku": "tea 1", "stock": 1})),
        ("/items", json!({"sku": "", "stock": 1})),
        ("/orders", json!({"sku": "tea-1", "quantity": 0})),
        ("/orders", json!({"sku": "no-such-tea", "quantity": 1})),
        ("/orders", json!("tea-1")),
    ];
    for (path, body) in cases {
        let answer = client.post(path, &body);
        answer.assert_problem(422, "/problems/invalid-body", path, &json!({}));
    }
    assert_eq!(client.stock("tea-1"), 1);
}

#[test]
fn a_body_not_declared_as_json_is_415() {
    let service = Service::start();
    let client = service.client();
    let body = r#"{"sku": "tea-1", "stock": 1}"#;
    for headers in [&[][..], &[("content-type", "text/plain")][..]] {
        let answer = client.send("POST", "/items", headers, body);
        answer.assert_problem(
            415,
            "/problems/unsupported-media-type",
            "/items",
            &json!({}),
        );
    }
    let vendor = [("content-type", "application/vnd.shop+json; charset=utf-8")];
    assert_eq!(client.send("POST", "/items", &vendor, body).status, 201);
}

#[test]
fn a_body_over_the_limit_is_413() {
    let service = Service::start();
    let client = service.client();
    let name = "a".repeat(app::BODY_LIMIT);
    let answer = client.post(
        "/users",
        &json!({"username": name, "email": "ada@example.com"}),
    );
    answer.assert_problem(413, "/problems/payload-too-large", "/users", &json!({}));
}

#[test]
fn an_unknown_route_is_404() {
    let service = Service::start();
    let client = service.client();
    for path in ["/", "/nothing", "/users/u1/friends"] {
        client
            .get(path, &[])
            .assert_problem(404, "/problems/not-found", path, &json!({}));
    }
}

#[test]
fn a_wrong_method_is_405_with_allow() {
    let service = Service::start();
    let client = service.client();
    let cases = [
        ("DELETE", "/items/tea-1", "GET,HEAD"),
        ("GET", "/users", "POST"),
        ("PATCH", "/users/u1", "GET,HEAD,PUT,DELETE"),
        ("PUT", "/orders/o1/transitions", "POST"),
    ];
    for (method, path, allowed) in cases {
        let answer = client.send(method, path, &[], "");
        answer.assert_problem(405, "/problems/method-not-allowed", path, &json!({}));
        assert_eq!(answer.header("allow"), allowed, "{method} {path}");
    }
}

#[test]
fn a_key_too_long_for_the_store_is_400() {
    let service = Service::start();
    let client = service.client();
    let path = format!("/users/{}", "u".repeat(2000));
    client
        .get(&path, &[])
        .assert_problem(400, "/problems/invalid-key", &path, &json!({}));
}

#[test]
fn a_malformed_idempotency_key_is_400() {
    let service = Service::start();
    let client = service.client();
    let too_long = "k".repeat(256);
    for key in ["", "two words", too_long.as_str()] {
        let answer = client.send_json(
            "POST",
            "/items",
            &[("idempotency-key", key)],
            &json!({"sku": "tea-1", "stock": 1}),
        );
        answer.assert_problem(
            400,
            "/problems/invalid-header",
            "/items",
            &json!({"header": "Idempotency-Key"}),
        );
    }
    assert_eq!(
        client.get("/items/tea-1", &[]).status,
        404,
        "nothing was created"
    );
}
