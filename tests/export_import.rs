//! Export, import and backup: a round trip keeps every record, version, expiry, history entry
//! and index, on either engine; an export or a backup taken under load is one point in the
//! commit order.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bincode::Options as _;
use revkv::{Collection, Conflict, Error, ManualClock, Query, Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    email: String,
    state: String,
}

fn users(store: &Store) -> Collection<User> {
    store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .index("state", |u: &User| u.state.clone())
        .history(3)
        .open()
        .expect("users")
}

fn sessions(store: &Store) -> Collection<String> {
    store
        .collection::<String>("sessions")
        .open()
        .expect("sessions")
}

fn user(email: &str, state: &str) -> User {
    User {
        email: email.into(),
        state: state.into(),
    }
}

fn export(store: &Store) -> String {
    let mut out = Vec::new();
    store.export(&mut out).expect("export");
    String::from_utf8(out).expect("an export is text")
}

fn local_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("store")).expect("store");
    (dir, store)
}

#[test]
fn a_round_trip_keeps_records_versions_expiry_history_and_indexes_on_either_engine() {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let source = Store::builder()
        .clock(clock.clone())
        .open()
        .expect("source");
    let (u, s) = (users(&source), sessions(&source));
    let ann = u.insert("ann", user("ann@x", "new")).expect("ann");
    let ann = u
        .update("ann", ann, user("ann@x", "active"))
        .expect("ann 2");
    u.insert("bob", user("bob@x", "new")).expect("bob");
    let cid = u.insert("cid", user("cid@x", "active")).expect("cid");
    u.delete("cid", cid).expect("cid goes");
    s.insert_expiring("later", "stays".to_string(), Duration::from_secs(3600))
        .expect("later");
    s.insert_expiring("soon", "expires".to_string(), Duration::from_secs(1))
        .expect("soon");
    clock.advance(Duration::from_secs(2));
    let read_before = u.get("ann").expect("get").expect("ann");
    let dump = export(&source);
    assert!(dump.lines().count() > 4, "{dump}");
    assert!(
        !dump.contains("\"soon\""),
        "an expired record is not exported: {dump}"
    );

    let (_dir, local) = local_store();
    let targets = [
        local,
        Store::temporary().expect("a store, on etcd where CI says"),
    ];
    for target in targets {
        let imported = target.import(Cursor::new(&dump)).expect("import");
        assert_eq!(
            (imported.records, imported.history),
            (3, 2),
            "ann and the deleted cid keep one earlier version each"
        );
        let (tu, ts) = (users(&target), sessions(&target));
        assert!(target.verify().expect("verify").is_clean());
        for key in ["ann", "bob"] {
            assert_eq!(tu.get(key).unwrap(), u.get(key).unwrap(), "{key}");
        }
        assert_eq!(tu.get("cid").unwrap(), None);
        assert_eq!(
            tu.get_at("ann", Version::new(ann.get() - 1))
                .ok()
                .flatten()
                .map(|r| r.value),
            u.get_at("ann", Version::new(ann.get() - 1))
                .ok()
                .flatten()
                .map(|r| r.value),
        );
        let expires = |store: &Store| store.stored("sessions", "later").unwrap().unwrap().expires;
        assert_eq!(expires(&target), expires(&source));
        assert_eq!(ts.get("later").unwrap().unwrap().value, "stays");
        assert_eq!(
            tu.find_unique("email", "bob@x").unwrap(),
            u.get("bob").unwrap()
        );
        let active = tu.query(&Query::index("state", "active")).expect("query");
        assert_eq!(
            active
                .records
                .iter()
                .map(|(key, _)| key.as_str())
                .collect::<Vec<_>>(),
            ["ann"]
        );
        // The same store, exported again.
        assert_eq!(export(&target), dump);
        // A version read before the export still writes; an older one still conflicts.
        let err = tu
            .update("bob", Version::new(1), user("bob@x", "stale"))
            .unwrap_err();
        assert!(
            matches!(err, Error::Conflict(Conflict::VersionMismatch { .. })),
            "{err}"
        );
        let after = tu
            .update("ann", read_before.version, user("ann@x", "gone"))
            .expect("a version read before the export");
        assert!(after > read_before.version);
        // A version deleted in the source is never issued again: cid's was below the mark.
        let cid_again = tu.insert("cid", user("cid@x", "new")).expect("cid again");
        assert!(cid_again > cid, "{cid_again} after {cid}");
        // An import writes only into an empty store.
        let err = target.import(Cursor::new(&dump)).unwrap_err();
        assert!(matches!(err, Error::NotEmpty { .. }), "{err}");
    }
}

#[test]
fn an_import_refuses_what_is_not_a_whole_export_and_says_where() {
    let source = Store::temporary().expect("source");
    let u = users(&source);
    for i in 0..5 {
        u.insert(&format!("k{i}"), user(&format!("{i}@x"), "new"))
            .expect("insert");
    }
    let dump = export(&source);
    let lines: Vec<&str> = dump.lines().collect();
    let cut = lines[..lines.len() - 1].join("\n");
    let mut bad_record = lines.clone();
    bad_record[2] = r#"{"record":{"collection":"users","key":"k1","version":"x"}}"#;
    let mut twice = lines.clone();
    twice.insert(2, lines[1]);
    let newer = dump.replacen("\"revkv_export\":1", "\"revkv_export\":9", 1);
    let cases = [
        ("", "empty"),
        (cut.as_str(), "cut short"),
        (&bad_record.join("\n"), "line 3"),
        (&twice.join("\n"), "appears twice"),
        ("not json", "header"),
        (&newer, "newer"),
    ];
    for (input, expected) in cases {
        let target = Store::temporary().expect("a store, on etcd where CI says");
        let err = target.import(Cursor::new(input)).unwrap_err();
        assert!(err.to_string().contains(expected), "{expected}: {err}");
        assert!(
            matches!(
                err,
                Error::InvalidExport { .. } | Error::UnsupportedFormat { .. }
            ),
            "{err:?}"
        );
    }
}

/// Writers that each insert their keys `w<n>-<i>` in order, with the count of them in the
/// record `count-w<n>` updated in the same transaction; `acked[n]` counts the acknowledged,
/// `started[n]` those begun.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Vec<AtomicU64>>,
    started: Arc<Vec<AtomicU64>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    const N: usize = 4;

    fn start(store: &Store) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = || Arc::new((0..Self::N).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let (acked, started) = (counters(), counters());
        let threads = (0..Self::N)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                let (acked, started) = (acked.clone(), started.clone());
                std::thread::spawn(move || {
                    let counts = sessions(&store);
                    let u = users(&store);
                    let mut i = 0_u64;
                    while !stop.load(Ordering::Acquire) {
                        started[w].store(i + 1, Ordering::Release);
                        store
                            .transaction(|tx| {
                                tx.insert(
                                    &u,
                                    &format!("w{w}-{i:06}"),
                                    user(&format!("w{w}-{i}@x"), "new"),
                                )?;
                                let count = format!("count-w{w}");
                                match tx.get(&counts, &count)? {
                                    Some(c) => {
                                        tx.update(&counts, &count, c.version, (i + 1).to_string())?
                                    }
                                    None => tx.insert(&counts, &count, (i + 1).to_string())?,
                                };
                                Ok(())
                            })
                            .expect("a writer's transaction");
                        i += 1;
                        acked[w].store(i, Ordering::Release);
                    }
                })
            })
            .collect();
        Self {
            stop,
            acked,
            started,
            threads,
        }
    }

    fn acked(&self) -> Vec<u64> {
        self.acked
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect()
    }

    fn started(&self) -> Vec<u64> {
        self.started
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            thread.join().expect("writer");
        }
    }
}

/// Checks that `store` holds one point of the writers' commit order, with at least the
/// writes acknowledged before (`before`) and at most those begun after (`after`) of each: each
/// writer's keys are a prefix of what it wrote, as many as its count record says.
fn check_point(store: &Store, before: &[u64], after: &[u64]) {
    let (u, counts) = (users(store), sessions(store));
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{report}");
    for w in 0..Writers::N {
        let count: u64 = counts
            .get(&format!("count-w{w}"))
            .expect("get")
            .map_or(0, |c| c.value.parse().expect("a count"));
        assert!(
            (before[w]..=after[w]).contains(&count),
            "writer {w}: {count} not in {before:?}..{after:?}"
        );
        let keys: Vec<String> = u
            .scan_prefix(&format!("w{w}-"))
            .map(|r| r.expect("record").0)
            .collect();
        let expected: Vec<String> = (0..count).map(|i| format!("w{w}-{i:06}")).collect();
        assert_eq!(keys, expected, "writer {w}");
    }
}

/// A store of 5,000 records, on etcd where CI says, and a directory for backups.
fn loaded_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::temporary().expect("store");
    let u = users(&store);
    let filler: Vec<(String, User)> = (0..5_000)
        .map(|i| (format!("f{i:06}"), user(&format!("f{i}@x"), "filler")))
        .collect();
    u.load(filler).expect("filler");
    (dir, store)
}

#[test]
fn an_export_under_load_is_one_point_of_the_commit_order() {
    let (_dir, store) = loaded_store();
    let writers = Writers::start(&store);
    let mut passes = 0;
    // Until writes landed during at least 3 exports, so that each check is under load.
    while passes < 3 {
        let before = writers.acked();
        let dump = export(&store);
        let (after, moved) = (writers.started(), writers.acked() != before);
        let (_target_dir, target) = local_store();
        target.import(Cursor::new(&dump)).expect("import");
        check_point(&target, &before, &after);
        passes += usize::from(moved);
    }
    writers.stop();
}

#[test]
fn a_backup_under_load_opens_as_a_store_at_one_point_of_the_commit_order() {
    let (dir, store) = loaded_store();
    let writers = Writers::start(&store);
    let mut passes = 0;
    for pass in 0.. {
        if passes == 3 {
            break;
        }
        let dest = dir.path().join(format!("backup-{pass}"));
        let before = writers.acked();
        let copied = store.backup(&dest).expect("backup");
        let (after, moved) = (writers.started(), writers.acked() != before);
        assert!(copied.records >= 5_000);
        let backup = Store::open(&dest).expect("the backup opens as a store");
        assert!(!backup.inspect().expect("inspect").incomplete);
        check_point(&backup, &before, &after);
        passes += usize::from(moved);
    }
    writers.stop();
    let err = store.backup(dir.path().join("backup-0")).unwrap_err();
    assert!(matches!(err, Error::NotEmpty { .. }), "{err}");
}

#[test]
fn records_read_without_their_type_are_as_stored() {
    let store = Store::temporary().expect("store");
    let u = users(&store);
    let v = u.insert("ann", user("ann@x", "new")).expect("ann");
    let stored = store.stored("users", "ann").expect("stored").expect("ann");
    assert_eq!((stored.key.as_str(), stored.version), ("ann", v));
    let encoded = bincode::DefaultOptions::new().serialize(&user("ann@x", "new"));
    assert_eq!(
        stored.value,
        encoded.unwrap(),
        "bincode's varint encoding, as stored"
    );
    assert_eq!(store.stored_records("users", "a", 10).unwrap(), [stored]);
    let err = store.stored("nothing", "ann").unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err}");
    let inspection = store.inspect().expect("inspect");
    let users = &inspection.collections[0];
    assert_eq!((users.name.as_str(), users.records), ("users", 1));
    assert_eq!(users.unique[0].entries, 1);
    assert!(inspection.versions_below > v.get());
}
