use std::time::SystemTime;

use http::header::IF_MATCH;
use serde_json::{Value, json};

use super::*;
use crate::Version;
use crate::conflict::Snapshot;
use crate::http::{EntityTag, HeaderError, Preconditions, TagCondition, Validators};

fn snapshot(version: u64) -> Snapshot {
    Snapshot::new(Version::new(version), SystemTime::UNIX_EPOCH, None, b"")
}

/// The body of `error` rendered under `policy`, with its status checked against the body's.
fn render(policy: &Policy, error: impl Into<HttpError>) -> (u16, Value) {
    let problem = policy
        .render(&error.into())
        .with_instance_path("/things/t1");
    let body: Value = serde_json::from_str(&problem.to_json()).expect("problem JSON");
    assert_eq!(
        body["status"],
        problem.status().as_u16(),
        "status member = status"
    );
    assert_eq!(body["instance"], "/things/t1");
    (problem.status().as_u16(), body)
}

/// Asserts the members of `body` other than `title`, `detail` and `instance`.
fn assert_members(body: &Value, expected: &Value) {
    let mut rest = body.as_object().expect("object").clone();
    for standard in ["title", "detail", "instance"] {
        assert!(
            rest.remove(standard).is_some(),
            "{standard} missing from {body}"
        );
    }
    assert_eq!(&Value::Object(rest), expected);
}

#[test]
fn a_stale_version_in_the_body_is_a_409_with_the_current_version() {
    let conflict = Conflict::VersionMismatch {
        collection: "things".into(),
        key: "t1".into(),
        expected: Version::new(3),
        current: Some(Version::new(9)),
        record: Some(snapshot(9)),
    };
    let (status, body) = render(&Policy::default(), conflict);
    assert_eq!(status, 409);
    assert_members(
        &body,
        &json!({"type": "/problems/version-conflict", "status": 409,
                "conflict": "version", "current_version": 9}),
    );
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("version 9")
    );
}

#[test]
fn a_merge_base_no_longer_in_history_is_a_409_version_conflict_with_the_current_version() {
    let base_gone = |current: Option<u64>| Conflict::BaseNotRetained {
        collection: "docs".into(),
        key: "d1".into(),
        base: Version::new(3),
        current: current.map(Version::new),
    };
    let (status, body) = render(&Policy::default(), base_gone(Some(40)));
    assert_eq!(status, 409);
    assert_members(
        &body,
        &json!({"type": "/problems/version-conflict", "status": 409,
                "conflict": "version", "current_version": 40}),
    );
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains("version 3") && detail.contains("no longer holds"),
        "{detail}"
    );
    // Deleted meanwhile: there is no current version to send.
    let (_, body) = render(&Policy::default(), base_gone(None));
    assert_members(
        &body,
        &json!({"type": "/problems/version-conflict", "status": 409, "conflict": "version"}),
    );
}

#[test]
fn a_compacted_change_feed_is_410_with_the_oldest_position_held() {
    let (status, body) = render(&Policy::default(), Error::HistoryCompacted { oldest: 4097 });
    assert_eq!(status, 410);
    assert_members(
        &body,
        &json!({"type": "/problems/history-compacted", "status": 410, "oldest": 4097}),
    );
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains("4097"), "{detail}");
}

#[test]
fn a_taken_key_is_a_409_exists_with_the_current_version() {
    let conflict = Conflict::AlreadyExists {
        collection: "things".into(),
        key: "t1".into(),
        current: Version::new(4),
        record: snapshot(4),
    };
    let (_, body) = render(&Policy::default(), conflict);
    assert_members(
        &body,
        &json!({"type": "/problems/already-exists", "status": 409,
                "conflict": "exists", "current_version": 4}),
    );
}

fn unique() -> Conflict {
    Conflict::Unique {
        collection: "users".into(),
        key: "u2".into(),
        index: "email".into(),
        value: "a@example.com".into(),
        holder: "u1".into(),
    }
}

#[test]
fn a_unique_violation_names_the_index_and_hides_the_holder_by_default() {
    let (status, body) = render(&Policy::default(), unique());
    assert_eq!(status, 409);
    assert_members(
        &body,
        &json!({"type": "/problems/unique-violation", "status": 409,
                "conflict": "unique", "index": "email"}),
    );
    assert_eq!(
        body["detail"],
        r#"another record already has the email "a@example.com"; choose a different email"#
    );
    assert!(!body.to_string().contains("u1"), "holder leaked: {body}");

    let revealing = Policy::default().reveal_unique_holder(true);
    let (_, body) = render(&revealing, unique());
    assert_eq!(body["holder"], "u1");
}

#[test]
fn a_relabelled_index_is_shown_by_its_label_and_a_hidden_value_not_at_all() {
    let composite = Conflict::Unique {
        collection: "notes".into(),
        key: "n2".into(),
        index: "owner_title".into(),
        value: crate::composite(["ann", "groceries"]),
        holder: "n1".into(),
    };
    let policy = Policy::default()
        .label_index("owner_title", "title")
        .hide_index_value("owner_title");
    let (status, body) = render(&policy, composite.clone());
    assert_eq!(status, 409);
    assert_eq!(body["index"], "title");
    assert_eq!(
        body["detail"],
        "another record already has this title; choose a different title"
    );
    let text = body.to_string();
    assert!(
        !text.contains("owner_title") && !text.contains("groceries"),
        "{text}"
    );

    // A label alone keeps the value; other indexes are shown as declared.
    let (_, body) = render(
        &Policy::default().label_index("owner_title", "title"),
        composite,
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("groceries")),
        "{body}"
    );
    let (_, body) = render(&policy, unique());
    assert_eq!(body["index"], "email");
}

#[test]
fn an_illegal_transition_carries_the_current_state_and_the_allowed_ones() {
    let conflict = Conflict::Transition {
        collection: "orders".into(),
        key: "o1".into(),
        from: "pending".into(),
        to: "shipped".into(),
        allowed: vec!["cancelled".into(), "paid".into()],
        current: Version::new(5),
        record: snapshot(5),
    };
    let (status, body) = render(&Policy::default(), conflict);
    assert_eq!(status, 409);
    assert_members(
        &body,
        &json!({"type": "/problems/transition-not-allowed", "status": 409,
                "conflict": "transition", "current_version": 5,
                "current_state": "pending", "allowed": ["cancelled", "paid"]}),
    );
}

#[test]
fn a_wrong_initial_state_is_a_transition_conflict_without_a_current_state() {
    let conflict = Conflict::InitialState {
        collection: "orders".into(),
        key: "o1".into(),
        state: "paid".into(),
        allowed: vec!["pending".into()],
    };
    let (_, body) = render(&Policy::default(), conflict);
    assert_members(
        &body,
        &json!({"type": "/problems/transition-not-allowed", "status": 409,
                "conflict": "transition", "allowed": ["pending"]}),
    );
}

#[test]
fn a_business_rule_carries_its_code_and_its_own_detail() {
    let conflict = Conflict::rule("out_of_stock", "only 2 of sku-1 left").at("items", "sku-1");
    let (status, body) = render(&Policy::default(), conflict);
    assert_eq!(status, 409);
    assert_eq!(body["detail"], "only 2 of sku-1 left");
    assert_members(
        &body,
        &json!({"type": "/problems/rule-violation", "status": 409,
                "conflict": "rule", "code": "out_of_stock"}),
    );
}

fn failed_if_match() -> HttpError {
    let mut pre = Preconditions {
        ..Preconditions::default()
    };
    let current = Validators::new(Version::new(12), SystemTime::UNIX_EPOCH);
    pre.if_match = Some(TagCondition::Tags(vec![EntityTag::strong(Version::new(
        11,
    ))]));
    pre.evaluate_write(Some(current))
        .expect_err("11 is stale")
        .into()
}

#[test]
fn a_failed_precondition_is_412_or_409_by_one_switch() {
    let expected = |status| {
        json!({"type": "/problems/precondition-failed", "status": status,
               "conflict": "version", "current_version": 12, "header": "If-Match"})
    };
    let (status, body) = render(&Policy::default(), failed_if_match());
    assert_eq!(status, 412);
    assert_members(&body, &expected(412));

    let conflict_policy = Policy::default().precondition_failed_as_conflict(true);
    let (status, body) = render(&conflict_policy, failed_if_match());
    assert_eq!(status, 409);
    assert_members(&body, &expected(409));
}

#[test]
fn the_switch_leaves_other_statuses_alone() {
    let policy = Policy::default().precondition_failed_as_conflict(true);
    assert_eq!(render(&policy, HttpError::precondition_required()).0, 428);
    assert_eq!(render(&policy, unique()).0, 409);
}

#[test]
fn a_missing_precondition_is_428() {
    let (status, body) = render(&Policy::default(), HttpError::precondition_required());
    assert_eq!(status, 428);
    assert_members(
        &body,
        &json!({"type": "/problems/precondition-required", "status": 428}),
    );
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("If-Match")
    );
}

#[test]
fn a_malformed_header_is_400_naming_it() {
    let error = HeaderError::new(IF_MATCH, "the header lists no entity-tag");
    let (status, body) = render(&Policy::default(), error);
    assert_eq!(status, 400);
    assert_members(
        &body,
        &json!({"type": "/problems/invalid-header", "status": 400, "header": "If-Match"}),
    );
}

#[test]
fn client_errors_of_the_store_say_what_to_fix_without_naming_the_collection() {
    let cases = [
        (
            Error::NotFound {
                collection: "things".into(),
                key: "t1".into(),
            },
            404,
            "/problems/not-found",
            "no record exists",
        ),
        (
            Error::EmptyKey {
                collection: "things".into(),
            },
            400,
            "/problems/invalid-key",
            "must not be empty",
        ),
        (
            Error::KeyTooLong {
                collection: "things".into(),
                len: 2000,
                max: 1024,
            },
            400,
            "/problems/invalid-key",
            "2000 bytes",
        ),
        (
            Error::IndexValueTooLong {
                collection: "things".into(),
                index: "email".into(),
                len: 2000,
                max: 1024,
            },
            422,
            "/problems/invalid-body",
            "the email of 2000 bytes",
        ),
        (
            Error::ValueTooLarge {
                collection: "things".into(),
                key: "t1".into(),
                len: 9,
                max: 8,
            },
            413,
            "/problems/payload-too-large",
            "limit of 8 bytes",
        ),
        (
            Error::CommitTooLarge {
                what: "bytes",
                found: Some(2_000_000),
                limit: 1_568_768,
            },
            413,
            "/problems/payload-too-large",
            "2000000",
        ),
    ];
    for (error, status, problem_type, says) in cases {
        let (got, body) = render(&Policy::default(), error);
        assert_eq!((got, body["type"].as_str()), (status, Some(problem_type)));
        let detail = body["detail"].as_str().expect("detail");
        assert!(detail.contains(says), "{detail:?} lacks {says:?}");
        assert!(
            !detail.contains("things"),
            "{detail:?} names the collection"
        );
    }
}

#[test]
fn a_body_not_sent_as_json_is_415_saying_what_is_accepted() {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        "text/plain".parse().expect("value"),
    );
    let error = crate::http::json_body::<serde_json::Value>(&headers, b"{}").expect_err("415");
    let problem = Policy::default().render(&error);
    assert_eq!(problem.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(problem.headers()[http::header::ACCEPT], "application/json");
}

#[test]
fn contention_is_503_with_retry_after() {
    let problem = Policy::default().render(&Error::Contention { attempts: 100 }.into());
    assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.headers()[RETRY_AFTER], "1");
}

#[test]
fn unreachable_storage_is_503_with_retry_after_and_no_internals() {
    let error = Error::Unavailable {
        waited: std::time::Duration::from_secs(15),
        source: "member 127.0.0.1:32379 refused the connection".into(),
    };
    let (status, body) = render(&Policy::default(), error);
    assert_eq!(status, 503);
    assert_eq!(body["type"], "/problems/storage-unavailable");
    let detail = body["detail"].as_str().expect("detail");
    assert!(!detail.contains("32379"), "{detail}");
    let problem = Policy::default().render(
        &Error::Unavailable {
            waited: std::time::Duration::from_secs(15),
            source: "down".into(),
        }
        .into(),
    );
    assert_eq!(problem.headers()[RETRY_AFTER], "5");
}

#[test]
fn a_disk_short_of_space_is_503_with_retry_after_and_no_internals() {
    let error = || Error::DiskFull {
        path: "/var/lib/secret-path".into(),
        free_bytes: 12_345,
        reserve_bytes: 67_890,
    };
    let problem = Policy::default().render(&error().into());
    assert_eq!(problem.headers()[RETRY_AFTER], "60");
    let (status, body) = render(&Policy::default(), error());
    assert_eq!(status, 503);
    assert_members(
        &body,
        &json!({"type": "/problems/storage-full", "status": 503}),
    );
    for internal in ["secret", "12345", "67890"] {
        assert!(!body.to_string().contains(internal), "leaked: {body}");
    }
}

#[test]
fn server_failures_are_500_without_internals() {
    let secret = "/var/lib/secret-path";
    let errors = [
        Error::Io(std::io::Error::other(secret)),
        Error::Corrupt {
            location: secret.into(),
            reason: "bad".into(),
        },
        Error::Schema {
            collection: secret.into(),
            detail: "mismatch".into(),
        },
        Error::Locked {
            path: secret.into(),
        },
        Error::Poisoned,
        // A route that reads the change feed of a store opened without one.
        Error::NoChangeFeed,
        // A merge route on a collection declared without a history.
        Error::NoHistory {
            collection: secret.into(),
        },
        // A secured etcd cluster that refuses the service's access.
        Error::EtcdAuthentication,
        Error::EtcdCertificate {
            reason: secret.into(),
        },
        Error::EtcdPermission {
            prefix: secret.into(),
        },
        Error::LegacyLayout {
            namespace: secret.into(),
        },
    ];
    for error in errors {
        let (status, body) = render(&Policy::default(), error);
        assert_eq!(status, 500);
        assert_members(
            &body,
            &json!({"type": "/problems/internal-error", "status": 500}),
        );
        assert!(!body.to_string().contains("secret"), "leaked: {body}");
    }
    assert_eq!(render(&Policy::default(), HttpError::internal()).0, 500);
}

#[test]
fn a_services_own_problem_is_answered_as_it_is() {
    let own = HttpProblem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        http::Uri::from_static("https://example.com/problems/key-reused"),
        "Idempotency-Key reused",
    )
    .with_detail("another body");
    let (status, body) = render(&Policy::default(), own);
    assert_eq!(status, 422);
    assert_eq!(body["type"], "https://example.com/problems/key-reused");
    assert_eq!(body["title"], "Idempotency-Key reused");
}
