//! The `decode` target: arbitrary bytes where revkv expects its own stored bytes, first through
//! the decoders directly, then (for some inputs) planted into a real store that is opened and
//! used through the public API.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::{Item, SPECS};
use crate::codec::{self, EncodedRecord, FEED, INTENT, META};
use crate::engine::Session;
use crate::engine::local::feed::Entry;
use crate::engine::local::intent::OwnedWrite;
use crate::{Error, Retention, Store, Version};

/// The change feed the template store and every store opened from it keep.
const RETENTION: Retention = Retention::new(1_000, Duration::from_secs(3_600));
/// A feed position above everything the template committed: an entry planted there is one
/// the store must replay at open, as after a crash.
const UNAPPLIED_POSITION: [u8; 8] = 1_000_000_u64.to_be_bytes();

/// Keys of the store's bookkeeping tree (see `meta.rs`).
const META_KEYS: [&str; 5] = [
    "format",
    "session",
    "version-lease",
    "collection/users",
    "sweep/users",
];

/// Where in a store the bytes go: `(tree, key)`.
type Spot = (&'static str, &'static [u8]);

/// Runs `data[1..]` through every decoder of stored bytes; when the low nibble of `data[0]` is
/// 4 to 6 or 8 or more, also plants the bytes into a store (a record, an index entry, a
/// metadata value, a transaction intent, a change feed entry or an expiry entry, chosen by
/// `data[0]`) and opens, reads, verifies and writes it through the public API.
///
/// Any error is fine; a panic, an allocation out of proportion to the input, or a broken
/// promise (a decoded value that does not survive re-encoding, `verify` failing on bad data
/// instead of reporting it, a write that makes a consistent store inconsistent) is a bug.
///
/// # Panics
/// When one of those promises is broken.
pub fn decode(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    decoders(bytes);
    if let Some(spot) = spot(mode) {
        // Bit 4: also leave the store marked as crashed, so that opening it sweeps the indexes.
        plant_and_use(spot, bytes, mode & 0x10 != 0);
    }
}

/// Each decoder gives a value or a typed error; a value must survive encoding again.
fn decoders(bytes: &[u8]) {
    if let Ok((header, payload)) = codec::decode_record(bytes) {
        // Format 1 has version and modification time; format 2 adds the expiry time.
        let header_len = if bytes[1] == 1 { 18 } else { 26 };
        assert_eq!(
            (header.version, header.len, header.expires.is_some()),
            (version_at(bytes), header_len, header_len == 26),
            "a record header was misread"
        );
        if let Ok(item) = codec::decode_payload::<Item>(payload) {
            let mut again = EncodedRecord::new(&item, header.expires.is_some())
                .expect("a decoded item encodes");
            again.stamp(header.version, header.modified, header.expires);
            let (header_again, payload_again) =
                codec::decode_record(again.bytes()).expect("a re-encoded record decodes");
            assert_eq!(header_again, header, "a record header does not round-trip");
            assert_eq!(codec::decode_payload(payload_again), Ok(item));
        }
        let _ = codec::decode_payload::<Vec<String>>(payload);
    }
    if let Ok(holder) = codec::decode_claim(bytes) {
        assert_eq!(
            codec::encode_claim(holder),
            bytes,
            "a claim is not canonical"
        );
    }
    if let Ok(writes) = codec::decode_tagged::<Vec<OwnedWrite>>(INTENT, bytes) {
        round_trips(INTENT, &writes);
    }
    if let Ok(indexes) = codec::decode_tagged::<Vec<String>>(META, bytes) {
        round_trips(META, &indexes);
    }
    if let Ok(number) = codec::decode_tagged::<u64>(META, bytes) {
        round_trips(META, &number);
    }
    let _ = codec::decode_tagged::<Entry>(FEED, bytes);
    let _ = codec::decode_tagged::<u8>(META, bytes);
    let _ = codec::decode_tagged::<()>(META, bytes);
    let _ = codec::decode_tagged::<Session>(META, bytes);
}

fn round_trips<T>(tag: codec::Tag, value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = codec::encode_tagged(tag, value).expect("a decoded value encodes");
    assert_eq!(codec::decode_tagged::<T>(tag, &bytes).as_ref(), Ok(value));
}

/// The version in the header of record bytes that decoded.
fn version_at(record: &[u8]) -> Version {
    let mut raw = [0; 8];
    raw.copy_from_slice(&record[2..10]);
    Version::new(u64::from_be_bytes(raw))
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

/// Copies the template store into a fresh directory, writes `bytes` at `spot` with sled
/// itself, then uses the store through the public API.
fn plant_and_use((tree, key): Spot, bytes: &[u8], crashed: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    template().restore(dir.path());
    {
        let db = sled::open(dir.path()).expect("sled opens the template");
        db.open_tree(tree)
            .and_then(|t| t.insert(key, bytes))
            .expect("sled plants the bytes");
        if crashed {
            let open = codec::encode_tagged(META, &Session::Open).expect("encodes");
            db.open_tree("revkv/meta")
                .and_then(|t| t.insert("session", open))
                .expect("sled marks the session open");
        }
        db.flush().expect("sled flushes");
    }
    use_store(dir.path(), (tree, key), bytes);
}

/// Opens, reads, verifies and writes the store; errors are fine, panics and broken promises
/// are not.
fn use_store(dir: &Path, (tree, key): Spot, planted: &[u8]) {
    let Ok(store) = open(dir) else {
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
        let planted_here = tree == format!("c/{}", spec.name);
        for probe in ["k0", "k1", "k3"] {
            if let Ok(Some(record)) = collection.get(probe)
                && planted_here
                && key == probe.as_bytes()
            {
                assert_eq!(
                    record.version,
                    version_at(planted),
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

fn open(dir: &Path) -> crate::Result<Store> {
    Store::builder().path(dir).change_feed(RETENTION).open()
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
fn checked_verify(store: &Store) -> Option<crate::Report> {
    match store.verify() {
        Ok(report) => Some(report),
        Err(error @ (Error::Corrupt { .. } | Error::UnsupportedFormat { .. })) => {
            panic!("verify failed on bad data instead of reporting it: {error}")
        }
        Err(_) => None,
    }
}

/// A small store, built once per process and kept as file contents, so that each input only
/// copies it instead of building it.
struct Template {
    /// Paths relative to the store directory; `None` for a directory.
    entries: Vec<(PathBuf, Option<Vec<u8>>)>,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(Template::build)
}

impl Template {
    fn build() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        {
            let store = open(dir.path()).expect("the template store opens");
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
        }
        let mut entries = Vec::new();
        collect(dir.path(), dir.path(), &mut entries);
        Self { entries }
    }

    fn restore(&self, dir: &Path) {
        for (path, contents) in &self.entries {
            let path = dir.join(path);
            match contents {
                None => std::fs::create_dir_all(&path),
                Some(bytes) => std::fs::write(&path, bytes),
            }
            .expect("the template is copied");
        }
    }
}

/// Every directory and file under `dir`, parents before children.
fn collect(root: &Path, dir: &Path, entries: &mut Vec<(PathBuf, Option<Vec<u8>>)>) {
    for entry in std::fs::read_dir(dir).expect("the template directory reads") {
        let path = entry.expect("a directory entry").path();
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .to_path_buf();
        if path.is_dir() {
            entries.push((relative, None));
            collect(root, &path, entries);
        } else {
            let bytes = std::fs::read(&path).expect("a template file reads");
            entries.push((relative, Some(bytes)));
        }
    }
}
