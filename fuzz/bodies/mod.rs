//! The bodies of the cargo-fuzz targets: the library of the `revkv-fuzz` crate, which its
//! targets call, and a module of the corpus replay test (`tests/fuzz_corpus_replay.rs`), which
//! includes this directory by path. They use revkv's public API only.
//!
//! Each target is one plain function of the fuzzer's bytes, so that the fuzz target
//! (`fuzz/fuzz_targets/<name>.rs`) and the replay test run exactly the same code, the replay
//! test on the stable toolchain. A function panics only when revkv broke one of its promises;
//! any other input, however odd, returns normally. Stores live in a [`revkv::Memory`], so an
//! input costs microseconds, not a directory and its `fsync`s.
//!
//! - [`ops()`]: a sequence of operations on two collections, checked step by step against an
//!   in-memory model.
//! - [`decode()`]: arbitrary bytes where revkv expects its own stored bytes.
//! - [`http()`]: arbitrary header values and bodies through the HTTP adapter's precondition
//!   parsing and problem rendering.
//!
//! Both collections share the value type `Item` and the declarations in `SPECS`, so the
//! targets and the model agree on what is stored.
//!
//! Adding a target `name`: a module here with `pub fn name(data: &[u8])`, re-exported below;
//! `fuzz/fuzz_targets/name.rs` calling it and a `[[bin]]` in `fuzz/Cargo.toml`; seeds in
//! `fuzz/corpus/name/`, a dictionary `fuzz/dicts/name.dict`, and one `replay` test in
//! `tests/fuzz_corpus_replay.rs`.

mod decode;
mod http;
mod model;
mod ops;

use revkv::{Collection, Result, Store};
use serde::{Deserialize, Serialize};

pub use self::decode::decode;
pub use self::http::http;
pub use self::ops::ops;

/// The value stored in every collection the targets use.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Item {
    /// First unique value (index `tag` in both collections).
    pub(crate) tag: String,
    /// Second unique value (index `alias`, in `users` only).
    pub(crate) alias: String,
    /// The record's state in its collection's state machine.
    pub(crate) state: String,
    /// Free text that no rule looks at.
    pub(crate) body: String,
}

/// Derives a unique-index value from an item.
pub(crate) type IndexValue = fn(&Item) -> &str;

/// How one collection is declared: the store's declaration and the model's rules in one place.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Collection name.
    pub(crate) name: &'static str,
    /// Unique indexes in declaration order (the order their conflicts are checked in).
    pub(crate) uniques: &'static [(&'static str, IndexValue)],
    /// Allowed `(from, to)` state changes.
    pub(crate) transitions: &'static [(&'static str, &'static str)],
    /// States a record may be created in; `None`: any.
    pub(crate) initial: Option<&'static [&'static str]>,
    /// States the fuzzer picks from: the machine's, plus one it does not know.
    pub(crate) states: &'static [&'static str],
}

fn tag(item: &Item) -> &str {
    &item.tag
}

fn alias(item: &Item) -> &str {
    &item.alias
}

/// The two collections: `users` with two unique indexes and restricted initial states,
/// `orders` with one index and records creatable in any state.
pub(crate) const SPECS: [Spec; 2] = [
    Spec {
        name: "users",
        uniques: &[("tag", tag), ("alias", alias)],
        transitions: &[
            ("new", "active"),
            ("active", "closed"),
            ("new", "closed"),
            ("closed", "active"),
        ],
        initial: Some(&["new"]),
        states: &["new", "active", "closed", "banned"],
    },
    Spec {
        name: "orders",
        uniques: &[("tag", tag)],
        transitions: &[
            ("pending", "paid"),
            ("paid", "shipped"),
            ("pending", "cancelled"),
        ],
        initial: None,
        states: &["pending", "paid", "shipped", "cancelled", "lost"],
    },
];

impl Spec {
    /// Opens this collection in `store` with its declared indexes and state machine.
    ///
    /// # Errors
    /// As [`revkv::CollectionBuilder::open`].
    pub(crate) fn open(&self, store: &Store) -> Result<Collection<Item>> {
        let mut builder = store.collection::<Item>(self.name);
        for &(index, value_of) in self.uniques {
            builder = builder.unique(index, move |item: &Item| value_of(item).to_owned());
        }
        builder = builder.states(|item: &Item| item.state.clone(), self.transitions.to_vec());
        if let Some(initial) = self.initial {
            builder = builder.initial_states(initial.iter().copied());
        }
        builder.open()
    }
}
