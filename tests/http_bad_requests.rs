//! Requests the example service cannot use are answered with problem bodies too: malformed
//! JSON `400`, JSON of the wrong shape `422`, not JSON `415`, too large `413`, unknown route
//! `404`, wrong method `405` with `Allow`; and a refusal keeps the connection alive.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

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
        ("DELETE", "/users", "POST,GET,HEAD"),
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
fn a_key_too_long_for_the_store_is_404_since_no_record_can_be_there() {
    let service = Service::start();
    let client = service.client();
    for len in [1100, 2000] {
        let path = format!("/users/{}", "u".repeat(len));
        client
            .get(&path, &[])
            .assert_problem(404, "/problems/not-found", &path, &json!({}));
        let user = json!({"username": "ada", "email": "ada@example.com"});
        client
            .send_json("PUT", &path, &[("if-match", "\"1\"")], &user)
            .assert_problem(404, "/problems/not-found", &path, &json!({}));
    }
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

/// A request refused before its body is read (here for a malformed `If-Match`) leaves the
/// keep-alive connection usable: the next request on it is answered. The client sends
/// `Expect: 100-continue`, as curl does for larger bodies, and sends its body only after the
/// server's `100 Continue`. Without the `read_body_first` middleware the server answers `400`
/// without asking for the body, and must then close the connection, since it cannot know
/// where the next request starts.
#[test]
fn a_request_refused_before_its_body_is_read_keeps_the_connection_alive() {
    let service = Service::start();
    let (id, _) = service.client().create_user("ada", "ada@example.com");
    let mut connection = TcpStream::connect(service.address).expect("connect");
    let mut reader = BufReader::new(connection.try_clone().expect("clone"));
    let body = json!({"username": "ada", "email": "ada@example.com"}).to_string();
    write!(
        connection,
        "PUT /users/{id} HTTP/1.1\r\nhost: revkv\r\ncontent-type: application/json\r\n\
         if-match: not-a-tag\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .expect("send the head");
    let mut status = read_answer(&mut reader);
    if status == Some(100) {
        connection
            .write_all(body.as_bytes())
            .expect("send the body");
        status = read_answer(&mut reader);
    }
    assert_eq!(status, Some(400));
    write!(
        connection,
        "GET /users/{id} HTTP/1.1\r\nhost: revkv\r\n\r\n"
    )
    .expect("send");
    assert_eq!(
        read_answer(&mut reader),
        Some(200),
        "the connection was closed after the refusal"
    );
}

/// Reads one answer from a raw HTTP/1.1 connection, its body to the end; returns its status,
/// or `None` if the server closed the connection instead.
fn read_answer(reader: &mut impl BufRead) -> Option<u16> {
    let mut status = String::new();
    if reader.read_line(&mut status).ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    reader.read_exact(&mut vec![0; length]).ok()?;
    status.split(' ').nth(1)?.parse().ok()
}

#[test]
fn every_location_leads_to_its_item_and_dot_segments_are_no_skus() {
    let service = Service::start();
    let client = service.client();
    for sku in [".", ".."] {
        let answer = client.post("/items", &json!({"sku": sku, "stock": 1}));
        answer.assert_problem(422, "/problems/invalid-body", "/items", &json!({}));
    }
    for sku in ["a.b", "...", ".x", "x.", "-", "_"] {
        let created = client.post("/items", &json!({"sku": sku, "stock": 1}));
        assert_eq!(created.status, 201, "{sku}: {}", created.body);
        let read = client.get(created.header("location"), &[]);
        assert_eq!((read.status, read.json()["sku"].as_str()), (200, Some(sku)));
    }
}

#[test]
fn an_order_for_a_sku_no_item_can_have_is_422_naming_no_collection() {
    let service = Service::start();
    let client = service.client();
    let long = "s".repeat(1100);
    for sku in ["", long.as_str(), "..", "no-such-item"] {
        let answer = client.post("/orders", &json!({"sku": sku, "quantity": 1}));
        let body = answer.assert_problem(422, "/problems/invalid-body", "/orders", &json!({}));
        let detail = body["detail"].as_str().expect("detail");
        assert!(detail.contains("no item"), "{detail}");
        assert!(!detail.contains("collection"), "{detail}");
    }
}

#[test]
fn a_path_that_is_not_utf_8_is_a_400_problem() {
    let service = Service::start();
    let client = service.client();
    for path in ["/users/%FF", "/items/%FF", "/orders/%FF", "/docs/%C3%28"] {
        let answer = client.get(path, &[]);
        answer.assert_problem(400, "/problems/bad-request", path, &json!({}));
    }
    let transition = client.post("/orders/%FF/transitions", &json!({"to": "paid"}));
    transition.assert_problem(
        400,
        "/problems/bad-request",
        "/orders/%FF/transitions",
        &json!({}),
    );
}

#[test]
fn query_strings_are_percent_decoded() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 1);
    client.create_item("tea-2", 1);
    let encoded = client.get("/changes?since=%30&li%6Dit=%31", &[]);
    assert_eq!(encoded.status, 200, "{}", encoded.body);
    let plain = client.get("/changes?since=0&limit=1", &[]);
    assert_eq!(encoded.json(), plain.json());
    assert_eq!(encoded.json()["changes"].as_array().map(Vec::len), Some(1));
    let space = client.get("/changes?since=+0", &[]);
    space.assert_problem(400, "/problems/bad-request", "/changes", &json!({}));
}

#[test]
fn a_patch_refused_with_415_says_what_it_accepts() {
    let service = Service::start();
    let client = service.client();
    let doc = client.post("/docs", &json!({"title": "t", "body": "b", "tags": []}));
    let doc_path = format!("/docs/{}", doc.json()["id"].as_str().expect("id"));
    let patch = client.send(
        "PATCH",
        &doc_path,
        &[("content-type", "text/plain"), ("if-match", "\"1\"")],
        "{}",
    );
    patch.assert_problem(
        415,
        "/problems/unsupported-media-type",
        &doc_path,
        &json!({}),
    );
    assert_eq!(patch.header("accept-patch"), "application/json");
    let put = client.send("POST", "/items", &[("content-type", "text/plain")], "{}");
    assert_eq!(put.status, 415);
    assert_eq!(put.header("accept"), "application/json");
    assert!(put.headers.get("accept-patch").is_none(), "only for PATCH");
}
