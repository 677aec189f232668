//! Conflict observability: counters match the conflicts provoked, exactly; every conflict is
//! a `tracing` event that names it without logging values.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use revkv::{Conflict, ConflictKind, ManualClock, Store, Version};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    secret: String,
    state: String,
}

fn doc(secret: &str, state: &str) -> Doc {
    Doc {
        secret: secret.into(),
        state: state.into(),
    }
}

/// Collects formatted `tracing` output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn counters_and_events_match_the_provoked_conflicts() -> revkv::Result<()> {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    let store = Store::builder().clock(clock.clone()).open()?;
    let docs = store
        .collection::<Doc>("docs")
        .unique("secret", |d: &Doc| d.secret.clone())
        .states(|d: &Doc| d.state.clone(), [("draft", "live")])
        .open()?;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();

    tracing::subscriber::with_default(subscriber, || -> revkv::Result<()> {
        let v1 = docs.insert("hot", doc("s3cr3t-1", "draft"))?;
        docs.insert("cold", doc("s3cr3t-2", "draft"))?;
        for _ in 0..3 {
            docs.update(
                "hot",
                Version::new(v1.get() + 1_000),
                doc("s3cr3t-1", "draft"),
            )
            .unwrap_err();
        }
        for _ in 0..2 {
            docs.insert("hot", doc("x", "draft")).unwrap_err();
        }
        docs.insert("third", doc("s3cr3t-2", "draft")).unwrap_err(); // unique
        let v2 = docs.update("hot", v1, doc("s3cr3t-1", "live"))?;
        docs.update("hot", v2, doc("s3cr3t-1", "draft"))
            .unwrap_err(); // transition
        store
            .transaction(|_| {
                Err::<(), _>(
                    Conflict::rule("closed", "shop closed")
                        .at("docs", "cold")
                        .into(),
                )
            })
            .unwrap_err();
        docs.update_with("cold", Clone::clone)?;
        Ok(())
    })?;

    let stats = store.stats();
    assert_eq!(stats.conflicts_of("docs", ConflictKind::Version), 3);
    assert_eq!(stats.conflicts_of("docs", ConflictKind::Exists), 2);
    assert_eq!(stats.conflicts_of("docs", ConflictKind::Unique), 1);
    assert_eq!(stats.conflicts_of("docs", ConflictKind::Transition), 1);
    assert_eq!(stats.conflicts_of("docs", ConflictKind::Rule), 1);
    assert_eq!(stats.conflicts.values().sum::<u64>(), 8);
    assert_eq!((stats.update_with.calls, stats.update_with.retries), (1, 0));
    assert_eq!(stats.hot_keys[0].key, "hot");
    assert_eq!(stats.hot_keys[0].conflicts, 6);

    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("revkv::conflict"))
        .collect();
    assert_eq!(events.len(), 8, "{log}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("kind=\"unique\"") && e.contains("index=\"secret\""))
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("from=\"live\"") && e.contains("to=\"draft\""))
    );
    assert!(!log.contains("s3cr3t"), "a value was logged: {log}");

    // Outside the sliding window, the keys are no longer hot; the totals stay.
    clock.advance(revkv::HOT_KEY_WINDOW + Duration::from_secs(1));
    let later = store.stats();
    assert!(later.hot_keys.is_empty(), "{:?}", later.hot_keys);
    assert_eq!(later.conflicts, stats.conflicts);
    Ok(())
}

#[test]
fn update_with_retries_are_counted_under_contention() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let counters = store.collection::<u64>("counters").open()?;
    counters.insert("c", 0_u64)?;
    let attempts = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..500 {
                    counters
                        .update_with("c", |n| {
                            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            n + 1
                        })
                        .expect("update_with");
                }
            });
        }
    });
    let stats = store.stats().update_with;
    assert_eq!(stats.calls, 2_000);
    // Every attempt beyond the first of a call ran the closure once more.
    assert_eq!(stats.calls + stats.retries, attempts.into_inner());
    Ok(())
}
