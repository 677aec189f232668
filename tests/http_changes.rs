//! `GET /changes` over HTTP: every change in commit order with the record as `GET` shows it
//! (users without their e-mails),
//! `next` to resume without a gap or a repeat, long polling that answers when a write
//! commits, `410` with `oldest` for a position the feed no longer keeps, `400` for a
//! malformed query.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::time::{Duration, Instant};

use revkv::http::Policy;
use revkv::{Retention, Store};
use serde_json::{Value, json};
use support::{Client, Service};

/// The page of changes after `since`, with `extra` query parameters.
fn changes(client: &Client, since: u64, extra: &str) -> (Vec<Value>, u64) {
    let answer = client.get(&format!("/changes?since={since}{extra}"), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), "application/json");
    let body = answer.json();
    let next = body["next"].as_u64().expect("next");
    (body["changes"].as_array().expect("changes").clone(), next)
}

fn seq(change: &Value) -> u64 {
    change["seq"].as_u64().expect("seq")
}

/// What a change says happened, without its position and version.
fn what(change: &Value) -> (&str, &str, &str) {
    let text = |member: &str| change[member].as_str().expect(member);
    (text("collection"), text("key"), text("kind"))
}

#[test]
fn changes_come_in_commit_order_and_next_resumes_without_gap_or_repeat() {
    let service = Service::start();
    let client = service.client();
    let (user, etag) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{user}");
    let user_body = json!({"username": "ada", "email": "ada@lovelace.org"});
    let replaced = client.send_json("PUT", &path, &[("if-match", &etag)], &user_body);
    let item = client.post("/items", &json!({"sku": "tea-1", "stock": 5}));
    let etag = format!("\"{}\"", replaced.json()["version"]);
    assert_eq!(
        client
            .send("DELETE", &path, &[("if-match", &etag)], "")
            .status,
        204
    );

    let (all, next) = changes(&client, 0, "");
    let kinds: Vec<_> = all.iter().map(what).collect();
    assert_eq!(
        kinds,
        [
            ("users", user.as_str(), "insert"),
            ("users", user.as_str(), "update"),
            ("items", "tea-1", "insert"),
            ("users", user.as_str(), "delete"),
        ]
    );
    assert!(all.windows(2).all(|pair| seq(&pair[0]) < seq(&pair[1])));
    assert_eq!(next, seq(&all[3]));
    // Each record as GET showed it at that version, a user without its e-mail, which
    // nobody may learn from the feed; a deletion has none.
    let mut public_user = replaced.json();
    public_user
        .as_object_mut()
        .expect("a user")
        .remove("email")
        .expect("GET shows the e-mail");
    assert_eq!(all[1]["value"], public_user);
    assert_eq!(all[1]["version"], replaced.json()["version"]);
    let feed = client.get("/changes?since=0", &[]).body;
    assert!(
        !feed.contains("example.com") && !feed.contains("lovelace.org"),
        "{feed}"
    );
    assert_eq!(all[2]["value"], item.json());
    assert!(all[3].get("value").is_none(), "{}", all[3]);
    assert!(all[3]["version"].as_u64() > all[1]["version"].as_u64());

    assert_eq!(changes(&client, next, ""), (vec![], next));
    assert_eq!(changes(&client, seq(&all[1]), "").0, all[2..]);
    // One at a time, following next, gives the same changes.
    let (mut one_by_one, mut since) = (Vec::new(), 0);
    loop {
        let (page, next) = changes(&client, since, "&limit=1");
        if page.is_empty() {
            break;
        }
        assert_eq!((page.len(), next), (1, seq(&page[0])));
        one_by_one.extend(page);
        since = next;
    }
    assert_eq!(one_by_one, all);
}

#[test]
fn a_long_poll_answers_when_a_write_commits_and_skips_the_services_bookkeeping() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 5);
    let (_, next) = changes(&client, 0, "");

    let poll = std::thread::spawn({
        let client = client.clone();
        move || changes(&client, next, "&wait=30")
    });
    // With a key, the service first records its claim: a change the feed does not show.
    let created = client.send_json(
        "POST",
        "/items",
        &[("idempotency-key", "k")],
        &json!({"sku": "tea-2", "stock": 3}),
    );
    assert_eq!(created.status, 201);
    let (page, after) = poll.join().expect("the poll answers");
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(what(&page[0]), ("items", "tea-2", "insert"));
    assert_eq!(page[0]["value"], created.json());
    assert!(after >= seq(&page[0]));
    assert_eq!(changes(&client, after, "").0, Vec::<Value>::new());
}

#[test]
fn a_wait_without_a_write_ends_with_an_empty_page() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 5);
    let (_, next) = changes(&client, 0, "");
    let asked = Instant::now();
    assert_eq!(changes(&client, next, "&wait=1"), (vec![], next));
    assert!(asked.elapsed() >= Duration::from_secs(1), "it waited");
}

#[test]
fn a_position_the_feed_no_longer_keeps_is_410_with_the_oldest_it_keeps() {
    // Retention is the local engine's (etcd's compaction: tests/etcd_engine.rs).
    let dir = tempfile::tempdir().expect("a directory");
    let store = Store::builder()
        .path(dir.path())
        .change_feed(Retention::new(1, Duration::from_secs(3600)))
        .open()
        .expect("store");
    let service = Service::start_with(store, Policy::default());
    let client = service.client();
    client.create_item("tea-1", 5);
    let (seen, _) = changes(&client, 0, "");
    assert_eq!(seen.len(), 1);

    // The feed prunes what retention lets go at the first sync after every 1024 commits
    // (`PRUNE_EVERY` in src/engine/local/feed.rs), and only what an earlier flush made durable.
    let store = &service.app.store;
    let scratch = store.collection::<u32>("scratch").open().expect("scratch");
    scratch.insert("first", 0).expect("insert");
    store.flush().expect("flush");
    for n in 0..1024 {
        scratch.insert(&n.to_string(), n).expect("insert");
    }
    store.flush().expect("flush");

    let gone = client.get("/changes?since=0", &[]);
    let problem = gone.json();
    let oldest = problem["oldest"].as_u64().expect("oldest");
    gone.assert_problem(
        410,
        "/problems/history-compacted",
        "/changes",
        &json!({"oldest": oldest}),
    );
    assert!(oldest > seq(&seen[0]), "{problem}");
    // Resuming from just before the oldest kept position works (scratch is not shown).
    let (page, next) = changes(&client, oldest - 1, "");
    assert_eq!((page, next >= oldest), (vec![], true));
}

#[test]
fn malformed_queries_are_400() {
    let service = Service::start();
    let client = service.client();
    for query in [
        "",
        "?since=",
        "?since=abc",
        "?since=-1",
        "?since=%2B1",
        "?since=1&since=2",
        "?since=1&wait=31",
        "?since=1&limit=0",
        "?since=1&limit=1001",
        "?since=1&from=2",
    ] {
        client.get(&format!("/changes{query}"), &[]).assert_problem(
            400,
            "/problems/bad-request",
            "/changes",
            &json!({}),
        );
    }
}

#[test]
fn a_store_without_a_change_feed_is_500_saying_nothing_more() {
    let store = Store::temporary().expect("store");
    let service = Service::start_with(store, Policy::default());
    let answer = service.client().get("/changes?since=0", &[]);
    answer.assert_problem(500, "/problems/internal-error", "/changes", &json!({}));
    assert!(!answer.body.contains("feed"), "{}", answer.body);
}
