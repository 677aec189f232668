//! `GET /metrics` over HTTP: revkv's metrics, published through the `metrics` facade, in
//! Prometheus's text format: a conflict a client met is counted by collection and kind,
//! commits are timed, and the flushes' group commits measured.
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use serde_json::json;
use support::Service;

/// The value of the sample `series` (name and labels, exactly as exported), if exported.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn conflicts_and_commits_are_exported_in_prometheus_text() {
    let service = Service::start();
    let client = service.client();
    let unique = r#"revkv_conflicts_total{collection="users",kind="unique"}"#;
    let scrape = || {
        let answer = client.get("/metrics", &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.header("content-type").starts_with("text/plain"));
        assert_eq!(answer.header("cache-control"), "no-store");
        answer.body
    };
    let before = sample(&scrape(), unique).unwrap_or(0.0);
    client.create_user("ada", "ada@example.com");
    for taken in ["ADA@example.com", "ada@EXAMPLE.com"] {
        let answer = client.post("/users", &json!({"username": taken, "email": taken}));
        assert_eq!(answer.status, 409, "{}", answer.body);
    }
    let text = scrape();
    assert_eq!(sample(&text, unique), Some(before + 2.0), "{text}");
    let timed = |engine: &str| {
        let series = format!(r#"revkv_commit_seconds{{engine="{engine}""#);
        text.lines().any(|l| l.starts_with(&series))
    };
    // By the engine the store runs on: the embedded one, or etcd in CI's second run, where a
    // commit is durable when answered and a flush makes no group commit.
    assert!(timed("local") || timed("etcd"), "commits are timed: {text}");
    if timed("local") {
        assert!(
            text.lines()
                .any(|l| l.starts_with("revkv_group_commit_writes")),
            "the service's flushes are group commits: {text}"
        );
    }
}
