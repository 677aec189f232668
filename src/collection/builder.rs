//! Declaring a collection: its unique and non-unique indexes and its state machine.

use std::marker::PhantomData;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::history::History;
use super::recent::Recent;
use super::schema::{Derive, ExpiryHandler, Schema, States, UniqueIndex, ValueIndex};
use super::{Collection, Registered, index};
use crate::engine::Engine;
use crate::guard::StateMachine;
use crate::meta::Meta;
use crate::name::validate_name;
use crate::{Error, Result, Store, Transaction};

/// Declares a collection before opening it; from [`Store::collection`].
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct Order { status: String }
///
/// let store = revkv::Store::temporary()?;
/// let orders = store
///     .collection::<Order>("orders")
///     .states(
///         |o: &Order| o.status.clone(),
///         [("pending", "paid"), ("paid", "shipped"), ("pending", "cancelled")],
///     )
///     .initial_states(["pending"])
///     .open()?;
/// # Ok::<(), revkv::Error>(())
/// ```
#[must_use]
pub struct CollectionBuilder<T> {
    store: Store,
    name: String,
    uniques: Vec<(String, Derive<T>)>,
    lists: Vec<(String, Derive<T>)>,
    states: Option<(Derive<T>, StateMachine)>,
    initial: Option<Vec<String>>,
    history: usize,
    on_expiry: Option<ExpiryHandler<T>>,
    _values: PhantomData<fn() -> T>,
}

impl<T> CollectionBuilder<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn new(store: Store, name: &str) -> Self {
        Self {
            store,
            name: name.to_owned(),
            uniques: Vec::new(),
            lists: Vec::new(),
            states: None,
            initial: None,
            history: 0,
            on_expiry: None,
            _values: PhantomData,
        }
    }

    /// Declares a unique index `name` over the value `value_of` derives from each record: no
    /// two records of the collection may derive the same value. Several indexes are allowed.
    /// `value_of` must be deterministic (normalise case and the like inside it).
    pub fn unique<F>(mut self, name: &str, value_of: F) -> Self
    where
        F: Fn(&T) -> String + Send + Sync + 'static,
    {
        self.uniques.push((name.to_owned(), Box::new(value_of)));
        self
    }

    /// Declares a non-unique index `name` over the value `value_of` derives from each record,
    /// for [`Collection::query`](crate::Collection::query) by that value
    /// ([`Query::index`](crate::Query::index)) or a range of values
    /// ([`Query::index_range`](crate::Query::index_range)). Any number of records may share a
    /// value; each write moves its record's entry in the same atomic commit. Several indexes
    /// are allowed; names are shared with unique indexes. `value_of` must be deterministic.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// #[derive(Serialize, Deserialize)]
    /// struct Order { customer: String }
    ///
    /// let store = revkv::Store::temporary()?;
    /// let orders = store
    ///     .collection::<Order>("orders")
    ///     .index("customer", |o: &Order| o.customer.clone())
    ///     .open()?;
    /// orders.insert("o-1", Order { customer: "ann".into() })?;
    /// orders.insert("o-2", Order { customer: "bob".into() })?;
    /// let page = orders.query(&revkv::Query::index("customer", "ann"))?;
    /// assert_eq!(page.records.len(), 1);
    /// # Ok::<(), revkv::Error>(())
    /// ```
    pub fn index<F>(mut self, name: &str, value_of: F) -> Self
    where
        F: Fn(&T) -> String + Send + Sync + 'static,
    {
        self.lists.push((name.to_owned(), Box::new(value_of)));
        self
    }

    /// Declares the collection's state machine: `state_of` reads a record's state, and an
    /// update may change it only along one of the `(from, to)` pairs in `transitions`
    /// ([`Conflict::Transition`](crate::Conflict::Transition) otherwise). An update that keeps
    /// the state it finds always passes, whether or not `(s, s)` is listed: it changes other
    /// fields, not the state (a route that treats "move to the state it is in" as an error
    /// checks that itself). Deletes are allowed in every state.
    pub fn states<F, I, S>(mut self, state_of: F, transitions: I) -> Self
    where
        F: Fn(&T) -> String + Send + Sync + 'static,
        I: IntoIterator<Item = (S, S)>,
        S: Into<String>,
    {
        self.states = Some((Box::new(state_of), StateMachine::new(transitions)));
        self
    }

    /// Restricts the states records may be created in (by default, any). Needs
    /// [`Self::states`].
    pub fn initial_states<I, S>(mut self, states: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.initial = Some(states.into_iter().map(Into::into).collect());
        self
    }

    /// Keeps the last `versions` earlier versions of each record (default none), for
    /// [`Collection::get_at`] and the three-way merge of [`Collection::update_merge`]. Each
    /// update then also writes the version it replaces.
    pub fn history(mut self, versions: usize) -> Self {
        self.history = versions;
        self
    }

    /// Runs `handler` in the transaction that removes an expired record (see
    /// [`Collection::insert_expiring`]), with its key and last value, so that what the record
    /// held is released in the same atomic step: a lapsed reservation returns its stock.
    /// An error from the handler aborts that sweep; the record stays until a later one.
    pub fn on_expiry<F>(mut self, handler: F) -> Self
    where
        F: Fn(&mut Transaction<'_>, &str, &T) -> Result<()> + Send + Sync + 'static,
    {
        self.on_expiry = Some(Box::new(handler));
        self
    }

    /// Opens the collection.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad collection or index name, [`Error::Schema`] for a
    /// declaration that does not fit (such as initial states without a state machine),
    /// storage errors.
    pub fn open(self) -> Result<Collection<T>> {
        validate_name(&self.name)?;
        let engine = self.store.shared.engine.as_ref();
        let mut names: Vec<&str> = Vec::new();
        for index in self.uniques.iter().chain(&self.lists).map(|(name, _)| name) {
            validate_name(index)?;
            if names.contains(&index.as_str()) {
                return Err(Error::Schema {
                    collection: self.name,
                    detail: format!("index {index} is declared twice"),
                });
            }
            names.push(index);
        }
        let mut indexes = Vec::with_capacity(self.uniques.len());
        for (index, value_of) in self.uniques {
            indexes.push(UniqueIndex {
                keyspace: engine.keyspace(format!("u/{}/{index}", self.name))?,
                name: index,
                value_of,
            });
        }
        let mut value_indexes = Vec::with_capacity(self.lists.len());
        for (index, value_of) in self.lists {
            value_indexes.push(ValueIndex {
                keyspace: engine.keyspace(format!("i/{}/{index}", self.name))?,
                name: index,
                value_of,
            });
        }
        let states = match (self.states, self.initial) {
            (Some((state_of, mut machine)), initial) => {
                if let Some(initial) = initial {
                    machine.restrict_initial(initial);
                }
                Some(States { machine, state_of })
            }
            (None, Some(_)) => {
                return Err(Error::Schema {
                    collection: self.name,
                    detail: "initial states are declared without a state machine".into(),
                });
            }
            (None, None) => None,
        };
        let history = match self.history {
            0 => None,
            keep => Some(History {
                keyspace: engine.keyspace(format!("h/{}", self.name))?,
                keep,
            }),
        };
        let schema = Schema {
            records: engine.keyspace(format!("c/{}", self.name))?,
            expiry: engine.keyspace(format!("x/{}", self.name))?,
            on_expiry: self.on_expiry,
            recent: engine
                .reads_are_round_trips()
                .then(|| Arc::new(Recent::default())),
            name: self.name,
            indexes,
            value_indexes,
            states,
            history,
        };
        let shared = &self.store.shared;
        let mut registry = shared.registry.lock();
        if let Some(open) = registry.get(&schema.name).and_then(Weak::upgrade) {
            // Already open in this store: share that handle, if it was declared the same way.
            if open.declaration() != schema.declaration() {
                return Err(Error::Schema {
                    collection: schema.name,
                    detail: "it is already open with other indexes or states".into(),
                });
            }
            let same = open
                .into_any()
                .downcast::<Schema<T>>()
                .map_err(|_| Error::Schema {
                    collection: schema.name.clone(),
                    detail: "it is already open with another value type".into(),
                })?;
            return Ok(Collection::new(same, self.store.clone()));
        }
        reconcile(&schema, engine, &shared.meta, shared.clock.now())?;
        let schema = Arc::new(schema);
        let registered: Arc<dyn Registered> = Arc::clone(&schema) as Arc<dyn Registered>;
        registry.insert(schema.name.clone(), Arc::downgrade(&registered));
        drop(registry);
        Ok(Collection::new(schema, self.store))
    }
}

/// Brings the stored indexes in line with the declaration on the first open of a session:
/// builds indexes declared for the first time, empties indexes no longer declared, and
/// sweeps what a crash of the previous session left behind. Unique and non-unique indexes are
/// listed apart (`collection/` and `lists/`), so that an index that changes kind is rebuilt.
fn reconcile<T>(schema: &Schema<T>, engine: &dyn Engine, meta: &Meta, now: SystemTime) -> Result<()>
where
    T: Serialize + DeserializeOwned,
{
    let unique_key = format!("collection/{}", schema.name);
    let lists_key = format!("lists/{}", schema.name);
    let sweep_key = format!("sweep/{}", schema.name);
    let unique_before: Vec<String> = meta.get(&unique_key)?.unwrap_or_default();
    let lists_before: Vec<String> = meta.get(&lists_key)?.unwrap_or_default();
    if meta.get::<()>(&sweep_key)?.is_some() {
        schema.sweep_indexes(engine)?;
    }
    let mut built = false;
    for (i, index) in schema.indexes.iter().enumerate() {
        if !unique_before.contains(&index.name) {
            schema.build_index(engine, i)?;
            built = true;
        }
    }
    for (i, index) in schema.value_indexes.iter().enumerate() {
        if !lists_before.contains(&index.name) {
            schema.build_value_index(engine, i)?;
            built = true;
        }
    }
    if built {
        // Recorded as built only once its entries are as durable as the records.
        engine.make_direct_writes_durable()?;
    }
    let unique: Vec<String> = schema.indexes.iter().map(|i| i.name.clone()).collect();
    let lists: Vec<String> = schema
        .value_indexes
        .iter()
        .map(|i| i.name.clone())
        .collect();
    meta.put(&unique_key, &unique)?;
    meta.put(&lists_key, &lists)?;
    let dropped = (unique_before.iter())
        .filter(|name| !unique.contains(name))
        .map(|name| format!("u/{}/{name}", schema.name));
    let dropped = dropped.chain(
        (lists_before.iter())
            .filter(|name| !lists.contains(name))
            .map(|name| format!("i/{}/{name}", schema.name)),
    );
    for keyspace in dropped {
        // Emptied, so that declaring it again later rebuilds it from the records.
        index::clear(engine, &engine.keyspace(keyspace)?, now)?;
    }
    meta.remove(&crate::meta::pending_key(&schema.name))?;
    meta.remove(&sweep_key)
}
