//! Races over real HTTP: clients on their own threads, released together by a barrier, and
//! only outcomes asserted, never timing. Thirty-two clients registering users of their own
//! all succeed; sixteen registrations of one e-mail make one user;
//! sixteen buyers of the last five items make five orders; two writers with one ETag make one
//! change.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::collections::HashSet;
use std::sync::Barrier;

use serde_json::json;
use support::{Answer, Client, Service};

const CLIENTS: usize = 16;

/// Runs `request(client, i)` for `count` clients at once; returns the answers in order.
fn all_at_once(
    client: &Client,
    count: usize,
    request: impl Fn(&Client, usize) -> Answer + Sync,
) -> Vec<Answer> {
    let barrier = Barrier::new(count);
    std::thread::scope(|s| {
        let racers: Vec<_> = (0..count)
            .map(|i| {
                let (barrier, request, client) = (&barrier, &request, client.clone());
                s.spawn(move || {
                    barrier.wait();
                    request(&client, i)
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().expect("client thread"))
            .collect()
    })
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[test]
fn sixteen_registrations_of_one_email_make_one_user() {
    let service = Service::start();
    let client = service.client();
    let answers = all_at_once(&client, CLIENTS, |client, i| {
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        client.post(
            "/users",
            &json!({"username": format!("racer-{i}"), "email": email}),
        )
    });
    assert_eq!(
        (count(&answers, 201), count(&answers, 409)),
        (1, CLIENTS - 1)
    );
    for conflict in answers.iter().filter(|a| a.status == 409) {
        conflict.assert_problem(
            409,
            "/problems/unique-violation",
            "/users",
            &json!({"conflict": "unique", "index": "email"}),
        );
    }
    let winner = answers
        .iter()
        .find(|a| a.status == 201)
        .expect("one winner");
    let stored = client.get(winner.header("location"), &[]);
    assert_eq!(stored.json(), winner.json());
    let report = service.app.store.verify().expect("verify");
    assert!(report.is_clean(), "{report:?}");
}

/// What a load test of registrations does: 32 connections, each registering users of its own.
/// Every one is created (a run of wrk that sent each name from two threads saw half its
/// answers `409`, rightly: `benches/wrk/users.lua` gives every thread names of its own).
#[test]
fn thirty_two_clients_registering_fresh_users_are_all_created() {
    const CONNECTIONS: usize = 32;
    const EACH: usize = 10;
    let service = Service::start();
    let client = service.client();
    let answers = all_at_once(&client, CONNECTIONS, |client, i| {
        let mut last = None;
        for n in 0..EACH {
            let name = format!("load-{i}-{n}");
            let answer = client.post(
                "/users",
                &json!({"username": name, "email": format!("{name}@example.com")}),
            );
            assert_eq!(answer.status, 201, "{}", answer.body);
            last = Some(answer);
        }
        last.expect("at least one")
    });
    assert_eq!(count(&answers, 201), CONNECTIONS);
    let report = service.app.store.verify().expect("verify");
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn sixteen_buyers_of_the_last_five_items_make_five_orders() {
    let service = Service::start();
    let client = service.client();
    client.create_item("last-tea", 5);
    let answers = all_at_once(&client, CLIENTS, |client, _| {
        client.post("/orders", &json!({"sku": "last-tea", "quantity": 1}))
    });
    assert_eq!(
        (count(&answers, 201), count(&answers, 409)),
        (5, CLIENTS - 5)
    );
    for sold_out in answers.iter().filter(|a| a.status == 409) {
        sold_out.assert_problem(
            409,
            "/problems/rule-violation",
            "/orders",
            &json!({"conflict": "rule", "code": "out_of_stock"}),
        );
    }
    assert_eq!(client.stock("last-tea"), 0);
    let ids: HashSet<String> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|order| {
            let stored = client.get(order.header("location"), &[]).json();
            assert_eq!(stored["status"], "pending");
            stored["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 5, "five distinct orders");
}

#[test]
fn two_writers_with_one_etag_make_one_change() {
    let service = Service::start();
    let client = service.client();
    let (id, etag) = client.create_user("ada", "ada@example.com");
    let path = format!("/users/{id}");
    let answers = all_at_once(&client, 2, |client, i| {
        let email = format!("writer-{i}@example.com");
        client.send_json(
            "PUT",
            &path,
            &[("if-match", &etag)],
            &json!({"username": "ada", "email": email}),
        )
    });
    assert_eq!((count(&answers, 200), count(&answers, 412)), (1, 1));
    let winner = answers
        .iter()
        .find(|a| a.status == 200)
        .expect("one winner");
    let loser = answers.iter().find(|a| a.status == 412).expect("one loser");
    let current = winner.json()["version"].clone();
    loser.assert_problem(
        412,
        "/problems/precondition-failed",
        &path,
        &json!({"conflict": "version", "current_version": current, "header": "If-Match"}),
    );
    assert_eq!(
        client.get(&path, &[]).json(),
        winner.json(),
        "the winner's change stands"
    );
}
