//! The `decode` target: arbitrary bytes where revkv expects its own stored bytes, planted into
//! an in-memory copy of a small store that is then opened and used through the public API.
//! (The decoders' own round trips are a property test in `src/codec.rs`.)

use std::sync::OnceLock;
use std::time::Duration;

use revkv::{Error, Memory, Retention, Store, Version};

use super::{Item, SPECS};

/// The change feed the template store and every store opened from it keep.
const RETENTION: Retention = Retention::new(1_000, Duration::from_secs(3_600));
/// A feed position above everything the template committed: an entry planted there is one
/// the store must replay at open, as after a crash.
const UNAPPLIED_POSITION: [u8; 8] = 1_000_000_u64.to_be_bytes();

/// Keys of the store's bookkeeping tree (see `src/meta.rs`).
const META_KEYS: [&str; 5] = [
    "format",
    "session",
    "version-lease",
    "collection/users",
    "sweep/users",
];

/// Where in a store the bytes go: `(tree, key)`.
type Spot = (&'static str, &'static [u8]);

/// Plants `data[1..]` into a copy of the template store (a record, an index entry, a metadata
/// value, a transaction intent, a change feed entry or an expiry entry, chosen by the low
/// nibble of `data[0]`; no spot for 0 to 3 and 7), then opens, reads, verifies and writes it
/// through the public API. Bit 4 of `data[0]` takes the copy as a crash left it, so that
/// opening it runs crash recovery.
///
/// Any error is fine; a panic, an allocation out of proportion to the input, or a broken
/// promise (a record read at another version than its bytes hold, `verify` failing on bad
/// data instead of reporting it, a write that makes a consistent store inconsistent) is a bug.
///
/// # Panics
/// When one of those promises is broken.
pub fn decode(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let Some((tree, key)) = spot(mode) else {
        return;
    };
    let template = template();
    let crashed = mode & 0x10 != 0;
    let memory = if crashed {
        template.crashed.snapshot()
    } else {
        template.closed.snapshot()
    };
    memory.plant(tree, key, bytes);
    // After a crash, recovery may redo a logged write over the planted record.
    use_store(&memory, (!crashed).then_some(((tree, key), bytes)));
}

/// The version in the header of record bytes (format tag, then the version, big-endian), if
/// they are long enough to hold one.
fn version_at(record: &[u8]) -> Option<Version> {
    let raw = record.get(2..10)?.try_into().ok()?;
    Some(Version::new(u64::from_be_bytes(raw)))
}

/// Where `mode` plants the bytes, if anywhere. Keys name records and index values that the
/// template store holds (`users/k0` holds tag `t0` and alias `ann`) and ones it does not.
fn spot(mode: u8) -> Option<Spot> {
    const INTENT_ID: [u8; 8] = 1_u64.to_be_bytes();
    Some(match mode & 0x0f {
        4 => ("revkv/feed", &UNAPPLIED_POSITION),
        5 => ("revkv/feed", &INTENT_ID),
        6 => ("x/users", b"\0\0\0\0\0\0\0\x01k0"),
        8 => ("c/users", b"k0"),
        9 => ("c/orders", b"k3"),
        10 => ("c/orders", b"\xff\xfe"),
        11 => ("u/users/tag", b"t0"),
        12 => ("u/users/alias", b"zed"),
        13 => ("u/orders/tag", b"\xc3"),
        14 => (
            "revkv/meta",
            META_KEYS[usize::from(mode >> 5) % META_KEYS.len()].as_bytes(),
        ),
        15 => ("revkv/intents", &INTENT_ID),
        _ => return None,
    })
}

/// Opens, reads, verifies and writes the store; errors are fine, panics and broken promises
/// are not. `planted`: the spot and bytes planted, where no recovery may have replaced them.
fn use_store(memory: &Memory, planted: Option<(Spot, &[u8])>) {
    let Ok(store) = open(memory) else {
        return;
    };
    let Ok(collections) = SPECS
        .iter()
        .map(|spec| spec.open(&store))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    for (spec, collection) in SPECS.iter().zip(&collections) {
        let tree = format!("c/{}", spec.name);
        for probe in ["k0", "k1", "k3"] {
            if let Ok(Some(record)) = collection.get(probe)
                && let Some(((planted_tree, planted_key), bytes)) = planted
                && (planted_tree, planted_key) == (tree.as_str(), probe.as_bytes())
            {
                assert_eq!(
                    Some(record.version),
                    version_at(bytes),
                    "planted version misread"
                );
            }
        }
        collection.iter().for_each(drop);
        for &(index, _) in spec.uniques {
            for value in ["t0", "ann", "zed"] {
                let _ = collection.find_unique(index, value);
            }
        }
    }
    if let Ok(changes) = store.changes_since(0) {
        changes.take(64).for_each(drop);
    }
    let _ = store.sweep_expired();
    let before = checked_verify(&store);
    let users = &collections[0];
    let _ = users.update_with("k0", |item| Item {
        body: format!("{} after", item.body),
        ..item.clone()
    });
    let _ = users.insert("k2", new_user("t0", "ann"));
    let _ = users.insert("k4", new_user("zed", "cy"));
    let _ = store.transaction(|tx| {
        tx.insert(
            &collections[1],
            "k5",
            new_user("t9", "orders have no alias"),
        )?;
        tx.insert(users, "k5", new_user("t9", "dee"))
    });
    let after = checked_verify(&store);
    if before.is_some_and(|report| report.is_clean()) {
        let after = after.expect("verify ran before, so it runs after");
        assert!(after.is_clean(), "writes broke a consistent store: {after}");
    }
}

fn open(memory: &Memory) -> revkv::Result<Store> {
    Store::builder()
        .memory(memory)
        .change_feed(RETENTION)
        .open()
}

fn new_user(tag: &str, alias: &str) -> Item {
    Item {
        tag: tag.into(),
        alias: alias.into(),
        state: "new".into(),
        body: String::new(),
    }
}

/// Runs `verify`, which reports problems with the data and fails only when storage fails.
fn checked_verify(store: &Store) -> Option<revkv::Report> {
    match store.verify() {
        Ok(report) => Some(report),
        Err(error @ (Error::Corrupt { .. } | Error::UnsupportedFormat { .. })) => {
            panic!("verify failed on bad data instead of reporting it: {error}")
        }
        Err(_) => None,
    }
}

/// A small store, built once per process, as it is after a clean close and as a crash left
/// it; each input plants its bytes into a copy.
struct Template {
    closed: Memory,
    crashed: Memory,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(Template::build)
}

impl Template {
    fn build() -> Self {
        let closed = Memory::new();
        let store = open(&closed).expect("the template store opens");
        let [users, orders] = SPECS.map(|spec| spec.open(&store).expect("opens"));
        users.insert("k0", new_user("t0", "ann")).expect("inserts");
        let created = users.insert("k1", new_user("t1", "bob")).expect("inserts");
        let mut active = new_user("t1", "bob");
        active.state = "active".into();
        users.update("k1", created, active).expect("updates");
        let order = Item {
            tag: "t0".into(),
            state: "paid".into(),
            ..Item::default()
        };
        orders.insert("k0", order).expect("inserts");
        // What a crash now would leave: the store is open, so its next open recovers.
        let crashed = closed.snapshot();
        drop((users, orders, store));
        Self { closed, crashed }
    }
}
