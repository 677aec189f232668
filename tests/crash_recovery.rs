//! Crash recovery: a child process (this test binary, re-run) writes concurrently and is killed
//! with SIGKILL at random moments; after each kill the store is reopened and checked.
//!
//! What must hold after every crash:
//! - the total balance of the bank is conserved, and every account matches its transfers;
//! - every write the child saw acknowledged (durable mode) is present;
//! - no version went backwards, and new versions start above every one seen before;
//! - the unique indexes match the records exactly and every order is in a reachable state
//!   (`verify()`);
//! - the engine kept a prefix of the plain single-key writes, and everything before a
//!   successful `flush` (the assumption the multi-key protocols rest on).
//!
//! `REVKV_CRASH_CYCLES=500 cargo test --release --test crash_recovery` runs a longer soak.

mod child;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use revkv::{Collection, Conflict, Durability, Error, Store, Version};
use serde::{Deserialize, Serialize};

const ACCOUNTS: usize = 100;
const OPENING_BALANCE: i64 = 1_000;
/// The sum every crash must conserve.
#[allow(clippy::cast_possible_wrap)] // 100 accounts
const TOTAL_BALANCE: i64 = ACCOUNTS as i64 * OPENING_BALANCE;
const CHILD_ENV: &str = "REVKV_CRASH_CHILD_DIR";

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Account {
    balance: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Transfer {
    from: String,
    to: String,
    amount: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct User {
    username: String,
    email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Order {
    status: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Counter {
    n: u64,
}

/// Every collection of the workload, declared identically by child and parent.
struct Bank {
    store: Store,
    accounts: Collection<Account>,
    transfers: Collection<Transfer>,
    users: Collection<User>,
    orders: Collection<Order>,
    counters: Collection<Counter>,
}

const TRANSITIONS: [(&str, &str); 3] = [
    ("pending", "paid"),
    ("paid", "shipped"),
    ("pending", "cancelled"),
];

impl Bank {
    fn open(dir: &Path) -> revkv::Result<Self> {
        let store = Store::builder()
            .path(dir.join("bank"))
            .durability(Durability::Immediate)
            .open()?;
        Ok(Self {
            accounts: store.collection("accounts").open()?,
            transfers: store.collection("transfers").open()?,
            users: store
                .collection::<User>("users")
                .unique("username", |u: &User| u.username.clone())
                .unique("email", |u: &User| u.email.clone())
                .open()?,
            orders: store
                .collection::<Order>("orders")
                .states(|o: &Order| o.status.clone(), TRANSITIONS)
                .initial_states(["pending"])
                .open()?,
            counters: store.collection("counters").open()?,
            store,
        })
    }
}

/// The child's record of what it saw acknowledged; one line per event, written straight to the
/// file so that a kill loses nothing the child wrote before it.
struct AckLog(Mutex<File>);

impl AckLog {
    fn record(&self, line: &str) {
        let mut file = self.0.lock().expect("log lock");
        writeln!(file, "{line}").expect("log write");
    }
}

/// The child: set up once, then write from several threads until killed.
#[test]
#[ignore = "run by crash_recovery_cycles as a child process"]
fn crash_child() {
    let dir = std::env::var_os(CHILD_ENV).expect("run by the crash harness");
    let dir = Path::new(&dir);
    let bank = Bank::open(dir).expect("open");
    if bank.accounts.get("a0").expect("read").is_none() {
        bank.store
            .transaction(|tx| {
                for i in 0..ACCOUNTS {
                    tx.insert(
                        &bank.accounts,
                        &format!("a{i}"),
                        Account {
                            balance: OPENING_BALANCE,
                        },
                    )?;
                }
                tx.insert(&bank.counters, "hot", Counter { n: 0 })?;
                Ok(())
            })
            .expect("set up");
    }
    let prefix = Store::open(dir.join("prefix")).expect("prefix store");
    let sequence = prefix
        .collection::<u64>("sequence")
        .open()
        .expect("collection");
    let log = AckLog(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("acks.log"))
            .expect("log"),
    ));
    let run_id = fastrand::u64(..);
    println!("ready");
    std::io::stdout().flush().expect("stdout");

    std::thread::scope(|s| {
        for t in 0..2 {
            let (bank, log) = (&bank, &log);
            s.spawn(move || transfers(bank, log, run_id, t));
        }
        s.spawn(|| registrations(&bank, &log, run_id));
        s.spawn(|| order_lifecycles(&bank, &log, run_id));
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let after = bank
                        .counters
                        .update_with("hot", |c: &Counter| Counter { n: c.n + 1 })
                        .expect("increment");
                    log.record(&format!("counter {} {}", after.version, after.value.n));
                }
            });
        }
        s.spawn(|| {
            // Plain, non-durable single-key writes in order, with a flush now and then.
            let start = sequence.iter().count() as u64;
            for i in start.. {
                sequence
                    .insert(&format!("{i:012}"), i)
                    .expect("sequence write");
                if i % 64 == 0 {
                    prefix.flush().expect("flush");
                    log.record(&format!("flushed {i}"));
                }
            }
        });
    });
}

fn transfers(bank: &Bank, log: &AckLog, run_id: u64, thread: u64) {
    let mut rng = fastrand::Rng::new();
    for n in 0.. {
        let id = format!("t-{run_id}-{thread}-{n}");
        let from = format!("a{}", rng.usize(..ACCOUNTS));
        let to = format!("a{}", rng.usize(..ACCOUNTS));
        let amount = rng.i64(1..=50);
        let result = bank.store.transaction(|tx| {
            let source = tx.get(&bank.accounts, &from)?.expect("account");
            if source.value.balance < amount || from == to {
                return Err(Conflict::rule("refused", "no funds or same account").into());
            }
            let target = tx.get(&bank.accounts, &to)?.expect("account");
            tx.update(
                &bank.accounts,
                &from,
                source.version,
                Account {
                    balance: source.value.balance - amount,
                },
            )?;
            tx.update(
                &bank.accounts,
                &to,
                target.version,
                Account {
                    balance: target.value.balance + amount,
                },
            )?;
            tx.insert(
                &bank.transfers,
                &id,
                Transfer {
                    from: from.clone(),
                    to: to.clone(),
                    amount,
                },
            )?;
            Ok(())
        });
        match result {
            Ok(()) => log.record(&format!("transfer {id}")),
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("transfer: {other}"),
        }
    }
}

fn registrations(bank: &Bank, log: &AckLog, run_id: u64) {
    let mut rng = fastrand::Rng::new();
    for n in 0.. {
        let name = format!("name{}", rng.usize(..60));
        let result = if n % 3 == 0 {
            // Rename an existing user onto a name that may be taken.
            match bank.users.iter().next() {
                Some(Ok((key, user))) => bank
                    .users
                    .update(
                        &key,
                        user.version,
                        User {
                            username: name,
                            ..user.value
                        },
                    )
                    .map(|v| (key, v)),
                _ => continue,
            }
        } else {
            let key = format!("u-{run_id}-{n}");
            let email = format!("mail{}@example.com", rng.usize(..60));
            bank.users
                .insert(
                    &key,
                    User {
                        username: name,
                        email,
                    },
                )
                .map(|v| (key, v))
        };
        match result {
            Ok((key, version)) => log.record(&format!("user {key} {version}")),
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("registration: {other}"),
        }
    }
}

fn order_lifecycles(bank: &Bank, log: &AckLog, run_id: u64) {
    let mut rng = fastrand::Rng::new();
    for n in 0.. {
        let key = format!("o-{run_id}-{n}");
        let mut version = bank
            .orders
            .insert(
                &key,
                Order {
                    status: "pending".into(),
                },
            )
            .expect("order");
        log.record(&format!("order {key} {version}"));
        let path: &[&str] = if rng.bool() {
            &["paid", "shipped"]
        } else {
            &["cancelled", "paid"]
        };
        for to in path {
            match bank.orders.update(
                &key,
                version,
                Order {
                    status: (*to).into(),
                },
            ) {
                Ok(v) => {
                    version = v;
                    log.record(&format!("order {key} {version}"));
                }
                Err(Error::Conflict(Conflict::Transition { .. })) => break,
                Err(other) => panic!("order: {other}"),
            }
        }
    }
}

/// What the parent carries from one cycle to the next.
#[derive(Default)]
struct Seen {
    versions: BTreeMap<String, Version>,
    highest: Option<Version>,
}

impl Seen {
    fn observe(&mut self, key: &str, version: Version) {
        let before = self.versions.insert(key.to_owned(), version);
        assert!(
            before.is_none_or(|b| b <= version),
            "{key} went back from {before:?} to {version}"
        );
        self.highest = self.highest.max(Some(version));
    }
}

fn check_after_crash(dir: &Path, seen: &mut Seen) -> revkv::Result<()> {
    let bank = Bank::open(dir)?;
    let report = bank.store.verify()?;
    assert!(report.is_clean(), "{report}");

    // Conservation, and record-by-record atomicity of the transfers.
    let mut expected: BTreeMap<String, i64> = (0..ACCOUNTS)
        .map(|i| (format!("a{i}"), OPENING_BALANCE))
        .collect();
    for transfer in &bank.transfers {
        let (_, t) = transfer?;
        *expected.get_mut(&t.value.from).expect("account") -= t.value.amount;
        *expected.get_mut(&t.value.to).expect("account") += t.value.amount;
    }
    let mut total = 0;
    for account in &bank.accounts {
        let (key, a) = account?;
        assert_eq!(
            a.value.balance, expected[&key],
            "{key} does not match its transfers"
        );
        total += a.value.balance;
        seen.observe(&format!("accounts/{key}"), a.version);
    }
    assert_eq!(total, TOTAL_BALANCE);

    // Every acknowledged write is present (at that version or a later one).
    let log = fs::read_to_string(dir.join("acks.log")).unwrap_or_default();
    let mut last_flushed = None;
    let mut counter_floor = (Version::new(0), 0);
    for line in log.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["transfer", id] => assert!(bank.transfers.get(id)?.is_some(), "lost transfer {id}"),
            ["user", key, version] => {
                let stored = bank
                    .users
                    .get(key)?
                    .unwrap_or_else(|| panic!("lost user {key}"));
                assert!(
                    stored.version >= version.parse().expect("version"),
                    "user {key} lost a write"
                );
            }
            ["order", key, version] => {
                let stored = bank
                    .orders
                    .get(key)?
                    .unwrap_or_else(|| panic!("lost order {key}"));
                assert!(
                    stored.version >= version.parse().expect("version"),
                    "order {key} lost a write"
                );
            }
            ["counter", version, n] => {
                counter_floor =
                    counter_floor.max((version.parse().expect("v"), n.parse().expect("n")));
            }
            ["flushed", i] => last_flushed = Some(i.parse::<u64>().expect("index")),
            _ => {} // a line cut short by the kill
        }
    }
    let counter = bank.counters.get("hot")?.expect("counter");
    assert!(
        counter.version >= counter_floor.0 && counter.value.n >= counter_floor.1,
        "lost increment"
    );
    seen.observe("counters/hot", counter.version);

    // The engine's prefix property, which the multi-key protocols rest on.
    let prefix = Store::open(dir.join("prefix"))?;
    let sequence = prefix.collection::<u64>("sequence").open()?;
    let values: Vec<u64> = sequence
        .iter()
        .map(|r| r.map(|(_, v)| v.value))
        .collect::<revkv::Result<_>>()?;
    assert!(
        values.iter().enumerate().all(|(i, v)| *v == i as u64),
        "not a prefix: a gap"
    );
    if let Some(flushed) = last_flushed {
        assert!(values.len() as u64 > flushed, "lost writes before a flush");
    }

    // New versions start above everything seen so far, even across the crash.
    let next = bank
        .counters
        .update_with("hot", |c: &Counter| Counter { n: c.n + 1 })?;
    assert!(
        seen.highest.is_none_or(|h| next.version > h),
        "a version was reissued"
    );
    seen.observe("counters/hot", next.version);
    Ok(())
}

#[test]
fn crash_recovery_cycles() -> revkv::Result<()> {
    let cycles: usize = std::env::var("REVKV_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir()?;
    let mut seen = Seen::default();
    for cycle in 0..cycles {
        let mut child = child::command("crash_child", CHILD_ENV, dir.path())?
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        // Wait until the child has opened (and recovered) the store, then let it write for a
        // random while before the kill.
        let mut ready = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        while !ready.contains("ready") {
            ready.clear();
            let read = stdout.read_line(&mut ready)?;
            assert!(
                read > 0,
                "cycle {cycle}: the child exited before it was ready: {:?}",
                child.wait()?
            );
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(5..300)));
        child.kill()?;
        child.wait()?;
        check_after_crash(dir.path(), &mut seen)
            .unwrap_or_else(|e| panic!("cycle {cycle}: recovery failed: {e}"));
    }
    // The cycles must have exercised every part of the workload, or they proved nothing.
    let log = fs::read_to_string(dir.path().join("acks.log"))?;
    let count = |kind: &str| log.lines().filter(|l| l.starts_with(kind)).count();
    let counts = ["transfer", "user", "order", "counter", "flushed"].map(|k| (k, count(k)));
    eprintln!("acknowledged over {cycles} crashes: {counts:?}");
    assert!(counts.iter().all(|(_, n)| *n > 0), "{counts:?}");
    Ok(())
}
