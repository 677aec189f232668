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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use parking_lot::{Condvar, Mutex};

    use super::wait_for_change;

    /// A bump may land while the waiter yields, between its last look and its sleep, or while
    /// it sleeps; in each case the waiter must return, having seen the new count. With no or
    /// almost no patience, a thousand rounds land bumps in all three places.
    #[test]
    fn a_waiter_returns_after_a_bump_wherever_the_bump_lands() {
        let (lock, moved, counter) = (Mutex::new(()), Condvar::new(), AtomicU64::new(0));
        for round in 0..1_000_u64 {
            let patience = Duration::from_micros(round % 2);
            std::thread::scope(|s| {
                let mut guard = lock.lock();
                s.spawn(|| {
                    let _held = lock.lock();
                    counter.fetch_add(1, Ordering::Release);
                    moved.notify_all();
                });
                wait_for_change(&mut guard, &moved, &counter, patience);
                assert_eq!(counter.load(Ordering::Acquire), round + 1);
            });
        }
    }
}
