//! Bounded, jittered backoff for optimistic retries.

use std::task::Poll;
use std::thread;
use std::time::Duration;

/// How often `update_with` and transactions try before they give up.
pub(crate) const MAX_ATTEMPTS: u32 = 100;

/// Counts attempts and spaces them out: a yield for the first retries, then a random sleep
/// whose ceiling doubles up to 1 ms, so contending writers spread out instead of colliding
/// again in lockstep.
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { attempt: 0 }
    }

    /// Attempts made after the first.
    pub(crate) fn retries(&self) -> u32 {
        self.attempt
    }

    /// Counts an attempt; the pause before the next one (zero: a yield), `None` once the
    /// attempts are used up.
    fn next_pause(&mut self) -> Option<Duration> {
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            return None;
        }
        if self.attempt <= 2 {
            return Some(Duration::ZERO);
        }
        let ceiling_us = 1_u64 << self.attempt.min(10);
        Some(Duration::from_micros(fastrand::u64(
            0..=ceiling_us.min(1000),
        )))
    }

    /// Waits before the next attempt, blocking the thread; `false` once the attempts are used
    /// up.
    pub(crate) fn wait(&mut self) -> bool {
        match self.next_pause() {
            None => return false,
            Some(Duration::ZERO) => thread::yield_now(),
            Some(pause) => thread::sleep(pause),
        }
        true
    }

    /// [`Self::wait`] for a task: it yields to the runtime, or sleeps on a timer that needs
    /// none.
    pub(crate) async fn wait_async(&mut self) -> bool {
        match self.next_pause() {
            None => return false,
            Some(Duration::ZERO) => yield_now().await,
            Some(pause) => futures_timer::Delay::new(pause).await,
        }
        true
    }
}

/// Lets the runtime poll other tasks once before this one goes on.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
