use std::time::{Duration, UNIX_EPOCH};

use http::HeaderValue;

use super::*;

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_bytes(value).expect("value"),
        );
    }
    map
}

fn parse(pairs: &[(&str, &[u8])]) -> Result<Preconditions, HeaderError> {
    parse_preconditions(&headers(pairs))
}

fn tags(values: &[&str]) -> TagCondition {
    let list = values.join(",");
    TagCondition::Tags(parse_tag_list(list.as_bytes()).expect("tags"))
}

const SUNDAY: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The instant `SUNDAY` names.
const SUNDAY_SECS: u64 = 784_111_777;

fn record(version: u64, modified_secs: u64) -> Validators {
    Validators::new(Version::new(version), at(modified_secs))
}

#[test]
fn absent_headers_parse_to_no_preconditions() {
    let parsed = parse(&[("accept", b"*/*")]).expect("parses");
    assert!(parsed.is_empty());
    assert!(!parsed.guards_write());
}

#[test]
fn tag_lists_star_and_several_lines_are_read() {
    let parsed = parse(&[
        ("if-match", br#""1", W/"2""#),
        ("if-match", br#""3""#),
        ("if-none-match", b" * "),
    ])
    .expect("parses");
    assert_eq!(
        parsed.if_match,
        Some(tags(&[r#""1""#, r#"W/"2""#, r#""3""#]))
    );
    assert_eq!(parsed.if_none_match, Some(TagCondition::Any));
    assert!(parsed.guards_write());
}

#[test]
fn http_dates_in_all_three_formats_are_read() {
    for date in [
        SUNDAY,
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        let parsed = parse(&[("if-unmodified-since", date.as_bytes())]).expect(date);
        assert_eq!(parsed.if_unmodified_since, Some(at(SUNDAY_SECS)), "{date}");
    }
    let parsed = parse(&[("if-modified-since", SUNDAY.as_bytes())]).expect("parses");
    assert_eq!(parsed.if_modified_since, Some(at(SUNDAY_SECS)));
    assert!(
        !parsed.guards_write(),
        "If-Modified-Since only concerns reads"
    );
}

#[test]
fn malformed_values_name_their_header() {
    let cases: &[(&str, &[u8])] = &[
        ("if-match", b"17"),
        ("if-match", b""),
        ("if-match", b" , ,"),
        ("if-match", br#"*, "1""#),
        ("if-none-match", br#""1"#),
        ("if-none-match", b"W/\"\x01\""),
    ];
    for &(name, value) in cases {
        let Ok(header_value) = HeaderValue::from_bytes(value) else {
            continue; // `http` itself refuses it; nothing reaches the parser
        };
        let mut map = HeaderMap::new();
        map.insert(HeaderName::from_static(name), header_value);
        let error = parse_preconditions(&map).expect_err(name);
        assert_eq!(error.header().as_str(), name, "{value:?}");
    }
    let star_then_tag = parse(&[("if-match", b"*"), ("if-match", br#""1""#)]);
    assert!(star_then_tag.is_err(), "* on one line and a tag on another");
}

#[test]
fn invalid_dates_are_ignored_as_rfc_9110_requires() {
    let cases: &[&[u8]] = &[
        b"yesterday",
        b"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
        b"1994-11-06T08:49:37Z",
        b"Sun, 06 Nov 1994 08:49:37 GMT\xff",
        b"",
    ];
    for &value in cases {
        for name in ["if-unmodified-since", "if-modified-since"] {
            let parsed = parse(&[(name, value)]).expect("an invalid date is no error");
            assert!(
                parsed.is_empty(),
                "{name}: {value:?} was read as {parsed:?}"
            );
        }
    }
    let twice = parse(&[
        ("if-modified-since", SUNDAY.as_bytes()),
        ("if-modified-since", SUNDAY.as_bytes()),
    ])
    .expect("parses");
    assert_eq!(
        twice.if_modified_since, None,
        "a date sent twice is not one date"
    );
}

#[test]
fn header_errors_read_as_sentences_with_the_usual_header_case() {
    let error = parse(&[("if-none-match", b"soon")]).expect_err("malformed");
    assert_eq!(
        error.to_string(),
        "the If-None-Match header is malformed: an entity-tag is a quoted string such as \
         \"17\" or W/\"17\""
    );
}

#[test]
fn only_if_match_with_entity_tags_makes_a_write_conditional() {
    let guarded = |pairs: &[(&str, &[u8])]| parse(pairs).expect("parses").guards_write();
    assert!(guarded(&[("if-match", br#""3""#)]));
    assert!(guarded(&[("if-match", br#"W/"3", "4""#)]));
    for pairs in [
        &[("if-match", b"*" as &[u8])][..],
        &[("if-none-match", br#""nope""#)],
        &[("if-none-match", b"*")],
        &[("if-unmodified-since", SUNDAY.as_bytes())],
        &[("if-modified-since", SUNDAY.as_bytes())],
        &[
            ("if-none-match", br#""1""#),
            ("if-unmodified-since", SUNDAY.as_bytes()),
        ],
    ] {
        assert!(!guarded(pairs), "{pairs:?} counted as a guard");
    }
}

#[test]
fn if_match_uses_strong_comparison_and_fails_on_a_missing_record() {
    let mut pre = Preconditions {
        if_match: Some(tags(&[r#""4""#, r#""7""#])),
        ..Preconditions::default()
    };
    assert_eq!(pre.evaluate_write(Some(record(7, 0))), Ok(()));
    let stale = pre
        .evaluate_write(Some(record(8, 0)))
        .expect_err("8 is not listed");
    assert_eq!(
        (stale.header(), stale.current_version()),
        (&IF_MATCH, Some(Version::new(8)))
    );
    let missing = pre.evaluate_write(None).expect_err("nothing to match");
    assert_eq!(missing.current_version(), None);

    pre.if_match = Some(tags(&[r#"W/"7""#]));
    assert!(
        pre.evaluate_write(Some(record(7, 0))).is_err(),
        "weak tags never match If-Match"
    );
    assert!(pre.evaluate_read(Some(record(7, 0))).is_err());

    pre.if_match = Some(TagCondition::Any);
    assert_eq!(pre.evaluate_write(Some(record(1, 0))), Ok(()));
    assert!(
        pre.evaluate_write(None).is_err(),
        "* needs a current record"
    );
}

#[test]
fn if_none_match_uses_weak_comparison_304_for_reads_412_for_writes() {
    let mut pre = Preconditions {
        if_none_match: Some(tags(&[r#"W/"5""#])),
        ..Preconditions::default()
    };
    assert_eq!(
        pre.evaluate_read(Some(record(5, 0))),
        Ok(ReadOutcome::NotModified)
    );
    assert_eq!(
        pre.evaluate_read(Some(record(6, 0))),
        Ok(ReadOutcome::Proceed)
    );
    let failed = pre.evaluate_write(Some(record(5, 0))).expect_err("matches");
    assert_eq!(failed.header(), &IF_NONE_MATCH);
    assert_eq!(pre.evaluate_write(Some(record(6, 0))), Ok(()));

    // `If-None-Match: *` is create-only: it holds only while there is no record.
    pre.if_none_match = Some(TagCondition::Any);
    assert_eq!(pre.evaluate_write(None), Ok(()));
    assert!(pre.evaluate_write(Some(record(1, 0))).is_err());
    assert_eq!(
        pre.evaluate_read(Some(record(1, 0))),
        Ok(ReadOutcome::NotModified)
    );
}

#[test]
fn if_unmodified_since_holds_only_for_a_record_unchanged_since_the_date_began() {
    let pre = Preconditions {
        if_unmodified_since: Some(at(SUNDAY_SECS)),
        ..Preconditions::default()
    };
    let later_that_second = Some(Validators::new(
        Version::new(2),
        at(SUNDAY_SECS) + Duration::from_micros(1),
    ));
    let failed = pre
        .evaluate_write(later_that_second)
        .expect_err("changed after the second began: its Last-Modified is this date");
    assert_eq!(failed.header(), &IF_UNMODIFIED_SINCE);
    assert_eq!(failed.current_version(), Some(Version::new(2)));
    assert_eq!(pre.evaluate_write(Some(record(1, SUNDAY_SECS))), Ok(()));
    assert_eq!(pre.evaluate_write(Some(record(1, SUNDAY_SECS - 1))), Ok(()));
    assert!(
        pre.evaluate_write(Some(record(1, SUNDAY_SECS + 1)))
            .is_err()
    );
    assert_eq!(
        pre.evaluate_write(None),
        Ok(()),
        "no modification date to compare"
    );
}

#[test]
fn if_match_takes_precedence_over_if_unmodified_since() {
    let pre = Preconditions {
        if_match: Some(tags(&[r#""3""#])),
        if_unmodified_since: Some(at(0)),
        ..Preconditions::default()
    };
    assert_eq!(pre.evaluate_write(Some(record(3, SUNDAY_SECS))), Ok(()));
}

#[test]
fn if_modified_since_only_applies_to_reads_without_if_none_match() {
    let mut pre = Preconditions {
        if_modified_since: Some(at(SUNDAY_SECS)),
        ..Preconditions::default()
    };
    assert_eq!(
        pre.evaluate_read(Some(record(1, SUNDAY_SECS))),
        Ok(ReadOutcome::NotModified)
    );
    assert_eq!(
        pre.evaluate_read(Some(record(1, SUNDAY_SECS + 1))),
        Ok(ReadOutcome::Proceed)
    );
    let later_that_second = Validators::new(
        Version::new(2),
        at(SUNDAY_SECS) + Duration::from_micros(999_999),
    );
    assert_eq!(
        pre.evaluate_read(Some(later_that_second)),
        Ok(ReadOutcome::Proceed),
        "a change within the second of the date is not answered with 304"
    );
    assert_eq!(pre.evaluate_write(Some(record(1, SUNDAY_SECS))), Ok(()));

    pre.if_none_match = Some(tags(&[r#""9""#]));
    assert_eq!(
        pre.evaluate_read(Some(record(1, SUNDAY_SECS))),
        Ok(ReadOutcome::Proceed),
        "If-None-Match decides when both are sent"
    );
}

#[test]
fn a_failed_if_match_stops_evaluation_before_if_none_match() {
    let pre = Preconditions {
        if_match: Some(tags(&[r#""1""#])),
        if_none_match: Some(tags(&[r#""2""#])),
        ..Preconditions::default()
    };
    let failed = pre
        .evaluate_read(Some(record(2, 0)))
        .expect_err("If-Match fails first");
    assert_eq!(failed.header(), &IF_MATCH);
}

mod guard_write {
    use std::cell::Cell;

    use super::*;
    use crate::Store;
    use crate::http::Policy;

    /// `If-Match` with the strong tag of `version`.
    fn if_match(version: Version) -> Preconditions {
        Preconditions {
            if_match: Some(TagCondition::Tags(vec![EntityTag::strong(version)])),
            ..Preconditions::default()
        }
    }

    fn status(error: &HttpError) -> u16 {
        Policy::default().render(error).status().as_u16()
    }

    #[test]
    fn a_record_that_moves_between_read_and_write_is_evaluated_again() -> crate::Result<()> {
        let store = Store::temporary()?;
        let docs = store.collection::<u32>("docs").open()?;
        let v1 = docs.insert("d", 1)?;
        let pre = if_match(v1);

        // Another writer gets in between this request's read and its write.
        let raced = Cell::new(false);
        let read = || {
            let current = docs.get("d");
            if !raced.replace(true) {
                docs.update("d", v1, 2)?;
            }
            current
        };
        let writes = Cell::new(0);
        let error = pre
            .guard_write(read, |current| {
                writes.set(writes.get() + 1);
                docs.update("d", current.expect("exists").version, 3)
            })
            .expect_err("If-Match no longer holds");
        assert_eq!(status(&error), 412);
        assert_eq!(
            writes.get(),
            1,
            "the second evaluation stops before writing"
        );
        assert_eq!(docs.get("d")?.expect("exists").value, 2);
        Ok(())
    }

    #[test]
    fn a_stale_body_version_is_a_409_not_a_retry() -> crate::Result<()> {
        let store = Store::temporary()?;
        let docs = store.collection::<u32>("docs").open()?;
        let v1 = docs.insert("d", 1)?;
        docs.update("d", v1, 2)?;
        let error = Preconditions::default()
            .guard_write(|| docs.get("d"), |_| docs.update("d", v1, 3))
            .expect_err("stale");
        assert_eq!(status(&error), 409);
        Ok(())
    }

    #[test]
    fn create_only_loses_a_race_as_412() -> crate::Result<()> {
        let store = Store::temporary()?;
        let docs = store.collection::<u32>("docs").open()?;
        let pre = Preconditions {
            if_none_match: Some(TagCondition::Any),
            ..Preconditions::default()
        };
        let raced = Cell::new(false);
        let read = || {
            let current = docs.get("d");
            if !raced.replace(true) {
                docs.insert("d", 1)?;
            }
            current
        };
        let error = pre
            .guard_write(read, |_| docs.insert("d", 2))
            .expect_err("taken meanwhile");
        assert_eq!(status(&error), 412);
        Ok(())
    }

    #[test]
    fn an_update_only_guard_gets_the_record_reruns_a_transaction_s_conflict_and_may_refuse()
    -> crate::Result<()> {
        let store = Store::temporary()?;
        let docs = store.collection::<u32>("docs").open()?;
        let v1 = docs.insert("d", 1)?;
        let pre = if_match(v1);
        let read = || -> Result<Versioned<u32>, HttpError> {
            let found = docs.get("d")?;
            Ok(found.ok_or(crate::Error::NotFound {
                collection: "docs".into(),
                key: "d".into(),
            })?)
        };
        // Another writer gets in before the write's transaction commits: the transaction's
        // conflict reruns the guard, and If-Match then fails.
        let raced = Cell::new(false);
        let error = pre
            .guard_update(read, |current| {
                if !raced.replace(true) {
                    docs.update("d", current.version, 2)?;
                }
                let written = store.transaction(|tx| tx.update(&docs, "d", current.version, 3));
                Ok(written?)
            })
            .expect_err("If-Match no longer holds");
        assert_eq!(status(&error), 412);
        assert_eq!(docs.get("d")?.expect("exists").value, 2);

        // The closure's own refusal is answered as it is.
        let refused = Preconditions::default()
            .guard_update(read, |current| {
                if current.value == 2 {
                    return Err(HttpError::invalid_body("2 cannot change"));
                }
                Ok(current.version)
            })
            .expect_err("refused");
        assert_eq!(status(&refused), 422);
        docs.delete("d", docs.get("d")?.expect("exists").version)?;
        let missing = Preconditions::default()
            .guard_update(read, |current| Ok(current.version))
            .expect_err("gone");
        assert_eq!(status(&missing), 404);
        Ok(())
    }
}
