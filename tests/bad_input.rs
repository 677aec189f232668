//! Bad input gets a typed error, never a panic, and never damages what is stored.

use revkv::{Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Doc {
    body: String,
}

fn doc(body: &str) -> Doc {
    Doc { body: body.into() }
}

#[test]
fn empty_and_oversize_keys_are_refused() -> revkv::Result<()> {
    let store = Store::builder().max_key_len(16).open()?;
    let docs = store.collection::<Doc>("docs").open()?;
    assert!(matches!(
        docs.insert("", doc("x")),
        Err(Error::EmptyKey { .. })
    ));
    assert!(matches!(docs.get(""), Err(Error::EmptyKey { .. })));
    let long = "k".repeat(17);
    assert!(matches!(
        docs.insert(&long, doc("x")),
        Err(Error::KeyTooLong {
            len: 17,
            max: 16,
            ..
        })
    ));
    assert!(matches!(docs.get(&long), Err(Error::KeyTooLong { .. })));
    docs.insert(&"k".repeat(16), doc("fits"))?;
    Ok(())
}

#[test]
fn oversize_values_are_refused_and_leave_the_record_alone() -> revkv::Result<()> {
    let store = Store::builder().max_value_len(100).open()?;
    let docs = store.collection::<Doc>("docs").open()?;
    let v1 = docs.insert("d", doc("small"))?;
    let err = docs.update("d", v1, doc(&"x".repeat(200))).unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { max: 100, .. }),
        "{err:?}"
    );
    assert_eq!(docs.get("d")?.expect("kept").value, doc("small"));
    assert!(matches!(
        docs.insert("e", doc(&"x".repeat(200))),
        Err(Error::ValueTooLarge { .. })
    ));
    Ok(())
}

#[test]
fn default_limits_are_within_the_documented_bounds() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let docs = store.collection::<Doc>("docs").open()?;
    assert!(matches!(
        docs.get(&"k".repeat(4097)),
        Err(Error::KeyTooLong { .. })
    ));
    let too_big = doc(&"x".repeat(16 * 1024 * 1024 + 1));
    assert!(matches!(
        docs.insert("big", too_big),
        Err(Error::ValueTooLarge { .. })
    ));
    Ok(())
}

#[test]
fn invalid_collection_and_index_names_are_refused() -> revkv::Result<()> {
    let store = Store::temporary()?;
    for bad in ["", "has space", "slash/inside", "ü", &"n".repeat(65)] {
        let err = store.collection::<Doc>(bad).open().unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err:?}");
    }
    let err = store
        .collection::<Doc>("docs")
        .unique("bad name", |d: &Doc| d.body.clone())
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }));
    store.collection::<Doc>("Docs_v2.archive-1").open()?;
    Ok(())
}

/// Writes raw bytes under a record key with sled itself, bypassing revkv.
fn plant(dir: &std::path::Path, key: &[u8], value: &[u8]) {
    let db = sled::open(dir).expect("sled opens");
    db.open_tree("c/docs")
        .expect("tree")
        .insert(key, value)
        .expect("insert");
    db.flush().expect("flush");
}

#[test]
fn corrupt_stored_bytes_are_a_typed_error() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path())?;
        store
            .collection::<Doc>("docs")
            .open()?
            .insert("good", doc("fine"))?;
    }
    plant(dir.path(), b"garbage", b"\x00\x01\x02");
    plant(dir.path(), b"truncated", b"R\x01\x00");
    plant(
        dir.path(),
        b"bad-payload",
        b"R\x01\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0\0\xff\xff\xff",
    );

    let store = Store::open(dir.path())?;
    let docs = store.collection::<Doc>("docs").open()?;
    for key in ["garbage", "truncated", "bad-payload"] {
        let err = docs.get(key).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { ref location, .. } if location == &format!("docs/{key}")),
            "{key}: {err:?}"
        );
        assert!(docs.update_with(key, Clone::clone).is_err());
    }
    // Iteration reports the bad records and still yields the good one.
    let results: Vec<_> = docs.iter().collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
    assert_eq!(docs.get("good")?.expect("intact").value, doc("fine"));
    Ok(())
}

#[test]
fn a_format_from_the_future_is_told_apart_from_corruption() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    drop(Store::open(dir.path())?);
    plant(dir.path(), b"future", b"R\x07whatever a later revkv writes");
    let store = Store::open(dir.path())?;
    let err = store
        .collection::<Doc>("docs")
        .open()?
        .get("future")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedFormat {
                found: 7,
                supported: 2,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn a_store_written_by_a_newer_revkv_is_refused() -> revkv::Result<()> {
    let dir = tempfile::tempdir()?;
    drop(Store::open(dir.path())?);
    {
        let db = sled::open(dir.path()).expect("sled opens");
        // META tag, then bincode varint 2: store format 2.
        db.open_tree("revkv/meta")
            .expect("tree")
            .insert("format", b"M\x01\x02".as_slice())
            .expect("insert");
        db.flush().expect("flush");
    }
    let err = Store::open(dir.path()).expect_err("must refuse");
    assert!(
        matches!(err, Error::UnsupportedFormat { found: 2, .. }),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn a_value_of_another_type_is_corrupt_not_a_panic() -> revkv::Result<()> {
    #[derive(Serialize, Deserialize, Debug)]
    struct Wide {
        a: u64,
        b: Vec<String>,
        c: [u8; 32],
    }
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path())?;
        let docs = store.collection::<Doc>("docs").open()?;
        docs.insert("d", doc("short"))?;
        // While it is open, a second declaration with another type is refused up front.
        let err = store.collection::<Wide>("docs").open().unwrap_err();
        assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    }
    // A later session that reads the records as another type gets a typed error.
    let store = Store::open(dir.path())?;
    let wide = store.collection::<Wide>("docs").open()?;
    assert!(matches!(wide.get("d"), Err(Error::Corrupt { .. })));
    Ok(())
}
