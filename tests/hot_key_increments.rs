//! No lost update on one hot key: 8 real threads increment it concurrently.

use std::collections::BTreeSet;
use std::sync::Barrier;

use revkv::{Conflict, Error, Store, Version};
use serde::{Deserialize, Serialize};

const THREADS: usize = 8;
const PER_THREAD: usize = 500;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Counter {
    n: u64,
}

/// Runs `increment` `PER_THREAD` times on each of `THREADS` threads started together; returns
/// every version the increments produced.
fn hammer(increment: impl Fn() -> Version + Sync) -> Vec<Version> {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    (0..PER_THREAD).map(|_| increment()).collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker panicked"))
            .collect()
    })
}

fn assert_no_lost_update(final_count: u64, versions: &[Version]) {
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(final_count, total, "lost updates");
    let distinct: BTreeSet<Version> = versions.iter().copied().collect();
    assert_eq!(distinct.len(), versions.len(), "a version was issued twice");
}

#[test]
fn update_with_loses_no_increment() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let counters = store.collection::<Counter>("counters").open()?;
    counters.insert("hot", Counter { n: 0 })?;

    let versions = hammer(|| {
        counters
            .update_with("hot", |c: &Counter| Counter { n: c.n + 1 })
            .expect("update_with gave up")
            .version
    });

    assert_no_lost_update(counters.get("hot")?.expect("exists").value.n, &versions);
    Ok(())
}

#[test]
fn get_update_retry_loop_loses_no_increment() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let counters = store.collection::<Counter>("counters").open()?;
    counters.insert("hot", Counter { n: 0 })?;

    let versions = hammer(|| {
        let mut current = counters.get("hot").expect("read").expect("exists");
        loop {
            let next = Counter {
                n: current.value.n + 1,
            };
            match counters.update("hot", current.version, next) {
                Ok(version) => return version,
                Err(Error::Conflict(conflict @ Conflict::VersionMismatch { .. })) => {
                    // Merge from the record the conflict carries, without a second read.
                    current = conflict
                        .current_record()
                        .expect("decodes")
                        .expect("still exists");
                }
                Err(other) => panic!("unexpected error {other}"),
            }
        }
    });

    assert_no_lost_update(counters.get("hot")?.expect("exists").value.n, &versions);
    Ok(())
}
