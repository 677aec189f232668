//! Striped locks over keys and unique values.
//!
//! Every write holds the locks of the keys and unique values it reads and changes from its
//! checks until its last single-key write has returned. A fixed table of mutexes is indexed by
//! a hash, so memory does not grow with the number of keys; a multi-lock is taken in stripe
//! order, so two writers can never wait on each other in a cycle.

use std::cell::Cell;
use std::hash::Hasher;

use rustc_hash::FxHasher;

use crossbeam::utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use crate::blocking::block_on;

const STRIPES: usize = 1024;

/// Names one lockable thing: a key of a collection or a value of a unique index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LockId(usize);

impl LockId {
    /// The stripe number, for tables of other sizes that follow the same hashing.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

pub(crate) struct LockTable {
    stripes: Box<[CachePadded<Mutex<()>>]>,
    /// Mixed into every hash, so that which keys share a stripe differs from store to store.
    seed: u64,
}

/// Locks held together; released on drop.
#[expect(dead_code, reason = "the guards are held for their Drop, never read")]
pub(crate) enum Held<'a> {
    /// The common case, kept free of allocation.
    One(MutexGuard<'a, ()>),
    Many(Vec<MutexGuard<'a, ()>>),
}

impl LockTable {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(Mutex::new(())))
                .collect(),
            seed: fastrand::u64(..),
        }
    }

    /// The lock for `bytes` within `space` (a collection's records or one unique index).
    pub(crate) fn id(&self, space: u64, bytes: &[u8]) -> LockId {
        // A fast hash is enough: a collision only makes two keys share a lock.
        let mut hasher = FxHasher::default();
        hasher.write_u64(self.seed ^ space);
        hasher.write(bytes);
        // The modulo keeps the value below STRIPES, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        LockId((hasher.finish() % STRIPES as u64) as usize)
    }

    pub(crate) fn lock(&self, id: LockId) -> Held<'_> {
        Held::One(self.stripes[id.0].lock())
    }

    /// Takes all of `ids` (duplicates allowed) in stripe order.
    pub(crate) fn lock_all(&self, mut ids: Vec<LockId>) -> Held<'_> {
        ids.sort_unstable();
        ids.dedup();
        Held::Many(ids.iter().map(|id| self.stripes[id.0].lock()).collect())
    }
}

/// Turns for read-modify-write cycles (`update_with`): one caller at a time per key runs its
/// read, its closure and its write, so callers on a hot key queue up instead of invalidating
/// each other's reads forever (with only optimistic retries, a writer on another core that
/// commits every few microseconds can starve a slower one indefinitely). Writes themselves
/// still take the key's write lock; the closure runs outside it.
///
/// A turn is an async lock, so that a task waits for its turn without blocking its thread; a
/// blocking caller waits for the same turns, so both APIs take turns with each other.
pub(crate) struct Turns {
    /// Numbers the turns as write locks are numbered; its own locks are not taken.
    ids: LockTable,
    turns: Box<[futures::lock::Mutex<()>]>,
}

thread_local! {
    /// Whether this thread holds a turn: a nested `update_with` (in a closure) then goes
    /// without, rather than wait on a stripe this thread may hold itself.
    static HOLDING_TURN: Cell<bool> = const { Cell::new(false) };
}

/// A turn; released on drop.
pub(crate) type Turn<'a> = futures::lock::MutexGuard<'a, ()>;

/// A blocking caller's turn, if it took one; released on drop.
pub(crate) struct BlockingTurn<'a> {
    _held: Option<(Turn<'a>, TurnFlag)>,
}

/// Marks this thread as holding a turn; dropping it (on unwinding too) restores the mark
/// as it was.
struct TurnFlag {
    before: bool,
}

impl TurnFlag {
    fn set() -> Self {
        Self {
            before: HOLDING_TURN.replace(true),
        }
    }
}

impl Drop for TurnFlag {
    fn drop(&mut self) {
        HOLDING_TURN.set(self.before);
    }
}

impl Turns {
    pub(crate) fn new() -> Self {
        Self {
            ids: LockTable::new(),
            turns: (0..STRIPES)
                .map(|_| futures::lock::Mutex::new(()))
                .collect(),
        }
    }

    /// The table whose ids [`Self::take`] expects.
    pub(crate) fn table(&self) -> &LockTable {
        &self.ids
    }

    /// The turn of `id`, once it is this task's.
    pub(crate) async fn take(&self, id: LockId) -> Turn<'_> {
        self.turns[id.0].lock().await
    }

    /// Waits for the turn of `id`, unless this thread already holds a turn.
    pub(crate) fn take_blocking(&self, id: LockId) -> BlockingTurn<'_> {
        if holding_turn() {
            return BlockingTurn { _held: None };
        }
        let turn = block_on(self.take(id));
        BlockingTurn {
            _held: Some((turn, TurnFlag::set())),
        }
    }
}

/// Whether this thread is running a closure in its turn (see [`Turns`]).
pub(crate) fn holding_turn() -> bool {
    HOLDING_TURN.get()
}

/// Runs `f` as the holder of a turn, so that an `update_with` inside it does not queue again.
pub(crate) fn with_turn_held<R>(f: impl FnOnce() -> R) -> R {
    let _flag = TurnFlag::set();
    f()
}

impl LockTable {
    /// Every stripe: no other write can run until the returned locks drop.
    pub(crate) fn lock_everything(&self) -> Held<'_> {
        Held::Many(self.stripes.iter().map(|stripe| stripe.lock()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_in_different_spaces_usually_differ() {
        let table = LockTable::new();
        let differing = (0..64_u64)
            .filter(|space| table.id(*space, b"k") != table.id(space + 1000, b"k"))
            .count();
        assert!(differing > 32, "only {differing} of 64 spaces spread out");
        assert_eq!(table.id(1, b"k"), table.id(1, b"k"));
    }

    #[test]
    fn lock_all_accepts_duplicates_and_any_order() {
        let table = LockTable::new();
        let a = table.id(1, b"a");
        let b = table.id(1, b"b");
        let held = table.lock_all(vec![b, a, b]);
        assert!(table.stripes[a.0].try_lock().is_none());
        drop(held);
        assert!(table.stripes[a.0].try_lock().is_some());
    }
}
