//! Version history and three-way merge.

use std::sync::Barrier;

use revkv::{Conflict, Error, Store, Version};
use serde::{Deserialize, Serialize};

const FIELDS: usize = 8;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    fields: Vec<String>,
}

/// Field by field: a field the caller changed wins, otherwise the current record's.
fn merge_fields(base: &Doc, theirs: &Doc, mine: &Doc) -> Result<Doc, Conflict> {
    let mut fields = Vec::with_capacity(FIELDS);
    for i in 0..FIELDS {
        fields.push(if mine.fields[i] == base.fields[i] {
            theirs.fields[i].clone()
        } else if theirs.fields[i] == base.fields[i] {
            mine.fields[i].clone()
        } else {
            return Err(Conflict::rule(
                "both_changed",
                format!("field {i} changed on both sides"),
            ));
        });
    }
    Ok(Doc { fields })
}

#[test]
fn concurrent_edits_of_different_fields_all_survive() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").history(16).open()?;
    for round in 0..20 {
        let key = format!("doc-{round}");
        let base = docs.insert(
            &key,
            Doc {
                fields: vec![String::new(); FIELDS],
            },
        )?;
        let barrier = Barrier::new(FIELDS);
        std::thread::scope(|s| {
            for field in 0..FIELDS {
                let (docs, barrier, key) = (&docs, &barrier, &key);
                s.spawn(move || {
                    // Every editor read the same base and changes only its own field.
                    let mut mine = docs.get_at(key, base).expect("read").expect("base").value;
                    mine.fields[field] = format!("edited by {field}");
                    barrier.wait();
                    docs.update_merge(key, base, mine, merge_fields)
                        .expect("merge");
                });
            }
        });
        let merged = docs.get(&key)?.expect("exists").value;
        let expected: Vec<String> = (0..FIELDS).map(|f| format!("edited by {f}")).collect();
        assert_eq!(merged.fields, expected, "round {round}");
    }
    Ok(())
}

#[test]
fn history_keeps_the_last_versions_and_forgets_older_ones() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<String>("docs").history(2).open()?;
    let mut versions: Vec<Version> = vec![docs.insert("d", "v0".to_owned())?];
    for i in 1..5 {
        let last = *versions.last().expect("one");
        versions.push(docs.update("d", last, format!("v{i}"))?);
    }
    // Current plus the two before it.
    for (i, version) in versions.iter().enumerate() {
        let found = docs.get_at("d", *version)?.map(|r| r.value);
        let expected = (i >= 2).then(|| format!("v{i}"));
        assert_eq!(found, expected, "version {i}");
    }
    // A merge from a forgotten base says so.
    let err = docs
        .update_merge("d", versions[0], "mine".to_owned(), |_, _, m| Ok(m.clone()))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict(Conflict::BaseNotRetained { base, current, .. })
            if base == versions[0] && current == Some(versions[4])
    ));
    assert!(err.to_string().contains("re-read"));
    Ok(())
}

#[test]
fn a_merge_from_the_current_version_is_a_plain_update_and_merge_conflicts_are_returned()
-> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").history(4).open()?;
    let base = docs.insert(
        "d",
        Doc {
            fields: vec![String::new(); FIELDS],
        },
    )?;
    let mut mine = Doc {
        fields: vec![String::new(); FIELDS],
    };
    mine.fields[0] = "a".into();
    let merged = docs.update_merge("d", base, mine.clone(), |_, _, _| panic!("no merge needed"))?;
    assert_eq!(merged.value, mine);
    // Both sides changed field 0 since `base`: the merge function's conflict comes back.
    let mut other = Doc {
        fields: vec![String::new(); FIELDS],
    };
    other.fields[0] = "b".into();
    let err = docs
        .update_merge("d", base, other, merge_fields)
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::Rule { ref code, .. }) if code == "both_changed")
    );
    Ok(())
}

#[test]
fn transactions_and_deletes_archive_the_versions_they_replace() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<String>("docs").history(3).open()?;
    let v1 = docs.insert("d", "one".to_owned())?;
    let v2 = store.transaction(|tx| tx.update(&docs, "d", v1, "two".to_owned()))?;
    docs.delete("d", v2)?;
    assert_eq!(docs.get("d")?, None);
    assert_eq!(
        docs.get_at("d", v1)?.map(|r| r.value),
        Some("one".to_owned())
    );
    assert_eq!(
        docs.get_at("d", v2)?.map(|r| r.value),
        Some("two".to_owned())
    );
    Ok(())
}

#[test]
fn update_merge_without_a_history_is_an_error_that_says_to_declare_one() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<String>("docs").open()?;
    let base = docs.insert("d", "one".to_owned())?;
    // Refused even when no merge is needed, so the mistake shows on the first call rather
    // than on the first race, where it used to pass as a conflict.
    for attempt in 0..2 {
        let err = docs
            .update_merge(
                "d",
                base,
                format!("mine {attempt}"),
                |_, _, m| Ok(m.clone()),
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::NoHistory { collection } if collection == "docs"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("CollectionBuilder::history"),
            "{err}"
        );
    }
    // Nothing was written.
    assert_eq!(
        docs.get("d")?.map(|r| (r.version, r.value)),
        Some((base, "one".to_owned()))
    );
    Ok(())
}
