//! Conditional requests over HTTP: `304` for a client that has the record, `428` for an
//! unconditional write, `412` with the current version for a stale `If-Match`, `409` for a
//! stale version in the body, `400` for a malformed precondition, and the policy switch that
//! answers failed preconditions with `409`.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use revkv::http::Policy;
use revkv::{ManualClock, Store};
use serde_json::{Value, json};
use support::{Client, Service, feed_store};

/// 0.5 s past a whole second: what the store's clock says in the tests of dates.
const HALF_PAST: u64 = 1_700_000_000_500;

/// The service on a store whose clock stands at `HALF_PAST` until the test moves it.
fn service_with_clock() -> (Service, ManualClock) {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(HALF_PAST));
    let store = feed_store().clock(clock.clone()).open().expect("store");
    (Service::start_with(store, Policy::default()), clock)
}

/// The HTTP-date `millis` after the epoch names (its whole second).
fn date(millis: u64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_millis(millis))
}

fn user_body() -> Value {
    json!({"username": "ada", "email": "ada@example.com"})
}

/// A user's path and version after one replacement, so that its first ETag is stale.
fn user_at_second_version(client: &Client) -> (String, String, u64) {
    let (id, first_etag) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let replaced = client.send_json("PUT", &path, &[("if-match", &first_etag)], &user_body());
    assert_eq!(replaced.status, 200);
    let current = replaced.json()["version"].as_u64().expect("version");
    (path, first_etag, current)
}

#[test]
fn if_none_match_with_the_current_etag_is_304_without_a_body() {
    let service = Service::start();
    let client = service.client();
    let (id, etag) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let weak = format!("W/{etag}");
    let list = format!("\"0\", {etag}");
    for tag in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
        let answer = client.get(&path, &[("if-none-match", tag)]);
        assert_eq!(answer.status, 304, "If-None-Match: {tag}");
        assert!(answer.body.is_empty());
        assert_eq!(answer.header("etag"), etag);
        assert!(httpdate::parse_http_date(answer.header("last-modified")).is_ok());
    }
    let other = client.get(&path, &[("if-none-match", "\"0\"")]);
    assert_eq!(other.status, 200);
    assert_eq!(other.json()["id"], id.as_str());
}

#[test]
fn if_modified_since_is_304_only_for_a_record_unchanged_since_the_date_began() {
    let (service, clock) = service_with_clock();
    let client = service.client();
    let (id, _) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let read = client.get(&path, &[]);
    let last_modified = read.header("last-modified").to_owned();
    assert_eq!(last_modified, date(HALF_PAST));

    let later_second = date(HALF_PAST + 1000);
    let unchanged = client.get(&path, &[("if-modified-since", &later_second)]);
    assert_eq!(
        unchanged.status, 304,
        "not changed since the next second began"
    );
    assert_eq!(unchanged.header("etag"), read.header("etag"));

    // A change within the same second: its Last-Modified is the same date as before.
    clock.advance(Duration::from_millis(100));
    let etag = read.header("etag");
    let put = client.send_json("PUT", &path, &[("if-match", etag)], &user_body());
    assert_eq!(put.status, 200);
    let current = format!("\"{}\"", put.json()["version"]);
    for since in [&last_modified, &later_second] {
        let answer = client.get(&path, &[("if-modified-since", since)]);
        let expected = if since == &last_modified { 200 } else { 304 };
        assert_eq!(answer.status, expected, "If-Modified-Since: {since}");
        assert_eq!(answer.header("etag"), current, "never the stale ETag");
    }
    let long_ago = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_eq!(
        client.get(&path, &[("if-modified-since", long_ago)]).status,
        200
    );
}

#[test]
fn if_unmodified_since_holds_only_for_a_record_unchanged_since_the_date_began() {
    let (service, _clock) = service_with_clock();
    let client = service.client();
    client.create_item("tea-1", 5);
    let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
    let id = ordered.json()["id"].as_str().expect("id").to_owned();
    let current = ordered.json()["version"].clone();
    let path = format!("/orders/{id}/transitions");
    let last_modified = client
        .get(&format!("/orders/{id}"), &[])
        .header("last-modified")
        .to_owned();
    for since in ["Sun, 06 Nov 1994 08:49:37 GMT", &last_modified] {
        let stale = client.send_json(
            "POST",
            &path,
            &[("if-unmodified-since", since)],
            &json!({"to": "paid"}),
        );
        stale.assert_problem(
            412,
            "/problems/precondition-failed",
            &path,
            &json!({"conflict": "version", "current_version": current, "header": "If-Unmodified-Since"}),
        );
    }
    let next_second = date(HALF_PAST + 1000);
    let paid = client.send_json(
        "POST",
        &path,
        &[("if-unmodified-since", &next_second)],
        &json!({"to": "paid"}),
    );
    assert_eq!(paid.status, 200, "{}", paid.body);
}

#[test]
fn a_write_without_a_precondition_is_428() {
    let service = Service::start();
    let client = service.client();
    let (id, _) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let put = client.send_json("PUT", &path, &[], &user_body());
    put.assert_problem(428, "/problems/precondition-required", &path, &json!({}));
    let delete = client.send("DELETE", &path, &[], "");
    delete.assert_problem(428, "/problems/precondition-required", &path, &json!({}));
    assert_eq!(client.get(&path, &[]).status, 200, "nothing was deleted");
}

#[test]
fn a_stale_if_match_is_412_with_the_current_version() {
    let service = Service::start();
    let client = service.client();
    let (path, stale, current) = user_at_second_version(&client);
    let expected = json!({"conflict": "version", "current_version": current, "header": "If-Match"});

    let put = client.send_json("PUT", &path, &[("if-match", &stale)], &user_body());
    put.assert_problem(412, "/problems/precondition-failed", &path, &expected);
    let delete = client.send("DELETE", &path, &[("if-match", &stale)], "");
    delete.assert_problem(412, "/problems/precondition-failed", &path, &expected);

    // The version the problem names is the one to send next.
    let fresh = format!("\"{current}\"");
    let put = client.send_json("PUT", &path, &[("if-match", &fresh)], &user_body());
    assert_eq!(put.status, 200);
}

#[test]
fn if_match_uses_strong_comparison_and_star_is_no_guard() {
    let service = Service::start();
    let client = service.client();
    let (id, etag) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let weak = format!("W/{etag}");
    let put = client.send_json("PUT", &path, &[("if-match", &weak)], &user_body());
    assert_eq!(put.status, 412, "a weak tag never matches If-Match");
    let put = client.send_json("PUT", &path, &[("if-match", "*")], &user_body());
    assert_eq!(
        put.status, 428,
        "* holds for any version, so it guards nothing"
    );
    let list = format!("\"1\", {etag}");
    let put = client.send_json("PUT", &path, &[("if-match", &list)], &user_body());
    assert_eq!(put.status, 200, "one member of the list matches");
}

#[test]
fn a_write_with_only_a_date_if_none_match_or_star_is_428_and_writes_nothing() {
    let service = Service::start();
    let client = service.client();
    let (id, _) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let read = client.get(&path, &[]);
    for (name, value) in [
        ("if-unmodified-since", read.header("last-modified")),
        ("if-unmodified-since", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("if-none-match", "\"nope\""),
        ("if-match", "*"),
    ] {
        let put = client.send_json("PUT", &path, &[(name, value)], &user_body());
        put.assert_problem(428, "/problems/precondition-required", &path, &json!({}));
        let delete = client.send("DELETE", &path, &[(name, value)], "");
        delete.assert_problem(428, "/problems/precondition-required", &path, &json!({}));
    }
    assert_eq!(
        client.get(&path, &[]).json(),
        read.json(),
        "nothing was written"
    );
}

#[test]
fn a_stale_version_in_the_body_is_409() {
    let service = Service::start();
    let client = service.client();
    let (path, _, current) = user_at_second_version(&client);
    let stale = current - 1;
    let body = json!({"username": "ada", "email": "ada@example.com", "version": stale});
    let put = client.send_json("PUT", &path, &[], &body);
    let expected = json!({"conflict": "version", "current_version": current});
    put.assert_problem(409, "/problems/version-conflict", &path, &expected);
    let delete = client.send_json("DELETE", &path, &[], &json!({"version": stale}));
    delete.assert_problem(409, "/problems/version-conflict", &path, &expected);

    let delete = client.send_json("DELETE", &path, &[], &json!({"version": current}));
    assert_eq!(delete.status, 204);
}

#[test]
fn preconditions_on_a_missing_user_are_404() {
    let service = Service::start();
    let client = service.client();
    let path = "/users/u_missing";
    let put = client.send_json("PUT", path, &[("if-match", "\"1\"")], &user_body());
    put.assert_problem(404, "/problems/not-found", path, &json!({}));
    let get = client.get(path, &[("if-none-match", "*")]);
    get.assert_problem(404, "/problems/not-found", path, &json!({}));
}

#[test]
fn invalid_dates_are_ignored_as_rfc_9110_requires() {
    let service = Service::start();
    let client = service.client();
    let (id, etag) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    for (name, value) in [
        ("if-modified-since", "2024-01-01"),
        ("if-modified-since", "yesterday"),
        ("if-unmodified-since", "yesterday"),
    ] {
        let get = client.get(&path, &[(name, value)]);
        assert_eq!(get.status, 200, "{name}: {value} is ignored on GET");
        let put = client.send_json("PUT", &path, &[(name, value)], &user_body());
        assert_eq!(
            put.status, 428,
            "{name}: {value} is ignored, so the PUT is unguarded"
        );
    }
    let put = client.send_json(
        "PUT",
        &path,
        &[("if-match", &etag), ("if-unmodified-since", "soon")],
        &user_body(),
    );
    assert_eq!(
        put.status, 200,
        "If-Match decides; the invalid date is ignored"
    );
}

#[test]
fn malformed_entity_tags_are_400_naming_the_header() {
    let service = Service::start();
    let client = service.client();
    let (id, _) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let cases = [
        ("if-match", "17"),
        ("if-match", "\"17"),
        ("if-none-match", "*, \"1\""),
    ];
    for (name, value) in cases {
        let title = name
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect::<Vec<_>>()
            .join("-");
        let put = client.send_json("PUT", &path, &[(name, value)], &user_body());
        put.assert_problem(
            400,
            "/problems/invalid-header",
            &path,
            &json!({"header": title}),
        );
        let get = client.get(&path, &[(name, value)]);
        assert_eq!(get.status, 400, "{name}: {value}");
    }
}

#[test]
fn transitions_honour_if_match() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 5);
    let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
    let id = ordered.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/orders/{id}/transitions");
    let paid = client.send_json(
        "POST",
        &path,
        &[("if-match", ordered.header("etag"))],
        &json!({"to": "paid"}),
    );
    assert_eq!(paid.status, 200);
    let current = paid.json()["version"].clone();
    let stale = client.send_json(
        "POST",
        &path,
        &[("if-match", ordered.header("etag"))],
        &json!({"to": "shipped"}),
    );
    stale.assert_problem(
        412,
        "/problems/precondition-failed",
        &path,
        &json!({"conflict": "version", "current_version": current, "header": "If-Match"}),
    );
    assert_eq!(
        client.get(&format!("/orders/{id}"), &[]).json()["status"],
        "paid"
    );
}

#[test]
fn the_policy_switch_answers_failed_preconditions_with_409() {
    let policy = Policy::default().precondition_failed_as_conflict(true);
    let service = Service::start_with(Store::temporary().expect("store"), policy);
    let client = service.client();
    let (path, stale, current) = user_at_second_version(&client);
    let put = client.send_json("PUT", &path, &[("if-match", &stale)], &user_body());
    put.assert_problem(
        409,
        "/problems/precondition-failed",
        &path,
        &json!({"conflict": "version", "current_version": current, "header": "If-Match"}),
    );
    let put = client.send_json("PUT", &path, &[], &user_body());
    assert_eq!(put.status, 428, "only failed preconditions change");
}
