//! The `ops` target: operation sequences over the two collections of [`SPECS`], checked step by
//! step against [`Model`].

use std::collections::BTreeMap;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use super::model::{Expect, Model, Refusal};
use super::{Item, SPECS};
use revkv::{
    Collection, Conflict, Error, Memory, Result, Retention, Store, Transaction, Version, Versioned,
};

/// Longest operation sequence one input runs, so that every run stays fast.
const MAX_OPS: usize = 64;
/// Most reopens one input makes: each runs the recovery an open runs, far more work than an
/// operation.
const MAX_REOPENS: usize = 3;
/// Most writes and reads one transaction makes.
const MAX_STEPS: usize = 6;

const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const TAGS: [&str; 4] = ["t0", "t1", "t2", ""];
const ALIASES: [&str; 3] = ["ann", "bob", "cy"];
const BODIES: [&str; 4] = ["", "note", "ünïcödé ✓", "two\nlines"];
const ABORT_CODE: &str = "fuzz_abort";

fn pick<T: Copy>(pool: &[T], choice: u8) -> T {
    pool[usize::from(choice) % pool.len()]
}

/// Which collection of [`SPECS`] an operation is on.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct On(u8);

impl On {
    fn get(self) -> usize {
        usize::from(self.0) % SPECS.len()
    }
}

/// A record key, from a small pool so that operations collide.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Key(u8);

impl Key {
    fn get(self) -> &'static str {
        pick(&KEYS, self.0)
    }
}

/// An item built from the pools; its state comes from the collection's own states.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Fresh {
    tag: u8,
    alias: u8,
    state: u8,
    body: u8,
}

impl Fresh {
    fn item(self, on: usize) -> Item {
        Item {
            tag: pick(&TAGS, self.tag).to_owned(),
            alias: pick(&ALIASES, self.alias).to_owned(),
            state: pick(SPECS[on].states, self.state).to_owned(),
            body: pick(&BODIES, self.body).to_owned(),
        }
    }
}

/// One field of the current value changed: a rename, a state transition, an edit.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Change {
    Tag(u8),
    Alias(u8),
    State(u8),
    Body(u8),
}

impl Change {
    fn apply(self, on: usize, item: &Item) -> Item {
        let mut item = item.clone();
        let (field, value) = match self {
            Self::Tag(n) => (&mut item.tag, pick(&TAGS, n)),
            Self::Alias(n) => (&mut item.alias, pick(&ALIASES, n)),
            Self::State(n) => (&mut item.state, pick(SPECS[on].states, n)),
            Self::Body(n) => (&mut item.body, pick(&BODIES, n)),
        };
        value.clone_into(field);
        item
    }
}

/// The value an update writes.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Value {
    Fresh(Fresh),
    /// The current value (as the writer sees it) with one change.
    Changed(Change),
}

/// The version a write presents.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Expected {
    /// The key's current version: the write should pass its version check.
    Current,
    /// A version this key had before (stale), or the current one.
    Earlier(u8),
    /// A version issued to any key.
    Issued(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum WriteOp {
    Insert(Fresh),
    Update(Expected, Value),
    Delete(Expected),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Write(On, Key, WriteOp),
    UpdateWith(On, Key, Change),
    Get(On, Key),
    /// Look up a pool value in index `index % indexes`.
    FindUnique(On, u8, u8),
    /// Steps in one transaction (at most [`MAX_STEPS`]); `true` aborts it with a rule conflict
    /// after the steps.
    Transaction(Vec<Step>, bool),
    /// Drop every handle and open the store's storage again (at most [`MAX_REOPENS`] times
    /// per input; later ones do nothing).
    Reopen,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Get(On, Key),
    Write(On, Key, WriteOp),
}

/// Runs the operations `data` decodes to (at most 64, at most 3 of them reopens) on a fresh
/// store, with a change feed if the first byte is odd (commits then take another path: the
/// feed entry is their redo record), and checks every result, every conflict (its kind,
/// details and the record it carries), the order of versions, the stored records and
/// `Store::verify` against an in-memory model after each operation.
///
/// # Panics
/// When revkv and the model disagree: that is the bug the fuzzer looks for.
pub fn ops(data: &[u8]) {
    let memory = Memory::new();
    let mut input = Unstructured::new(data);
    let feed = bool::arbitrary(&mut input).unwrap_or_default();
    let mut handles = Handles::open(&memory, feed);
    let mut model = Model::default();
    let mut versions = Versions::default();
    let mut reopens = 0;
    for step in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut input) else {
            break;
        };
        let context = format!("op {step}: {op:?}");
        let mut run = Run {
            model: &mut model,
            versions: &mut versions,
            context: &context,
        };
        match &op {
            Op::Reopen if reopens < MAX_REOPENS => {
                reopens += 1;
                drop(handles);
                handles = Handles::open(&memory, feed);
            }
            Op::Reopen => {}
            Op::Transaction(steps, abort) => {
                run.transaction(&handles, &steps[..steps.len().min(MAX_STEPS)], *abort);
            }
            op => run.single(&handles, op),
        }
        handles.check_against(&model, &context);
        if input.is_empty() {
            break;
        }
    }
}

/// The open store and its collections, in [`SPECS`] order.
struct Handles {
    store: Store,
    collections: [Collection<Item>; 2],
}

impl Handles {
    fn open(memory: &Memory, feed: bool) -> Self {
        let mut builder = Store::builder().memory(memory);
        if feed {
            builder = builder.change_feed(Retention::new(1_000, Duration::from_secs(3_600)));
        }
        let store = builder.open().expect("the fuzzed store opens");
        let collections = SPECS.map(|spec| spec.open(&store).expect("the collection opens"));
        Self { store, collections }
    }

    /// Every stored record equals the model's, and every index matches the records exactly.
    fn check_against(&self, model: &Model, context: &str) {
        for (on, collection) in self.collections.iter().enumerate() {
            let stored: BTreeMap<String, (Version, Item)> = collection
                .iter()
                .map(|entry| entry.map(|(key, record)| (key, (record.version, record.value))))
                .collect::<Result<_>>()
                .expect("records read back");
            assert_eq!(
                stored, model.records[on],
                "{context}: {} differs from the model",
                SPECS[on].name
            );
        }
        let report = self.store.verify().expect("verify runs");
        assert!(report.is_clean(), "{context}: {report}");
        assert_eq!(
            (report.records, report.index_entries),
            (model.record_count(), model.index_entries()),
            "{context}: verify counted other records or index entries than the model holds"
        );
    }
}

/// Every version revkv returned, to check that versions only grow and to present stale ones.
#[derive(Default)]
struct Versions {
    issued: Vec<Version>,
    by_key: BTreeMap<(usize, &'static str), Vec<Version>>,
}

impl Versions {
    /// A write returned `version`: it must be above every version returned before, by any
    /// call, in this session or an earlier one.
    fn issued(&mut self, on: usize, key: &'static str, version: Version, context: &str) {
        if let Some(&highest) = self.issued.last() {
            assert!(
                version > highest,
                "{context}: version {version} is not above {highest}, returned before"
            );
        }
        self.issued.push(version);
        self.by_key.entry((on, key)).or_default().push(version);
    }

    fn expected(&self, view: &Model, on: usize, key: &'static str, choice: Expected) -> Version {
        let choose = |versions: &[Version], n: u8| {
            versions
                .get(usize::from(n) % versions.len().max(1))
                .copied()
                .unwrap_or(Version::new(1))
        };
        match choice {
            Expected::Current => view.get(on, key).map_or(Version::new(1), |(v, _)| *v),
            Expected::Earlier(n) => {
                choose(self.by_key.get(&(on, key)).map_or(&[], Vec::as_slice), n)
            }
            Expected::Issued(n) => choose(&self.issued, n),
            Expected::Raw(raw) => Version::new(raw),
        }
    }
}

/// Where a write goes: straight to a collection, or into a transaction.
trait Writer {
    fn insert(&mut self, collection: &Collection<Item>, key: &str, item: &Item) -> Result<Version>;
    fn update(
        &mut self,
        collection: &Collection<Item>,
        key: &str,
        expected: Version,
        item: &Item,
    ) -> Result<Version>;
    fn delete(&mut self, collection: &Collection<Item>, key: &str, expected: Version)
    -> Result<()>;
}

struct Direct;

impl Writer for Direct {
    fn insert(&mut self, collection: &Collection<Item>, key: &str, item: &Item) -> Result<Version> {
        collection.insert(key, item)
    }
    fn update(
        &mut self,
        collection: &Collection<Item>,
        key: &str,
        expected: Version,
        item: &Item,
    ) -> Result<Version> {
        collection.update(key, expected, item)
    }
    fn delete(
        &mut self,
        collection: &Collection<Item>,
        key: &str,
        expected: Version,
    ) -> Result<()> {
        collection.delete(key, expected)
    }
}

impl Writer for Transaction<'_> {
    fn insert(&mut self, collection: &Collection<Item>, key: &str, item: &Item) -> Result<Version> {
        Transaction::insert(self, collection, key, item)
    }
    fn update(
        &mut self,
        collection: &Collection<Item>,
        key: &str,
        expected: Version,
        item: &Item,
    ) -> Result<Version> {
        Transaction::update(self, collection, key, expected, item)
    }
    fn delete(
        &mut self,
        collection: &Collection<Item>,
        key: &str,
        expected: Version,
    ) -> Result<()> {
        Transaction::delete(self, collection, key, expected)
    }
}

/// One operation being checked: the model it runs against and what it is, for messages.
struct Run<'a> {
    model: &'a mut Model,
    versions: &'a mut Versions,
    context: &'a str,
}

impl Run<'_> {
    fn single(&mut self, handles: &Handles, op: &Op) {
        match *op {
            Op::Write(on, key, write) => {
                let (on, key) = (on.get(), key.get());
                // Refusals were checked inside; nothing else to do with them.
                let _ = self.write(&mut Direct, &handles.collections[on], on, key, write);
            }
            Op::UpdateWith(on, key, change) => {
                self.update_with(handles, on.get(), key.get(), change);
            }
            Op::Get(on, key) => {
                let (on, key) = (on.get(), key.get());
                let got = handles.collections[on].get(key).expect("get runs");
                self.check_read(on, key, got.as_ref());
            }
            Op::FindUnique(on, index, value) => {
                let on = on.get();
                let index = usize::from(index) % SPECS[on].uniques.len();
                let (name, _) = SPECS[on].uniques[index];
                let value = if name == "alias" {
                    pick(&ALIASES, value)
                } else {
                    pick(&TAGS, value)
                };
                let found = handles.collections[on]
                    .find_unique(name, value)
                    .expect("find_unique runs");
                let holder = self.model.holder(on, index, value);
                let modelled = holder.and_then(|key| self.model.get(on, key)).cloned();
                assert_eq!(
                    found.map(|r| (r.version, r.value)),
                    modelled,
                    "{}: find_unique({name}, {value:?}) disagrees with the model",
                    self.context
                );
            }
            Op::Transaction(..) | Op::Reopen => unreachable!("handled by the caller"),
        }
    }

    fn check_read(&self, on: usize, key: &str, got: Option<&Versioned<Item>>) {
        assert_eq!(
            got.map(|record| (record.version, &record.value)),
            self.model
                .get(on, key)
                .map(|(version, item)| (*version, item)),
            "{}: {}/{key} reads back differently from the model",
            self.context,
            SPECS[on].name
        );
    }

    /// Resolves `write` against the model, runs it through `writer` and checks the outcome;
    /// a refusal is checked and returned, for a transaction body to pass on.
    fn write(
        &mut self,
        writer: &mut dyn Writer,
        collection: &Collection<Item>,
        on: usize,
        key: &'static str,
        write: WriteOp,
    ) -> Result<()> {
        let (expect, new) = match write {
            WriteOp::Insert(fresh) => (Expect::Absent, Some(fresh.item(on))),
            WriteOp::Update(expected, value) => {
                let expected = self.versions.expected(self.model, on, key, expected);
                let item = match value {
                    Value::Fresh(fresh) => fresh.item(on),
                    Value::Changed(change) => {
                        let current = self.model.get(on, key).map(|(_, item)| item.clone());
                        change.apply(on, &current.unwrap_or_default())
                    }
                };
                (Expect::At(expected), Some(item))
            }
            WriteOp::Delete(expected) => {
                let expected = self.versions.expected(self.model, on, key, expected);
                (Expect::At(expected), None)
            }
        };
        let predicted = self.model.check(on, key, expect, new.as_ref());
        let outcome = match (expect, &new) {
            (Expect::Absent, Some(item)) => writer.insert(collection, key, item).map(Some),
            (Expect::At(expected), Some(item)) => {
                writer.update(collection, key, expected, item).map(Some)
            }
            (Expect::At(expected), None) => writer.delete(collection, key, expected).map(|()| None),
            (Expect::Absent, None) => unreachable!("there is no delete of an absent key"),
        };
        let version = self.settle(on, key, predicted, outcome)?;
        if let Some(version) = version {
            self.versions.issued(on, key, version, self.context);
        }
        self.model.apply(on, key, version.zip(new));
        Ok(())
    }

    fn update_with(&mut self, handles: &Handles, on: usize, key: &'static str, change: Change) {
        let (predicted, new) = match self.model.get(on, key) {
            None => (Err(Refusal::NotFound), None),
            Some((version, item)) => {
                let new = change.apply(on, item);
                (
                    self.model.check(on, key, Expect::At(*version), Some(&new)),
                    Some(new),
                )
            }
        };
        let collection = &handles.collections[on];
        let outcome = collection.update_with(key, |item| change.apply(on, item));
        let Ok(written) = self.settle(on, key, predicted, outcome) else {
            return;
        };
        assert_eq!(Some(&written.value), new.as_ref(), "{}", self.context);
        self.versions.issued(on, key, written.version, self.context);
        // What update_with returns is exactly what a read returns, modification time included.
        let read = collection.get(key).expect("get runs");
        assert_eq!(read.as_ref(), Some(&written), "{}", self.context);
        self.model
            .apply(on, key, Some((written.version, written.value)));
    }

    /// Runs `steps` in one transaction, checking each against the model as the transaction
    /// sees it (its own writes included); commits the model only if revkv committed.
    fn transaction(&mut self, handles: &Handles, steps: &[Step], abort: bool) {
        let committed = self.model.clone();
        let mut failure = None;
        let result = handles.store.transaction(|tx| {
            // The body may run again on a retry; each run starts from the committed model.
            *self.model = committed.clone();
            failure = None;
            for step in steps {
                let outcome = match *step {
                    Step::Get(on, key) => {
                        let (on, key) = (on.get(), key.get());
                        let got = tx.get(&handles.collections[on], key).expect("get runs");
                        self.check_read(on, key, got.as_ref());
                        Ok(())
                    }
                    Step::Write(on, key, write) => {
                        let (on, key) = (on.get(), key.get());
                        self.write(tx, &handles.collections[on], on, key, write)
                    }
                };
                if let Err(error) = outcome {
                    failure = Refusal::of(&error);
                    return Err(error);
                }
            }
            if abort {
                failure = Some(Refusal::Rule {
                    code: ABORT_CODE.into(),
                });
                return Err(
                    Conflict::rule(ABORT_CODE, "the fuzzer aborts this transaction").into(),
                );
            }
            Ok(())
        });
        match result {
            Ok(()) => assert_eq!(failure, None, "{}", self.context),
            Err(error) => {
                assert!(
                    failure.is_some() && Refusal::of(&error) == failure,
                    "{}: the transaction did not return its body's refusal {failure:?}: {error:?}",
                    self.context
                );
                *self.model = committed;
            }
        }
    }

    /// Checks a call's outcome against the model's prediction; passes a checked refusal on.
    fn settle<T>(
        &self,
        on: usize,
        key: &str,
        predicted: Result<(), Refusal>,
        outcome: Result<T>,
    ) -> Result<T> {
        let context = self.context;
        match (predicted, outcome) {
            (Ok(()), Ok(value)) => Ok(value),
            (Ok(()), Err(error)) => {
                panic!("{context}: the model allows it but revkv says {error:?}")
            }
            (Err(refusal), Ok(_)) => {
                panic!("{context}: revkv allowed it, the model says {refusal:?}")
            }
            (Err(refusal), Err(error)) => {
                self.check_refusal(on, key, &refusal, &error);
                Err(error)
            }
        }
    }

    /// The refusal is the predicted one, names the record, and carries it as the model has it.
    fn check_refusal(&self, on: usize, key: &str, predicted: &Refusal, error: &Error) {
        let context = self.context;
        assert_eq!(
            Refusal::of(error).as_ref(),
            Some(predicted),
            "{context}: {error:?}"
        );
        let Error::Conflict(conflict) = error else {
            return;
        };
        assert_eq!(
            (conflict.collection(), conflict.key()),
            (Some(SPECS[on].name), Some(key)),
            "{context}: the conflict names another record"
        );
        let carried = conflict
            .current_record::<Item>()
            .expect("the record a conflict carries decodes");
        let modelled = match predicted {
            Refusal::Version { .. } | Refusal::Exists { .. } | Refusal::Transition { .. } => {
                self.model.get(on, key).cloned()
            }
            _ => None,
        };
        assert_eq!(
            carried.map(|r| (r.version, r.value)),
            modelled,
            "{context}: the conflict carries another record than the current one"
        );
    }
}
