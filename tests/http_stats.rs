//! `GET /stats`: the store's conflict counters over HTTP match the conflicts the test
//! provoked, exactly, by collection and kind, sequentially and in a race; the key with the
//! most conflicts leads the hot keys, and an idempotency key is never shown.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, SystemTime};

use revkv::http::Policy;
use revkv::{HOT_KEY_WINDOW, ManualClock};
use serde_json::{Value, json};
use support::{Client, Service};

/// An `Idempotency-Key`, which lets whoever knows it replay its answer: never shown.
const SECRET_KEY: &str = "k-7f3a9c";

/// Conflict counts by (collection, kind), or by (collection, key) for the hot keys.
type Counts = BTreeMap<(String, String), u64>;

fn stats(client: &Client) -> Value {
    let answer = client.get("/stats", &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn conflicts(stats: &Value) -> Counts {
    let list = stats["conflicts"].as_array().expect("conflicts");
    list.iter()
        .map(|entry| {
            let text = |member: &str| entry[member].as_str().expect(member).to_owned();
            let count = entry["count"].as_u64().expect("count");
            ((text("collection"), text("kind")), count)
        })
        .collect()
}

/// The hot keys, most conflicts first, with `(hidden)` for a key the service does not show,
/// which only an idempotency key may be.
fn hot_keys(stats: &Value) -> Vec<((String, String), u64)> {
    let hot = stats["hot_keys"].as_array().expect("hot_keys");
    hot.iter()
        .map(|entry| {
            let collection = entry["collection"].as_str().expect("collection").to_owned();
            let key = match entry.get("key") {
                Some(key) => key.as_str().expect("key").to_owned(),
                None => {
                    assert_eq!(collection, "idempotency-keys", "{entry}");
                    "(hidden)".to_owned()
                }
            };
            let n = entry["conflicts"].as_u64().expect("conflicts");
            ((collection, key), n)
        })
        .collect()
}

fn counts(expected: &[(&str, &str, u64)]) -> Counts {
    expected
        .iter()
        .map(|&(collection, kind, n)| ((collection.to_owned(), kind.to_owned()), n))
        .collect()
}

/// The service on a store whose clock stands still, so the hot-key window cannot move on.
fn service() -> Service {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = support::feed_store().clock(clock).open().expect("store");
    Service::start_with(store, Policy::default())
}

#[test]
fn every_conflict_is_counted_once_by_collection_and_kind() {
    let service = service();
    let client = service.client();
    assert_eq!(conflicts(&stats(&client)), Counts::new());

    // users: two unique conflicts; two stale versions in a body, one under a good If-Match.
    let (ada, etag) = client.create_user("ada", "ada@example.com");
    for name in ["bob", "cy"] {
        let taken = json!({"username": name, "email": "ADA@example.com"});
        assert_eq!(client.post("/users", &taken).status, 409);
    }
    let stale = json!({"username": "ada", "email": "a@b.c", "version": 1_u64 << 40});
    let path = format!("/users/{ada}");
    assert_eq!(client.send_json("PUT", &path, &[], &stale).status, 409);
    // A failed If-Match is decided by the adapter before the store is asked: not a conflict.
    let wrong = [("if-match", "\"999999\"")];
    assert_eq!(client.send_json("PUT", &path, &wrong, &stale).status, 412);
    assert_eq!(
        client
            .send_json("PUT", &path, &[("if-match", &etag)], &stale)
            .status,
        409,
        "a version in the body is checked by the store"
    );
    // items: a taken SKU, and an order beyond the stock of another.
    client.create_item("tea-1", 5);
    client.create_item("tea-2", 1);
    assert_eq!(
        client
            .post("/items", &json!({"sku": "tea-1", "stock": 1}))
            .status,
        409
    );
    let too_many = json!({"sku": "tea-2", "quantity": 2});
    assert_eq!(client.post("/orders", &too_many).status, 409);
    // orders: an illegal transition.
    let order = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
    let transitions = format!("{}/transitions", order.header("location"));
    assert_eq!(
        client.post(&transitions, &json!({"to": "shipped"})).status,
        409
    );
    // docs: a merge conflict and a base the history never held, both on one document.
    let doc = client.post("/docs", &json!({"title": "t", "body": "b", "tags": []}));
    let (doc_path, v1) = (doc.header("location"), doc.json()["version"].clone());
    let edit = |body: &str, version: &Value| {
        let edited = json!({"title": "t", "body": body, "tags": [], "version": version});
        client.send_json("PATCH", doc_path, &[], &edited).status
    };
    assert_eq!(edit("theirs", &v1), 200);
    assert_eq!(edit("mine", &v1), 409);
    assert_eq!(edit("mine", &json!(1_u64 << 40)), 409);
    // idempotency-keys: a replay finds its key taken.
    let keyed = |sku: &str| {
        let body = json!({"sku": sku, "stock": 1});
        client.send_json("POST", "/items", &[("idempotency-key", SECRET_KEY)], &body)
    };
    assert_eq!(keyed("tea-3").status, 201);
    assert_eq!(keyed("tea-3").header("idempotent-replayed"), "true");

    let body = client.get("/stats", &[]).body;
    assert!(
        !body.contains(SECRET_KEY),
        "an idempotency key is a secret: {body}"
    );
    let stats = stats(&client);
    let expected = counts(&[
        ("docs", "rule", 1),
        ("docs", "version", 1),
        ("idempotency-keys", "exists", 1),
        ("items", "exists", 1),
        ("items", "rule", 1),
        ("orders", "transition", 1),
        ("users", "unique", 2),
        ("users", "version", 2),
    ]);
    assert_eq!(conflicts(&stats), expected);
    assert_eq!(
        stats["update_with"],
        json!({"calls": 0, "retries": 0, "exhausted": 0})
    );
    assert_eq!(stats["transaction_reruns"], 0);
    assert_eq!(stats["hot_key_window_seconds"], HOT_KEY_WINDOW.as_secs());
    // Every conflict names its record, but for an idempotency key; most conflicts first.
    let hot = hot_keys(&stats);
    assert!(hot.windows(2).all(|pair| pair[0].1 >= pair[1].1), "{hot:?}");
    let order_id = order.header("location").trim_start_matches("/orders/");
    let doc_id = doc_path.trim_start_matches("/docs/");
    let mut by_key: Counts = hot.into_iter().collect();
    let named = counts(&[
        ("docs", doc_id, 2),
        ("users", &ada, 2),
        ("idempotency-keys", "(hidden)", 1),
        ("items", "tea-1", 1),
        ("items", "tea-2", 1),
        ("orders", order_id, 1),
    ]);
    for (record, n) in &named {
        assert_eq!(by_key.remove(record), Some(*n), "{record:?}");
    }
    // The refused registrations, under the ids they would have had.
    assert_eq!(by_key.len(), 2, "{by_key:?}");
    assert!(
        by_key
            .iter()
            .all(|((collection, _), n)| collection == "users" && *n == 1)
    );
}

#[test]
fn racing_registrations_are_counted_exactly() {
    const CLIENTS: usize = 8;
    let service = service();
    let client = service.client();
    let barrier = Barrier::new(CLIENTS);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (barrier, client) = (&barrier, client.clone());
                s.spawn(move || {
                    barrier.wait();
                    let user = json!({"username": format!("u{i}"), "email": "same@example.com"});
                    client.post("/users", &user).status
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("client"))
            .collect()
    });
    let refused = statuses.iter().filter(|&&status| status == 409).count();
    assert_eq!(
        (statuses.iter().filter(|&&s| s == 201).count(), refused),
        (1, CLIENTS - 1)
    );
    let counted = conflicts(&stats(&client));
    assert_eq!(
        counted,
        counts(&[("users", "unique", u64::try_from(refused).expect("small"))])
    );
}
