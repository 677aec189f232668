//! Flushes for async callers: a flush is an `fdatasync`, which must not block a runtime's
//! thread, so a thread of the store's runs [`Store::flush`] for every task waiting on it, one
//! flush covering all the requests made before it began (group commit), and leaves once none
//! is waiting.

use event_listener::Event;
use parking_lot::Mutex;

use crate::{Error, Result, Store};

/// The flushes tasks wait for, counted.
#[derive(Default)]
pub(crate) struct Flusher {
    state: Mutex<Flushes>,
    /// Notified whenever a flush ends.
    ended: Event,
}

#[derive(Default)]
struct Flushes {
    requested: u64,
    /// Every request up to this one is durable.
    flushed: u64,
    /// A flush failed for every request up to this one not flushed before.
    failed: u64,
    /// Whether the flushing thread is running.
    running: bool,
}

impl Flusher {
    /// Resolves once every write of `store` that returned before this call is durable.
    ///
    /// # Errors
    /// [`Error::Io`] if no thread could be started; [`Error::Poisoned`] if the flush failed,
    /// which leaves the store refusing writes until it is reopened.
    pub(crate) async fn flush(&self, store: &Store) -> Result<()> {
        let ticket = {
            let mut state = self.state.lock();
            state.requested += 1;
            if !state.running {
                let flushing = store.clone();
                std::thread::Builder::new()
                    .name("revkv-flush".into())
                    .spawn(move || run(&flushing))?;
                state.running = true;
            }
            state.requested
        };
        loop {
            // Listening before looking: a flush that ends in between still wakes this task.
            let ended = self.ended.listen();
            {
                let state = self.state.lock();
                if state.flushed >= ticket {
                    return Ok(());
                }
                if state.failed >= ticket {
                    return Err(Error::Poisoned);
                }
            }
            ended.await;
        }
    }
}

/// The flushing thread: flushes while anyone waits.
fn run(store: &Store) {
    let flusher = &store.shared.flusher;
    loop {
        let covered = {
            let mut state = flusher.state.lock();
            if state.requested == state.flushed.max(state.failed) {
                state.running = false;
                return;
            }
            state.requested
        };
        let outcome = store.flush();
        {
            let mut state = flusher.state.lock();
            match outcome {
                Ok(()) => state.flushed = covered,
                Err(_) => state.failed = covered,
            }
        }
        flusher.ended.notify(usize::MAX);
    }
}
