//! The blocking face's driver: runs one of revkv's futures to completion on the calling thread.
//!
//! revkv's operations are written once, as futures; the blocking API runs them here. On the
//! local engine they complete at their first poll (a durable write joins its group commit on
//! the calling thread, see [`on_blocking_thread`]), so this costs a poll; on etcd the calling thread sleeps until the engine's runtime, which drives the
//! connections, wakes it. Unlike `futures::executor::block_on` it may be nested: a closure run
//! inside an operation (a transaction's body, an expiry handler) may call the blocking API.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the thread that polls.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once: most blocking calls never wait.
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
    /// How many [`block_on`] calls this thread is inside.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread is inside [`block_on`]: then it is the caller's own thread, free to
/// wait (for a group commit, say), rather than a thread of some async runtime.
pub(crate) fn on_blocking_thread() -> bool {
    DEPTH.get() > 0
}

/// Counts a [`block_on`] call while it runs.
struct Inside;

impl Inside {
    fn enter() -> Self {
        DEPTH.set(DEPTH.get() + 1);
        Self
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get() - 1);
    }
}

/// Polls `future` on this thread until it completes, sleeping while it waits.
#[inline]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let _inside = Inside::enter();
    let mut future = pin!(future);
    // Most futures here are done at their first poll, which needs no waker of this thread's.
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return output;
    }
    // Polled again at once with a waker that works: a wake meant for the first poll was lost.
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake before this park leaves the token set, so no wake is lost.
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_wake_from_another_thread_and_nests() {
        let (send, receive) = futures::channel::oneshot::channel();
        let sender = thread::spawn(move || send.send(block_on(async { 7 })));
        assert_eq!(block_on(receive), Ok(7));
        sender.join().unwrap().unwrap();
        assert_eq!(block_on(async { block_on(async { 1 }) + 1 }), 2);
    }
}
