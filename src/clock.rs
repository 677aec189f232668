//! Where revkv gets the time: modification times, expiry, the hot-key window of the stats.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::codec;

/// A source of wall-clock time. The default is the system clock; tests can pass a
/// [`ManualClock`] to [`StoreBuilder::clock`](crate::StoreBuilder::clock) to make time-based
/// behaviour (expiry, statistics windows) deterministic.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let clock = revkv::ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
/// let store = revkv::Store::builder().clock(clock.clone()).open()?;
/// clock.advance(Duration::from_secs(60));
/// # Ok::<(), revkv::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock()
    }
}

/// The store's clock, read at the precision records keep.
#[derive(Clone)]
pub(crate) struct StoreClock(Arc<dyn Clock>);

impl StoreClock {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self(clock)
    }

    /// Now, truncated so that what a write returns equals what a later read returns.
    pub(crate) fn now(&self) -> SystemTime {
        codec::stored_precision(self.0.now())
    }
}
