//! The `revkv` command, end to end on stores the tests make: each subcommand, bad paths, a
//! locked store, damaged input, a store with an index that does not match, a backup killed
//! halfway, and a copy to another store (an etcd namespace where `REVKV_ETCD_ENDPOINTS` names a
//! cluster) and back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use revkv::{Collection, Retention, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        .history(2)
        .open()
        .expect("users")
}

fn user(i: usize) -> User {
    User {
        email: format!("{i}@x"),
        state: ["new", "active"][i % 2].into(),
    }
}

/// A closed local store with `n` users (one updated once) in `dir/name`.
fn made_store(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(name);
    let store = Store::open(&path).expect("store");
    let u = users(&store);
    u.load((0..n).map(|i| (format!("u{i:06}"), user(i))))
        .expect("load");
    let v = u.get("u000000").expect("get").expect("u000000").version;
    u.update("u000000", v, user(n)).expect("update");
    path
}

fn revkv(args: &[&str]) -> Output {
    revkv_with_input(args, None)
}

fn revkv_with_input(args: &[&str], input: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_revkv"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("revkv runs");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(input) = input {
        stdin.write_all(input).expect("input");
    }
    drop(stdin);
    child.wait_with_output().expect("revkv ends")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("text")
}

/// A failure: exit status 2 and one line on standard error, which contains `expected`.
fn fails(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("revkv: ") && stderr.contains(expected),
        "{expected}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn every_subcommand_works_on_a_local_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = made_store(dir.path(), "store", 10);
    let store = s(&store);

    let text = ok(&revkv(&["inspect", store]));
    assert!(text.contains("users: 10 records"), "{text}");
    assert!(text.contains("unique index email: 10 entries"), "{text}");
    let inspection: Value =
        serde_json::from_str(&ok(&revkv(&["inspect", "--json", store]))).unwrap();
    assert_eq!(inspection["collections"][0]["records"], 10);
    assert_eq!(inspection["collections"][0]["history"], 1);
    assert_eq!(inspection["collections"][0]["indexes"][0]["entries"], 10);

    let got: Value =
        serde_json::from_str(&ok(&revkv(&["get", "--json", store, "users", "u000003"]))).unwrap();
    assert_eq!(got["key"], "u000003");
    assert!(got["version"].as_u64().unwrap() > 0);
    let text = ok(&revkv(&["get", store, "users", "u000003"]));
    assert!(text.starts_with("u000003\tversion "), "{text}");
    fails(&revkv(&["get", store, "users", "nobody"]), "does not exist");
    fails(
        &revkv(&["get", store, "nothing", "u1"]),
        "no such collection",
    );

    let scanned = ok(&revkv(&[
        "scan", "--json", store, "users", "--prefix", "u00000", "--limit", "4",
    ]));
    let keys: Vec<String> = scanned
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys, ["u000000", "u000001", "u000002", "u000003"]);

    let verified: Value = serde_json::from_str(&ok(&revkv(&["verify", "--json", store]))).unwrap();
    assert_eq!(verified["clean"], true);
    assert_eq!(verified["records"], 10);

    let dump = ok(&revkv(&["export", store]));
    assert_eq!(dump.lines().count(), 1 + 10 + 1 + 1, "{dump}");
    let imported = dir.path().join("imported");
    let output = revkv_with_input(&["import", "--json", s(&imported)], Some(dump.as_bytes()));
    ok(&output);
    let summary: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(
        (summary["records"].as_u64(), summary["history"].as_u64()),
        (Some(10), Some(1))
    );
    assert!(
        ok(&revkv(&["export", s(&imported)])) == dump,
        "the exports differ"
    );
    fails(
        &revkv_with_input(&["import", s(&imported)], Some(dump.as_bytes())),
        "not empty",
    );

    let backup = dir.path().join("backup");
    ok(&revkv(&["backup", store, s(&backup)]));
    ok(&revkv(&["verify", s(&backup)]));
    assert!(
        ok(&revkv(&["export", s(&backup)])) == dump,
        "the exports differ"
    );
    let reopened = Store::open(&backup).expect("the backup opens");
    let u = users(&reopened);
    assert_eq!(
        u.find_unique("email", "3@x").unwrap().unwrap().value,
        user(3)
    );
    assert!(reopened.verify().unwrap().is_clean());
}

#[test]
fn inspect_shows_the_newest_change_feed_position() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("fed");
    let position = {
        let store = Store::builder()
            .path(&path)
            .change_feed(Retention::default())
            .open()
            .expect("store");
        users(&store).insert("ann", user(1)).expect("ann");
        let mut changes = store.changes_since(0).expect("the feed");
        changes.next().expect("one change").expect("read").seq
    };
    let text = ok(&revkv(&["inspect", s(&path)]));
    assert!(
        text.contains(&format!("change feed: newest position {position}")),
        "{text}"
    );
    let inspection: Value =
        serde_json::from_str(&ok(&revkv(&["inspect", "--json", s(&path)]))).unwrap();
    assert_eq!(inspection["feed_position"], position);
}

#[test]
fn bad_paths_a_locked_store_and_damaged_input_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("dir");
    let store = made_store(dir.path(), "store", 5);
    fails(
        &revkv(&["inspect", s(&dir.path().join("missing"))]),
        "there is nothing there",
    );
    fails(&revkv(&["verify", s(dir.path())]), "no revkv store");
    fails(
        &revkv(&["inspect", "etcd://127.0.0.1:1"]),
        "etcd://HOST:PORT",
    );
    fails(
        &revkv(&["backup", "etcd://127.0.0.1:1/x", s(&dir.path().join("b"))]),
        "revkv export",
    );
    fails(&revkv(&["backup", s(&store), s(&store)]), "not empty");

    let open = Store::open(&store).expect("a service holds the store");
    fails(&revkv(&["inspect", s(&store)]), "already open");
    fails(&revkv(&["export", s(&store)]), "already open");
    drop(open);

    let dump = ok(&revkv(&["export", s(&store)]));
    let last_line = dump.trim_end().rfind('\n').expect("lines");
    fails(
        &revkv_with_input(
            &["import", s(&dir.path().join("cut"))],
            Some(&dump.as_bytes()[..last_line]),
        ),
        "cut short",
    );
    fails(
        &revkv_with_input(
            &["import", s(&dir.path().join("cut-mid-line"))],
            Some(&dump.as_bytes()[..last_line - 9]),
        ),
        "line 7",
    );
    let garbled = dump.replacen("\"key\"", "\"kee\"", 1);
    fails(
        &revkv_with_input(
            &["import", s(&dir.path().join("garbled"))],
            Some(garbled.as_bytes()),
        ),
        "line 2",
    );
    fails(
        &revkv(&[
            "import",
            s(&dir.path().join("nofile")),
            s(&dir.path().join("missing.jsonl")),
        ]),
        "No such file",
    );

    // A store whose files are damaged: an error that says so, never a panic, nor an empty
    // store where the records were.
    for (file, said) in [("db", "corrupt"), ("conf", "storage engine error")] {
        let damaged = made_store(dir.path(), &format!("damaged-{file}"), 50);
        let len = std::fs::read(damaged.join(file)).expect(file).len();
        std::fs::write(damaged.join(file), vec![0xa5; len]).expect("damage");
        fails(&revkv(&["verify", s(&damaged)]), said);
        fails(&revkv(&["export", s(&damaged)]), said);
    }
}

#[test]
fn verify_exits_non_zero_on_an_index_that_does_not_match_the_records() {
    let dir = tempfile::tempdir().expect("dir");
    let mut found = 0;
    for writes in 0..60 {
        let path = dir.path().join(format!("crashed-{writes}"));
        {
            let store = Store::builder()
                .path(&path)
                .crash_after_writes(writes)
                .open();
            let Ok(store) = store else { continue };
            let Ok(u) = store
                .collection::<User>("users")
                .unique("email", |u: &User| u.email.clone())
                .open()
            else {
                continue;
            };
            let _ = u.insert("a", user(1));
            let _ = u.insert("b", user(2));
        }
        let output = revkv(&["verify", s(&path)]);
        match output.status.code() {
            Some(0) => {}
            Some(1) => {
                let text = String::from_utf8_lossy(&output.stdout);
                assert!(text.contains("users.email"), "{text}");
                found += 1;
            }
            _ => panic!("{}", String::from_utf8_lossy(&output.stderr)),
        }
        // Opening the collection sweeps what the crash left.
        let store = Store::open(&path).expect("reopen");
        let _u = store
            .collection::<User>("users")
            .unique("email", |u: &User| u.email.clone())
            .open()
            .expect("users");
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "crash after {writes} writes: {report}");
    }
    assert!(
        found > 0,
        "some crash point leaves an index entry without its record"
    );
}

#[test]
fn a_backup_killed_halfway_leaves_its_source_untouched() {
    let dir = tempfile::tempdir().expect("dir");
    let store = made_store(dir.path(), "store", 100_000);
    let before = ok(&revkv(&["export", s(&store)]));
    let dest = dir.path().join("backup");
    let mut child = Command::new(env!("CARGO_BIN_EXE_revkv"))
        .args(["backup", s(&store), s(&dest)])
        .stderr(Stdio::null())
        .spawn()
        .expect("backup");
    // Killed once it has started writing the copy.
    let incomplete = dir.path().join("backup.incomplete");
    while !incomplete.join("db").exists() {
        std::thread::yield_now();
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("ended");
    // The same records; the header's version mark moved, as any process that dies with the
    // store open moves it.
    let records = |export: &str| {
        export
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(records(&ok(&revkv(&["export", s(&store)]))) == records(&before));
    ok(&revkv(&["verify", s(&store)]));
    if status.success() {
        ok(&revkv(&["verify", s(&dest)]));
    } else {
        assert!(
            !dest.exists(),
            "a backup killed halfway leaves no store at its destination"
        );
        // The next backup takes the place of the one killed.
        ok(&revkv(&["backup", s(&store), s(&dest)]));
        assert!(!incomplete.exists());
        ok(&revkv(&["verify", s(&dest)]));
    }
}

#[test]
fn a_copy_to_another_store_and_back_gives_the_same_export() {
    let dir = tempfile::tempdir().expect("dir");
    let store = made_store(dir.path(), "store", 200);
    let before = ok(&revkv(&["export", s(&store)]));
    let there = match std::env::var("REVKV_ETCD_ENDPOINTS") {
        Ok(endpoints) if !endpoints.is_empty() => {
            let hosts: Vec<&str> = endpoints
                .split(',')
                .map(|e| e.trim_start_matches("http://"))
                .collect();
            format!(
                "etcd://{}/cli-copy-{:016x}",
                hosts.join(","),
                fastrand::u64(..)
            )
        }
        _ => s(&dir.path().join("there")).to_owned(),
    };
    let back = dir.path().join("back");
    ok(&revkv(&["copy", s(&store), &there]));
    ok(&revkv(&["verify", &there]));
    ok(&revkv(&["copy", &there, s(&back)]));
    assert!(
        ok(&revkv(&["export", s(&back)])) == before,
        "the exports differ"
    );
    // A namespace in the earlier etcd key layout is refused, and moved by a copy.
    if let Some(there) = there.strip_prefix("etcd://") {
        let legacy = format!("etcd-legacy://{there}-old");
        ok(&revkv(&["copy", s(&store), &legacy]));
        let current = format!("etcd://{there}-old");
        fails(&revkv(&["inspect", &current]), "earlier key layout");
        let moved = format!("etcd://{there}-moved");
        ok(&revkv(&["copy", &legacy, &moved]));
        assert!(
            ok(&revkv(&["export", &moved])) == before,
            "the exports differ"
        );
    }
}
