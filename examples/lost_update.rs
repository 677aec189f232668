//! The lost-update story on a store in a local folder.
//!
//! Two writers read the same counter; without compare-and-swap the second write would erase
//! the first. With revkv the second write conflicts, merges from the record the conflict
//! carries, and both increments survive. Run it twice: the store in `./data-lost-update` keeps
//! the counter across runs.
//!
//! ```sh
//! cargo run --example lost_update
//! ```

use revkv::{Conflict, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Counter {
    clicks: u64,
}

fn main() -> revkv::Result<()> {
    let store = Store::open("data-lost-update")?;
    let counters = store.collection::<Counter>("counters").open()?;
    if counters.get("page")?.is_none() {
        counters.insert("page", Counter { clicks: 0 })?;
    }

    let first = counters.get("page")?.expect("exists");
    let second = counters.get("page")?.expect("exists");
    println!(
        "both writers read clicks={} at version {}",
        first.value.clicks, first.version
    );

    let v = counters.update(
        "page",
        first.version,
        Counter {
            clicks: first.value.clicks + 1,
        },
    )?;
    println!(
        "writer 1 stored clicks={} at version {v}",
        first.value.clicks + 1
    );

    let stale = Counter {
        clicks: second.value.clicks + 1,
    };
    match counters.update("page", second.version, stale) {
        Err(Error::Conflict(conflict @ Conflict::VersionMismatch { .. })) => {
            println!("writer 2 conflicted: {conflict}");
            let current = conflict.current_record::<Counter>()?.expect("still exists");
            let merged = Counter {
                clicks: current.value.clicks + 1,
            };
            let v = counters.update("page", current.version, merged)?;
            println!(
                "writer 2 merged and stored clicks={} at version {v}",
                current.value.clicks + 1
            );
        }
        other => println!("unexpected: {other:?}"),
    }
    store.flush()?;
    println!("final: {:?}", counters.get("page")?.expect("exists").value);
    Ok(())
}
