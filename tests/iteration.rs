//! Iterating a collection yields key, version and value, in key order.

use revkv::Store;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    n: u32,
}

#[test]
fn iter_and_scan_prefix_yield_keys_versions_and_values_in_order() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let other = store.collection::<Doc>("other").open()?;
    let mut expected = Vec::new();
    for (i, key) in ["user-2", "user-1", "team-1", "user-10"]
        .into_iter()
        .enumerate()
    {
        let n = u32::try_from(i).expect("small");
        expected.push((key.to_owned(), docs.insert(key, Doc { n })?, Doc { n }));
    }
    other.insert("user-3", Doc { n: 99 })?;
    expected.sort_by(|a, b| a.0.cmp(&b.0));

    let all: Vec<_> = docs
        .iter()
        .map(|r| r.map(|(k, v)| (k, v.version, v.value)))
        .collect::<revkv::Result<_>>()?;
    assert_eq!(all, expected);

    let users: Vec<String> = docs
        .scan_prefix("user-")
        .map(|r| r.map(|(k, _)| k))
        .collect::<revkv::Result<_>>()?;
    assert_eq!(users, ["user-1", "user-10", "user-2"]);

    assert_eq!((&docs).into_iter().count(), 4);
    assert_eq!(docs.scan_prefix("nobody").count(), 0);
    Ok(())
}
