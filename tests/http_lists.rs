//! List routes over HTTP (AIP-158): pages of `limit` records with `next_page_token` and a
//! `Link` to the next page, followed to the end without a skip or a repeat; `limit` over the
//! maximum coerced down; a bad token or limit is a `400` problem; users listed without their
//! e-mail addresses.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use serde_json::{Value, json};
use support::{Client, Service};

/// Every item of the list at `path`, following the `Link` headers; the pages read.
fn follow(client: &Client, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut next = path.to_owned();
    for pages in 1.. {
        let answer = client.get(&next, &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        let token = body["next_page_token"].as_str().expect("a token, or empty");
        if token.is_empty() {
            assert!(
                !answer.headers.contains_key("link"),
                "no next page, no link"
            );
            return (items, pages);
        }
        let link = answer.header("link");
        let target = link
            .strip_prefix('<')
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .unwrap_or_else(|| panic!("a Link to the next page: {link:?}"));
        assert!(target.contains(&format!("page_token={token}")), "{target}");
        target.clone_into(&mut next);
    }
    unreachable!()
}

#[test]
fn users_are_listed_a_page_at_a_time_without_their_emails() {
    let service = Service::start();
    let client = service.client();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            client
                .create_user(&format!("user{i}"), &format!("user{i}@example.com"))
                .0,
        );
    }
    ids.sort();
    let (items, pages) = follow(&client, "/users?limit=3");
    assert_eq!(pages, 3);
    let listed: Vec<&str> = items
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, ids);
    for user in &items {
        assert!(
            user.get("email").is_none(),
            "a list shows no e-mail: {user}"
        );
        assert!(user["username"].is_string() && user["version"].is_u64());
    }
    let (all, pages) = follow(&client, "/users");
    assert_eq!(
        (all.len(), pages),
        (7, 1),
        "the default limit holds them all"
    );
}

#[test]
fn orders_are_listed_by_state_and_limits_over_the_maximum_are_coerced() {
    let service = Service::start();
    let client = service.client();
    client.create_item("tea-1", 1000);
    let mut paid = Vec::new();
    for i in 0..130 {
        let ordered = client.post("/orders", &json!({"sku": "tea-1", "quantity": 1}));
        assert_eq!(ordered.status, 201, "{}", ordered.body);
        let id = ordered.json()["id"].as_str().expect("id").to_owned();
        if i % 10 == 0 {
            let moved = client.post(&format!("/orders/{id}/transitions"), &json!({"to": "paid"}));
            assert_eq!(moved.status, 200, "{}", moved.body);
            paid.push(id);
        }
    }
    paid.sort();
    let (items, _) = follow(&client, "/orders?state=paid&limit=4");
    let listed: Vec<&str> = items
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, paid);
    assert!(items.iter().all(|o| o["status"] == "paid"));

    let page = client.get("/orders?limit=1000", &[]).json();
    assert_eq!(
        page["items"].as_array().expect("items").len(),
        100,
        "at most 100"
    );
    let (pending, _) = follow(&client, "/orders?limit=1000&state=pending");
    assert_eq!(pending.len(), 117);
    let (all, pages) = follow(&client, "/orders?limit=0");
    assert_eq!((all.len(), pages), (130, 3), "limit=0 is the default of 50");
}

#[test]
fn bad_tokens_and_limits_are_400_problems() {
    let service = Service::start();
    let client = service.client();
    for i in 0..3 {
        client.create_user(&format!("user{i}"), &format!("user{i}@example.com"));
    }
    let first = client.get("/users?limit=1", &[]).json();
    let token = first["next_page_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    // A token of the users list given to another list.
    let foreign = client.get(&format!("/orders?state=paid&page_token={token}"), &[]);
    foreign.assert_problem(400, "/problems/invalid-query", "/orders", &json!({}));
    for query in [
        "page_token=garbage!",
        "page_token=AAAAAAAA",
        "limit=-1",
        "limit=ten",
        "limit=1&limit=2",
    ] {
        let answer = client.get(&format!("/users?{query}"), &[]);
        answer.assert_problem(400, "/problems/invalid-query", "/users", &json!({}));
    }
    let resumed = client
        .get(&format!("/users?limit=5&page_token={token}"), &[])
        .json();
    assert_eq!(resumed["items"].as_array().expect("items").len(), 2);
}
