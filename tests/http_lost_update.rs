//! No update is lost through a precondition: over the real HTTP stack, two writers that read
//! the same state and send the same validator at once never both succeed on a write that the
//! service accepts as conditional. A strong `If-Match` and a `version` in the body let exactly
//! one through; validators that cannot tell two versions apart (`If-Match: *`,
//! `If-None-Match`, `If-Unmodified-Since` with the `Last-Modified` they read) do not make a
//! write conditional, so the write is refused with `428` and nothing is overwritten.
//!
//! The store's clock stands still in the middle of one second, so every write lands in the
//! second its `Last-Modified` names: the case in which a date validator is blind.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use std::sync::Barrier;
use std::time::{Duration, UNIX_EPOCH};

use revkv::ManualClock;
use revkv::http::Policy;
use serde_json::{Value, json};
use support::{Client, Service, feed_store};

const ROUNDS: usize = 25;

/// The service on a store whose clock stands at 0.5 s past a whole second.
fn service_within_one_second() -> Service {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_700_000_000_500));
    let store = feed_store().clock(clock).open().expect("store");
    Service::start_with(store, Policy::default())
}

/// What a writer sends with its write, from the state it read.
#[derive(Clone, Copy, Debug)]
enum Validator {
    IfMatch,
    BodyVersion,
    IfMatchAny,
    IfNoneMatchOther,
    IfUnmodifiedSince,
}

/// The user as one writer wants it, with the validator it read, as headers and body.
fn write(
    validator: Validator,
    read: &support::Answer,
    writer: &str,
) -> (Vec<(String, String)>, Value) {
    let mut body = json!({"username": writer, "email": format!("{writer}@example.com")});
    let header = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
    let headers = match validator {
        Validator::IfMatch => header("if-match", read.header("etag")),
        Validator::BodyVersion => {
            body["version"] = read.json()["version"].clone();
            Vec::new()
        }
        Validator::IfMatchAny => header("if-match", "*"),
        Validator::IfNoneMatchOther => header("if-none-match", "\"nope\""),
        Validator::IfUnmodifiedSince => header("if-unmodified-since", read.header("last-modified")),
    };
    (headers, body)
}

/// Two writers read the user, then both send their write at once; returns their statuses and
/// the user as stored afterwards.
fn race(client: &Client, path: &str, validator: Validator, round: usize) -> ([u16; 2], Value) {
    let read = client.get(path, &[]);
    assert_eq!(read.status, 200);
    let start = Barrier::new(2);
    let statuses = std::thread::scope(|scope| {
        let writers = ["a", "b"].map(|side| {
            let (client, read, start) = (client.clone(), &read, &start);
            scope.spawn(move || {
                let (headers, body) = write(validator, read, &format!("{side}{round}"));
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                start.wait();
                client.send_json("PUT", path, &headers, &body).status
            })
        });
        writers.map(|writer| writer.join().expect("writer"))
    });
    (statuses, client.get(path, &[]).json())
}

#[test]
fn two_writers_with_one_validator_never_both_succeed() {
    let service = service_within_one_second();
    let client = service.client();
    let (id, _) = client.create_user("start", "start@example.com");
    let path = format!("/users/{id}");
    for validator in [
        Validator::IfMatch,
        Validator::BodyVersion,
        Validator::IfMatchAny,
        Validator::IfNoneMatchOther,
        Validator::IfUnmodifiedSince,
    ] {
        let guards = matches!(validator, Validator::IfMatch | Validator::BodyVersion);
        for round in 0..ROUNDS {
            let (statuses, stored) = race(&client, &path, validator, round);
            let won: Vec<usize> = (0..2).filter(|&w| statuses[w] == 200).collect();
            assert!(
                won.len() <= 1,
                "{validator:?} round {round}: both wrote, {statuses:?}"
            );
            if guards {
                assert_eq!(won.len(), 1, "{validator:?} round {round}: {statuses:?}");
                let loser = statuses[1 - won[0]];
                assert!(
                    matches!(loser, 409 | 412),
                    "{validator:?}: loser got {loser}"
                );
                let winner = ["a", "b"][won[0]];
                assert_eq!(
                    stored["username"],
                    format!("{winner}{round}"),
                    "{validator:?}"
                );
            } else {
                assert_eq!(
                    statuses,
                    [428, 428],
                    "{validator:?} is no guard against a lost update"
                );
            }
        }
    }
}
