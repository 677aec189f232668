//! The connection to an etcd cluster: its clients, the runtime its requests run on, and the
//! retries that carry a request through a member's failure.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{KvClient, Txn, WatchClient};

use crate::backend::Bytes;
use crate::{Error, Result};

/// etcd's default `--max-txn-ops`: compares, and writes, per transaction.
pub(crate) const MAX_TXN_OPS: usize = 128;
/// etcd's default `--max-request-bytes` (1.5 MiB), less room for the request's framing.
pub(crate) const MAX_REQUEST_BYTES: usize = 1536 * 1024 - 4096;
/// Attempts of a request whose transport failed (a member down, a leader election).
const ATTEMPTS: u32 = 8;
/// How long one request may take.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection to the cluster, shared by the engine and its keyspaces.
pub(super) struct Cluster {
    pub(super) kv: KvClient,
    pub(super) watch: WatchClient,
    /// Present until the cluster is dropped.
    pub(super) runtime: Option<tokio::runtime::Runtime>,
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
    /// Runs `request` on the key-value client (see [`Self::retry`]).
    pub(super) fn call<T, F, Fut>(&self, request: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        self.retry(&self.kv, request)
    }

    /// Runs `request` with `client` on the engine's runtime and waits for its answer,
    /// retrying transport failures with a growing pause.
    pub(super) fn retry<C, T, F, Fut>(&self, client: &C, mut request: F) -> Result<T>
    where
        C: Clone,
        T: Send + 'static,
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let mut pause = Duration::from_millis(20);
        let mut attempt = 1;
        loop {
            let outcome = self.run(request(client.clone()))?;
            match outcome {
                Ok(value) => return Ok(value),
                Err(error) if attempt < ATTEMPTS && is_transient(&error) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                    attempt += 1;
                }
                Err(error) => return Err(storage_error(error)),
            }
        }
    }

    /// Sends `txn`; whether its compares held. A transaction whose answer was lost in
    /// transport is sent again, and then fails its compares if the lost attempt was applied:
    /// a failing retry counts as applied when `evidence`, a key and the value `txn` writes
    /// there (`None`: removes it), shows it.
    pub(super) fn txn(
        &self,
        txn: &Txn,
        evidence: Option<(Vec<u8>, Option<&[u8]>)>,
    ) -> Result<bool> {
        let mut attempts = 0;
        let (succeeded, attempts) = self.call(|mut kv| {
            let txn = txn.clone();
            attempts += 1;
            let attempt = attempts;
            async move { kv.txn(txn).await.map(|r| (r.succeeded(), attempt)) }
        })?;
        match evidence {
            Some((key, value)) if !succeeded && attempts > 1 => {
                Ok(self.get(key)?.as_deref() == value)
            }
            _ => Ok(succeeded),
        }
    }

    /// Runs `future` on the engine's runtime and waits for it.
    pub(super) fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        wait_for(
            self.runtime.as_ref().expect("present until dropped"),
            future,
        )
    }

    pub(super) fn get(&self, key: Vec<u8>) -> Result<Option<Bytes>> {
        let mut response = self.call(move |mut kv| {
            let key = key.clone();
            async move { kv.get(key, None).await }
        })?;
        Ok(response
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| Bytes::from(kv.value())))
    }
}

/// Runs `future` on `runtime` and waits for it: on this thread where it is outside any
/// runtime (one thread hop fewer), else handed to one of the runtime's workers, since a thread
/// of another runtime (tokio's blocking pool, say) may not block on one.
pub(super) fn wait_for<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    let (answer, answered) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = answer.send(future.await);
    });
    answered
        .recv()
        .map_err(|_| Error::Storage("the etcd engine's runtime stopped".into()))
}

/// Whether a failed request may succeed when sent again.
fn is_transient(error: &etcd_client::Error) -> bool {
    use tonic::Code;
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Aborted
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
