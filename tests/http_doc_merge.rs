//! Documents over HTTP: edits of different fields made to the same version both survive,
//! different edits of one field are the rule conflict `merge_conflict` naming it, and an edit
//! of a version the history no longer keeps is a version conflict with `current_version`.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use app::docs::DOC_HISTORY;
use serde_json::{Value, json};
use support::{Answer, Client, Service};

/// Creates a document; returns its path and version.
fn create(client: &Client, doc: &Value) -> (String, u64) {
    let answer = client.post("/docs", doc);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let version = answer.json()["version"].as_u64().expect("version");
    (answer.header("location").to_owned(), version)
}

/// Sends the whole edited document with the version it was edited from.
fn edit(client: &Client, path: &str, version: u64, doc: &Value) -> Answer {
    let mut body = doc.clone();
    body["version"] = json!(version);
    client.send_json("PATCH", path, &[], &body)
}

fn draft() -> Value {
    json!({"title": "Draft", "body": "Hello", "tags": []})
}

/// `doc` with `field` set to `value`.
fn with(doc: &Value, field: &str, value: Value) -> Value {
    let mut doc = doc.clone();
    doc[field] = value;
    doc
}

/// The fields of a document answer, without `id` and `version`.
fn fields(answer: &Answer) -> Value {
    let body = answer.json();
    json!({"title": body["title"], "body": body["body"], "tags": body["tags"]})
}

#[test]
fn edits_of_different_fields_from_one_version_both_survive() {
    let service = Service::start();
    let client = service.client();
    let (path, v1) = create(&client, &draft());

    let alice = edit(&client, &path, v1, &with(&draft(), "title", json!("Final")));
    assert_eq!(alice.status, 200, "{}", alice.body);
    let bob = edit(
        &client,
        &path,
        v1,
        &with(&draft(), "tags", json!(["urgent"])),
    );
    assert_eq!(bob.status, 200, "{}", bob.body);

    let both = json!({"title": "Final", "body": "Hello", "tags": ["urgent"]});
    assert_eq!(fields(&bob), both);
    assert_eq!(bob.header("etag"), format!("\"{}\"", bob.json()["version"]));
    let read = client.get(&path, &[]);
    assert_eq!(
        (fields(&read), read.header("etag")),
        (both, bob.header("etag"))
    );

    // The same change made on both sides is no conflict either.
    let carol = edit(&client, &path, v1, &with(&draft(), "title", json!("Final")));
    assert_eq!(carol.status, 200, "{}", carol.body);
    assert_eq!(carol.json()["title"], "Final");
}

#[test]
fn different_edits_of_one_field_are_a_merge_conflict_naming_it() {
    let service = Service::start();
    let client = service.client();
    let (path, v1) = create(&client, &draft());
    let alice = edit(
        &client,
        &path,
        v1,
        &with(&draft(), "body", json!("Alice's")),
    );
    assert_eq!(alice.status, 200);

    let bob = edit(&client, &path, v1, &with(&draft(), "body", json!("Bob's")));
    let problem = bob.assert_problem(
        409,
        "/problems/rule-violation",
        &path,
        &json!({"conflict": "rule", "code": "merge_conflict"}),
    );
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("the body"), "{detail}");
    assert_eq!(client.get(&path, &[]).json()["body"], "Alice's");
}

#[test]
fn an_edit_of_a_version_the_history_no_longer_keeps_is_a_version_conflict() {
    let service = Service::start();
    let client = service.client();
    let (path, v1) = create(&client, &draft());
    let mut current = v1;
    for n in 0..DOC_HISTORY {
        let answer = edit(
            &client,
            &path,
            current,
            &with(&draft(), "body", json!(n.to_string())),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        current = answer.json()["version"].as_u64().expect("version");
    }
    // v1 is the oldest of the versions kept: an edit of it still merges...
    let merged = edit(&client, &path, v1, &with(&draft(), "title", json!("Final")));
    assert_eq!(merged.status, 200, "{}", merged.body);
    let current = merged.json()["version"].as_u64().expect("version");
    // ...and that update pushed it out of the history.
    let late = edit(&client, &path, v1, &with(&draft(), "tags", json!(["late"])));
    let problem = late.assert_problem(
        409,
        "/problems/version-conflict",
        &path,
        &json!({"conflict": "version", "current_version": current}),
    );
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("no longer holds"), "{detail}");
    assert_eq!(client.get(&path, &[]).json()["tags"], json!([]));
}

#[test]
fn if_match_replaces_only_the_version_it_names_and_never_merges() {
    let service = Service::start();
    let client = service.client();
    let (path, v1) = create(&client, &draft());
    let send =
        |headers: &[(&str, &str)], doc: &Value| client.send_json("PATCH", &path, headers, doc);
    let etag = format!("\"{v1}\"");

    let replaced = send(&[("if-match", &etag)], &with(&draft(), "title", json!("A")));
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let current = replaced.json()["version"].as_u64().expect("version");
    send(&[("if-match", &etag)], &with(&draft(), "body", json!("B"))).assert_problem(
        412,
        "/problems/precondition-failed",
        &path,
        &json!({"conflict": "version", "current_version": current, "header": "If-Match"}),
    );
    send(&[], &draft()).assert_problem(428, "/problems/precondition-required", &path, &json!({}));
    let both = with(&draft(), "version", json!(current));
    let current_etag = format!("\"{current}\"");
    let never_ignored = [
        ("if-match", current_etag.as_str()),
        ("if-match", "*"),
        ("if-none-match", "\"0\""),
        ("if-unmodified-since", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ];
    for precondition in never_ignored {
        send(&[precondition], &both).assert_problem(
            400,
            "/problems/bad-request",
            &path,
            &json!({}),
        );
    }
    assert_eq!(client.get(&path, &[]).json()["title"], "A");
    let missing = edit(&client, "/docs/d_none", v1, &draft());
    assert_eq!(missing.status, 404, "{}", missing.body);
}
