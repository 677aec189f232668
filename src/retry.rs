//! Bounded, jittered backoff for optimistic retries.

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

    /// Waits before the next attempt; `false` once the attempts are used up.
    pub(crate) fn wait(&mut self) -> bool {
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            return false;
        }
        if self.attempt <= 2 {
            thread::yield_now();
        } else {
            let ceiling_us = 1_u64 << self.attempt.min(10);
            thread::sleep(Duration::from_micros(fastrand::u64(
                0..=ceiling_us.min(1000),
            )));
        }
        true
    }
}
