//! Waiting by yielding the core, for waits that usually end sooner than putting the waiter to
//! sleep and waking it would take: another caller's write of a hot key, a sync shared by a
//! group of writers. Yielding rather than spinning lets any other runnable thread have the
//! core meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, MutexGuard};

/// Waits, with `guard` released, until `counter` moves on from the value it has now. The
/// caller yields its core for up to `patience`, then sleeps on `moved`. Whoever bumps
/// `counter` must do so while holding `guard`'s mutex and then notify `moved`, so that a
/// sleeper cannot miss it.
pub(crate) fn wait_for_change<T>(
    guard: &mut MutexGuard<'_, T>,
    moved: &Condvar,
    counter: &AtomicU64,
    patience: Duration,
) {
    let seen = counter.load(Ordering::Acquire);
    let deadline = Instant::now() + patience;
    let changed = MutexGuard::unlocked(guard, || {
        while counter.load(Ordering::Acquire) == seen {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    });
    if !changed && counter.load(Ordering::Acquire) == seen {
        moved.wait(guard);
    }
}
