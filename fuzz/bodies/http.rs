//! The `http` target: arbitrary header values and bodies through the adapter's precondition
//! parsing and evaluation and its problem rendering. Nothing may panic, and the round trips
//! hold: an `ETag` or HTTP-date the adapter formats parses back to what it came from, and
//! every problem it renders is JSON whose `status` is the response's. No precondition holds for
//! a state it does not describe: a write passes `If-Match` only at a listed version, and a date
//! only for a record not changed since that date began.

use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use revkv::Snapshot;
use revkv::http::{
    EntityTag, HttpError, Policy, PreconditionFailed, Preconditions, ReadOutcome, TagCondition,
    Validators, etag, http_date, json_body, parse_preconditions,
};
use revkv::{Conflict, Error, Version};

/// The headers the adapter reads, plus one it does not.
const HEADERS: [&str; 6] = [
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "if-modified-since",
    "content-type",
    "idempotency-key",
];

/// 10000-01-01T00:00:00Z, in seconds since the epoch: the first instant an HTTP-date cannot name.
const LAST_HTTP_DATE: u64 = 253_402_300_800;

#[derive(Arbitrary, Debug)]
struct Input {
    /// `(which header, raw value)`; a header may come several times.
    headers: Vec<(u8, Vec<u8>)>,
    version: u64,
    /// Seconds since the epoch of the record's modification time.
    modified: u64,
    /// Its microseconds within that second.
    micros: u32,
    exists: bool,
    body: Vec<u8>,
    conflict: ConflictInput,
    path: String,
    as_conflict: bool,
    reveal_holder: bool,
}

#[derive(Arbitrary, Debug)]
struct ConflictInput {
    kind: u8,
    a: String,
    b: String,
    allowed: Vec<String>,
    version: u64,
}

/// Runs one input; panics only when the adapter breaks a promise.
pub fn http(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let version = Version::new(input.version);
    // Within what an HTTP-date can name (the adapter clamps beyond, as documented).
    let second = SystemTime::UNIX_EPOCH + Duration::from_secs(input.modified % LAST_HTTP_DATE);
    round_trips(version, second);
    let modified = second + Duration::from_micros(u64::from(input.micros % 1_000_000));

    let mut headers = HeaderMap::new();
    for (pick, value) in &input.headers {
        let name = HeaderName::from_static(HEADERS[usize::from(*pick) % HEADERS.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let current = input.exists.then(|| Validators::new(version, modified));
    let policy = Policy::default()
        .precondition_failed_as_conflict(input.as_conflict)
        .reveal_unique_holder(input.reveal_holder);
    match parse_preconditions(&headers) {
        Ok(preconditions) => {
            let write = preconditions.evaluate_write(current);
            let read = preconditions.evaluate_read(current);
            never_for_another_state(&preconditions, current, write.is_ok(), read);
            if let Err(failed) = write {
                render(&policy, &HttpError::from(failed), &input.path);
            }
        }
        Err(malformed) => render(&policy, &HttpError::from(malformed), &input.path),
    }
    if let Err(error) = json_body::<serde_json::Value>(&headers, &input.body) {
        render(&policy, &error, &input.path);
    }
    let conflict = conflict(&input.conflict);
    render(&policy, &HttpError::from(conflict.clone()), &input.path);
    render(
        &policy,
        &HttpError::from(Error::Conflict(conflict)),
        &input.path,
    );
}

/// A write that passes names the current version in `If-Match`, or was not changed since its
/// `If-Unmodified-Since` began; a read answered `304` for `If-Modified-Since` alone was not
/// changed since that date began either.
fn never_for_another_state(
    preconditions: &Preconditions,
    current: Option<Validators>,
    write_passed: bool,
    read: Result<ReadOutcome, PreconditionFailed>,
) {
    let Some(record) = current else {
        return;
    };
    if write_passed {
        match (&preconditions.if_match, preconditions.if_unmodified_since) {
            (Some(TagCondition::Tags(tags)), _) => assert!(
                tags.iter().any(|tag| tag.strong_matches(record.version)),
                "If-Match passed at version {} it does not list",
                record.version
            ),
            (None, Some(date)) => assert!(
                record.modified <= date,
                "If-Unmodified-Since passed for a record changed after it"
            ),
            _ => {}
        }
    }
    if let (Ok(ReadOutcome::NotModified), None, Some(date)) = (
        read,
        &preconditions.if_none_match,
        preconditions.if_modified_since,
    ) {
        assert!(
            record.modified <= date,
            "304 for a record changed after If-Modified-Since"
        );
    }
}

/// What the adapter writes, it reads back.
fn round_trips(version: Version, modified: SystemTime) {
    let mut headers = HeaderMap::new();
    headers.insert("if-match", etag(version));
    headers.insert("if-unmodified-since", http_date(modified));
    let parsed = parse_preconditions(&headers).expect("the adapter's own headers parse");
    assert_eq!(
        parsed.if_match,
        Some(TagCondition::Tags(vec![EntityTag::strong(version)])),
        "ETag round trip of {version}"
    );
    let Some(TagCondition::Tags(tags)) = &parsed.if_match else {
        unreachable!("checked above");
    };
    assert!(tags[0].strong_matches(version));
    assert!(!tags[0].strong_matches(Version::new(version.get().wrapping_add(1))));
    assert_eq!(
        parsed.if_unmodified_since,
        Some(modified),
        "HTTP-date round trip"
    );
}

fn conflict(input: &ConflictInput) -> Conflict {
    let snapshot =
        Snapshot::of(Version::new(input.version), SystemTime::UNIX_EPOCH, &()).expect("() encodes");
    let (collection, key) = (input.a.clone(), input.b.clone());
    match input.kind % 7 {
        0 => Conflict::VersionMismatch {
            collection,
            key,
            expected: Version::new(input.version),
            current: input
                .version
                .is_multiple_of(2)
                .then_some(Version::new(input.version / 2)),
            record: None,
        },
        1 => Conflict::AlreadyExists {
            collection,
            key,
            current: Version::new(input.version),
            record: snapshot,
        },
        2 => Conflict::Unique {
            collection,
            key: key.clone(),
            index: input.allowed.first().cloned().unwrap_or_default(),
            value: key.clone(),
            holder: key,
        },
        3 => Conflict::Transition {
            collection,
            key,
            from: input.a.clone(),
            to: input.b.clone(),
            allowed: input.allowed.clone(),
            current: Version::new(input.version),
            record: snapshot,
        },
        4 => Conflict::InitialState {
            collection,
            key,
            state: input.b.clone(),
            allowed: input.allowed.clone(),
        },
        5 => Conflict::BaseNotRetained {
            collection,
            key,
            base: Version::new(input.version),
            current: None,
        },
        _ => Conflict::rule(collection, key).at(input.b.clone(), input.a.clone()),
    }
}

/// Renders `error` as a response: valid problem JSON whose `status` is the response's.
fn render(policy: &Policy, error: &HttpError, path: &str) {
    let response = policy
        .render(error)
        .with_instance_path(path)
        .into_http_response();
    let body: serde_json::Value =
        serde_json::from_str(response.body()).expect("a problem body is JSON");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(response.status().as_u16())),
        "status member and response status differ: {body}"
    );
}
