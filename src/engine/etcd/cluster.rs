//! The connection to an etcd cluster: its clients, the runtime its requests run on, and the
//! retries that carry a request through a member's failure.
//!
//! A member that dies takes the requests it was serving with it, and while the others elect a
//! leader they refuse proposals. Each attempt of a request is therefore bounded by a short
//! timeout, and an attempt that fails in transport, times out or finds no leader is sent again,
//! to whichever member answers, until the request's deadline: a call rides out an election and
//! fails, with [`Error::Unavailable`], only when the cluster stays unavailable past it.

use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{KvClient, Txn, WatchClient};

use crate::blocking::block_on;
use crate::engine::etcd::access::refusal;
use crate::{Error, Result};

/// etcd's default `--max-txn-ops`: compares, and writes, per transaction.
pub(crate) const MAX_TXN_OPS: usize = 128;
/// etcd's default `--max-request-bytes` (1.5 MiB), less room for the request's framing.
pub(crate) const MAX_REQUEST_BYTES: usize = 1536 * 1024 - 4096;
/// How long one attempt of a request may take: several election timeouts, so that an attempt
/// stuck on a member that died is abandoned for another member while the election runs.
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request keeps trying by default (see [`Cluster::deadline`]).
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_secs(15);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// A connection to the cluster, shared by the engine and its keyspaces.
pub(super) struct Cluster {
    pub(super) kv: KvClient,
    pub(super) watch: WatchClient,
    /// Present until the cluster is dropped.
    pub(super) runtime: Option<tokio::runtime::Runtime>,
    /// The runtime's handle, which requests enter while they are polled.
    pub(super) handle: tokio::runtime::Handle,
    /// How long a request keeps trying before it fails with [`Error::Unavailable`].
    pub(super) deadline: Duration,
    /// The prefix of every key of the store, which a refused permission names.
    pub(super) prefix: String,
}

impl Drop for Cluster {
    /// Without waiting for the runtime's tasks: a store may be dropped on a thread of another
    /// runtime, where a runtime may not be dropped by blocking.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Cluster {
    /// Runs `request` on the key-value client (see [`Self::retry`]), waiting for it.
    pub(super) fn call<T, F, Fut>(&self, request: F) -> Result<T>
    where
        F: FnMut(KvClient) -> Fut + Send,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send,
        T: Send,
    {
        self.run(self.retry(&self.kv, request))
    }

    /// Runs `request` with `client`, sending it again, after a growing pause, while it fails
    /// for want of a member or a leader, until the deadline.
    pub(super) async fn retry<C, T, F, Fut>(&self, client: &C, mut request: F) -> Result<T>
    where
        C: Clone,
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let give_up = Instant::now() + self.deadline;
        let mut pause = Duration::from_millis(10);
        loop {
            match request(client.clone()).await {
                Ok(value) => return Ok(value),
                Err(error) if let Some(refused) = refusal(&error, &self.prefix) => {
                    return Err(refused);
                }
                Err(error) if is_transient(&error) => {
                    if Instant::now() + pause >= give_up {
                        return Err(Error::Unavailable {
                            waited: self.deadline,
                            source: Box::new(error),
                        });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(error) => return Err(storage_error(error)),
            }
        }
    }

    /// Sends `txn`; whether its compares held. A transaction whose answer was lost in
    /// transport is sent again, and then fails its compares if the lost attempt was applied:
    /// a failing retry counts as applied when `evidence`, a key and the value `txn` writes
    /// there (`None`: removes it), shows it.
    pub(super) async fn txn(
        &self,
        txn: Txn,
        evidence: Option<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<bool> {
        let mut attempts = 0;
        let (succeeded, attempts) = self
            .retry(&self.kv, |mut kv| {
                let txn = txn.clone();
                attempts += 1;
                let attempt = attempts;
                async move { kv.txn(txn).await.map(|r| (r.succeeded(), attempt)) }
            })
            .await?;
        match evidence {
            Some((key, value)) if !succeeded && attempts > 1 => Ok(self.get(key).await? == value),
            _ => Ok(succeeded),
        }
    }

    /// What `key` holds.
    pub(super) async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let mut response = self
            .retry(&self.kv, |mut kv| {
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        Ok(response
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| kv.into_key_value().1))
    }

    /// `future`, polled inside the engine's runtime: the connections, timers and retries it
    /// makes belong to that runtime, whichever runtime (or none) the caller's task runs on.
    /// The caller's task polls it; the runtime's two threads only drive the sockets.
    pub(super) fn on_runtime<'a, T>(
        &self,
        future: impl Future<Output = T> + Send + 'a,
    ) -> impl Future<Output = T> + Send + 'a {
        let handle = self.handle.clone();
        let mut future = Box::pin(future);
        std::future::poll_fn(move |cx| {
            let _entered = handle.enter();
            future.as_mut().poll(cx)
        })
    }

    /// Runs `future` inside the engine's runtime and waits for it, on this thread.
    pub(super) fn run<T>(&self, future: impl Future<Output = T> + Send) -> T {
        block_on(self.on_runtime(future))
    }
}

/// Whether a failed request may succeed when sent again: the member was unreachable or lost,
/// the attempt timed out (tonic reports its own timeout as `Cancelled`), or the cluster had no
/// leader. A write that may have been applied is resolved by the caller ([`Cluster::txn`]).
fn is_transient(error: &etcd_client::Error) -> bool {
    use tonic::Code;
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Aborted
        ),
        _ => false,
    }
}

pub(super) fn storage_error(error: etcd_client::Error) -> Error {
    if let etcd_client::Error::GRpcStatus(status) = &error {
        let message = status.message();
        if message.contains("too many operations in txn request") {
            return Error::CommitTooLarge {
                what: "operations",
                found: None,
                limit: MAX_TXN_OPS,
            };
        }
        if message.contains("request is too large") {
            return Error::CommitTooLarge {
                what: "bytes",
                found: None,
                limit: MAX_REQUEST_BYTES,
            };
        }
    }
    Error::Storage(Box::new(error))
}

/// The etcd key of `key` in the keyspace `name` of the store under `namespace`.
pub(super) fn etcd_key(namespace: &[u8], name: &str, key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(namespace.len() + name.len() + 1 + key.len());
    full.extend_from_slice(namespace);
    full.extend_from_slice(name.as_bytes());
    full.push(0);
    full.extend_from_slice(key);
    full
}
