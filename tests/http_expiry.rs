//! Expiry in the example service, on a manual clock with sweeps run by the test: an unpaid
//! order's hold lapses and its stock returns exactly once; paying or cancelling ends the hold;
//! an `Idempotency-Key` is free again after its time to live.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::time::{Duration, SystemTime};

use app::Settings;
use revkv::ManualClock;
use revkv::http::Policy;
use serde_json::json;
use support::{Client, Service};

const HOLD_SECONDS: u64 = 15 * 60;
const KEY_TTL_SECONDS: u64 = 60;
const SECOND: Duration = Duration::from_secs(1);

/// The service on a store whose clock only the test moves.
fn service_on(clock: &ManualClock) -> Service {
    let store = support::feed_store()
        .clock(clock.clone())
        .open()
        .expect("store");
    let settings = Settings {
        hold: Duration::from_secs(HOLD_SECONDS),
        idempotency_ttl: Duration::from_secs(KEY_TTL_SECONDS),
    };
    Service::start_configured(store, Policy::default(), settings)
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// Places an order; returns its path.
fn place(client: &Client, sku: &str, quantity: u32) -> String {
    let answer = client.post("/orders", &json!({"sku": sku, "quantity": quantity}));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.header("location").to_owned()
}

fn move_to(client: &Client, order: &str, to: &str) -> u16 {
    client
        .post(&format!("{order}/transitions"), &json!({"to": to}))
        .status
}

fn sweep(service: &Service) -> usize {
    service.app.store.sweep_expired().expect("sweep")
}

#[test]
fn a_lapsed_hold_returns_its_stock_once() {
    let clock = clock();
    let service = service_on(&clock);
    let client = service.client();
    client.create_item("tea-1", 10);
    let order = place(&client, "tea-1", 3);
    assert_eq!(client.stock("tea-1"), 7);

    clock.advance(Duration::from_secs(HOLD_SECONDS - 1));
    assert_eq!(sweep(&service), 0, "the hold has not lapsed yet");
    assert_eq!(client.get(&order, &[]).status, 200);

    clock.advance(SECOND);
    // Lapsed: the order reads as absent and can no longer be paid, even before the sweep.
    assert_eq!(client.get(&order, &[]).status, 404);
    assert_eq!(move_to(&client, &order, "paid"), 404);
    assert_eq!(client.stock("tea-1"), 7, "the sweep returns the stock");

    assert_eq!(sweep(&service), 1);
    assert_eq!(client.stock("tea-1"), 10);
    assert_eq!(sweep(&service), 0);
    assert_eq!(client.stock("tea-1"), 10, "returned once");
}

#[test]
fn paying_or_cancelling_ends_the_hold() {
    let clock = clock();
    let service = service_on(&clock);
    let client = service.client();
    client.create_item("tea-1", 10);
    let paid = place(&client, "tea-1", 2);
    let cancelled = place(&client, "tea-1", 3);
    assert_eq!(move_to(&client, &paid, "paid"), 200);
    assert_eq!(move_to(&client, &cancelled, "cancelled"), 200);
    assert_eq!(client.stock("tea-1"), 8, "the cancellation returned its 3");

    clock.advance(Duration::from_secs(HOLD_SECONDS * 2));
    assert_eq!(sweep(&service), 0, "neither order expires any more");
    assert_eq!(client.stock("tea-1"), 8, "no stock returned twice");
    for (order, status) in [(&paid, "paid"), (&cancelled, "cancelled")] {
        let answer = client.get(order, &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["status"], status);
    }
}

#[test]
fn an_idempotency_key_is_free_again_after_its_time_to_live() {
    let clock = clock();
    let service = service_on(&clock);
    let client = service.client();
    let create = |sku: &str| {
        client.send_json(
            "POST",
            "/items",
            &[("idempotency-key", "k")],
            &json!({"sku": sku, "stock": 5}),
        )
    };
    assert_eq!(create("tea-1").status, 201);

    clock.advance(Duration::from_secs(KEY_TTL_SECONDS - 1));
    assert_eq!(create("tea-2").status, 422, "the key is still taken");
    let replay = create("tea-1");
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), "true");

    clock.advance(SECOND);
    let second = create("tea-2");
    assert_eq!(second.status, 201, "{}", second.body);
    assert!(second.headers.get("idempotent-replayed").is_none());
    assert_eq!(client.stock("tea-2"), 5);
    // The key now stands for the second request, for a time to live of its own.
    let replay = create("tea-2");
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.body, second.body);
    assert_eq!(create("tea-1").status, 422);
}
