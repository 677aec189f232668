//! Every answer says how it may be cached (RFC 9111): records are revalidated with their
//! `ETag` before every reuse (users, which carry an e-mail, only in the client's own cache);
//! the change feed, the statistics and every problem are never stored.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use serde_json::json;
use support::Service;

#[test]
fn records_are_revalidated_and_users_kept_only_privately() {
    let service = Service::start();
    let client = service.client();
    let (user, etag) = client.create_user("ada", "ada@example.com");
    client.create_item("tea-1", 5);
    let order = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
    let doc = client.post("/docs", &json!({"title": "t", "body": "b", "tags": []}));
    let user_path = format!("/users/{user}");
    let order_path = format!("/orders/{}", order.json()["id"].as_str().expect("id"));
    let doc_path = format!("/docs/{}", doc.json()["id"].as_str().expect("id"));
    for (path, expected) in [
        (user_path.as_str(), "private, no-cache"),
        ("/items/tea-1", "no-cache"),
        (order_path.as_str(), "no-cache"),
        (doc_path.as_str(), "no-cache"),
    ] {
        let read = client.get(path, &[]);
        assert_eq!(read.status, 200);
        assert_eq!(read.header("cache-control"), expected, "GET {path}");
        let head = client.send("HEAD", path, &[], "");
        assert_eq!(head.header("cache-control"), expected, "HEAD {path}");
        let revalidated = client.get(path, &[("if-none-match", read.header("etag"))]);
        assert_eq!(revalidated.status, 304);
        assert_eq!(
            revalidated.header("cache-control"),
            expected,
            "304 of {path}"
        );
    }
    assert_eq!(etag, client.get(&user_path, &[]).header("etag"));
}

#[test]
fn feeds_statistics_and_problems_are_never_stored() {
    let service = Service::start();
    let client = service.client();
    for path in ["/changes?since=0", "/stats"] {
        let answer = client.get(path, &[]);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("cache-control"), "no-store", "GET {path}");
    }
    for path in ["/users/u_missing", "/carts", "/changes?since=x"] {
        let answer = client.get(path, &[]);
        assert!(answer.status >= 400);
        assert_eq!(answer.header("cache-control"), "no-store", "GET {path}");
    }
    let method_not_allowed = client.send("DELETE", "/items/tea-1", &[], "");
    assert_eq!(method_not_allowed.status, 405);
    assert_eq!(method_not_allowed.header("cache-control"), "no-store");
}
