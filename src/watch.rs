//! Following the change feed as it grows.

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::{Either, select};
use futures_timer::Delay;

use crate::blocking::block_on;
use crate::{Change, Result, Store};

/// Follows the change feed from a position, from [`Store::watch`]: each call returns the next
/// committed change, waiting for one if there is none yet.
#[derive(Debug)]
pub struct Watch {
    store: Store,
    position: u64,
    ready: VecDeque<Change>,
}

impl Watch {
    pub(crate) fn new(store: Store, since: u64) -> Self {
        Self {
            store,
            position: since,
            ready: VecDeque::new(),
        }
    }

    /// The position of the last change returned (or the starting position).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next change, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Store::changes_since`].
    pub fn next_change(&mut self) -> Result<Change> {
        loop {
            if let Some(change) = self.next_timeout(Duration::from_secs(3600))? {
                return Ok(change);
            }
        }
    }

    /// The next change, or `None` if none was committed within `timeout`.
    ///
    /// # Errors
    /// As [`Store::changes_since`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Change>> {
        if self.ready.is_empty() {
            let changed = self.store.feed()?.changed_past(self.position);
            match block_on(select(changed, Delay::new(timeout))) {
                Either::Left((changed, _)) => changed?,
                Either::Right(_) => return Ok(None),
            }
            self.ready = self
                .store
                .changes_since(self.position)?
                .collect::<Result<_>>()?;
        }
        Ok(self
            .ready
            .pop_front()
            .inspect(|change| self.position = change.seq))
    }
}
