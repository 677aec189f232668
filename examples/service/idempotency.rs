//! `Idempotency-Key` on POST: the first answer to a key is stored, in the store itself and in
//! the same transaction as the effect it reports, and replayed for a retry with the same key
//! and body; another body is `422`, a retry while the first is still running `409`.
//!
//! Only successful answers are kept: a request that failed changed nothing, so a retry with
//! the same key runs again. A key expires (a store time to live) a set time after its answer,
//! 24 hours by default; then it is free, and a request with it is a new request.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use revkv::http::{HeaderError, HttpError, HttpProblem, Members};
use std::time::Duration;

use revkv::{AsyncCollection, AsyncTransaction, Conflict, Store, Version};
use serde::{Deserialize, Serialize};

use super::reply::Reply;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// The collection of the keys. A key is a client's secret (whoever knows it can replay the
/// answer given to it), so no route shows the keys of this collection.
pub const KEYS: &str = "idempotency-keys";

/// A key's record: the request it was first used for and, once done, the answer.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    request: String,
    reply: Option<Reply>,
}

/// The keys seen within their time to live, kept in the collection [`KEYS`].
#[derive(Clone)]
pub struct IdempotencyKeys {
    entries: AsyncCollection<Entry>,
    ttl: Duration,
}

/// A key claimed by a request in flight; [`IdempotencyKeys::complete`] or
/// [`IdempotencyKeys::release`] ends the claim.
#[derive(Clone)]
pub struct Claim {
    key: String,
    request: String,
    version: Version,
}

/// What to do with a POST, by its key.
pub enum Admission {
    /// Run it; `None` when it has no key.
    Run(Option<Claim>),
    /// Answer it with the answer to its first run.
    Replay(Reply),
}

impl IdempotencyKeys {
    /// Opens the keys, which last `ttl` after their answer, and frees those whose requests
    /// were in flight when the service last stopped: their effects, written together with
    /// the answer, did not happen.
    pub fn open(store: &Store, ttl: Duration) -> revkv::Result<Self> {
        let entries = store.collection::<Entry>(KEYS).open()?;
        for entry in &entries {
            let (key, entry) = entry?;
            if entry.value.reply.is_none() {
                entries.delete(&key, entry.version)?;
            }
        }
        Ok(Self {
            entries: entries.to_async(),
            ttl,
        })
    }

    /// Claims the request's key, or says to replay the answer already given to it.
    pub async fn admit(
        &self,
        key: Option<String>,
        request: String,
    ) -> Result<Admission, HttpError> {
        let Some(key) = key else {
            return Ok(Admission::Run(None));
        };
        let in_flight = Entry {
            request,
            reply: None,
        };
        // A claim expires too, should the request never finish.
        let claimed = self.entries.insert_expiring(&key, &in_flight, self.ttl);
        let conflict = match claimed.await {
            Ok(version) => {
                return Ok(Admission::Run(Some(Claim {
                    key,
                    request: in_flight.request,
                    version,
                })));
            }
            Err(revkv::Error::Conflict(conflict @ Conflict::AlreadyExists { .. })) => conflict,
            Err(other) => return Err(other.into()),
        };
        let Some(first) = conflict.current_record::<Entry>()? else {
            return Err(conflict.into());
        };
        if first.value.request != in_flight.request {
            return Err(key_problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "/problems/idempotency-key-reused",
                "The Idempotency-Key was used for another request",
                "this key was first sent with another request; send a new key for a new request",
            )
            .into());
        }
        match first.value.reply {
            Some(reply) => Ok(Admission::Replay(reply.with_header(&REPLAYED, "true"))),
            None => Err(key_problem(
                StatusCode::CONFLICT,
                "/problems/idempotency-key-in-flight",
                "A request with this Idempotency-Key is still running",
                "the first request with this key has not finished; retry after it has",
            )
            .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
            .into()),
        }
    }

    /// Records `reply` as the answer to the claimed key, inside the transaction that makes
    /// the request's effect, so that the effect and its answer are stored together.
    pub async fn complete(
        &self,
        tx: &mut AsyncTransaction<'_>,
        claim: &Claim,
        reply: &Reply,
    ) -> revkv::Result<()> {
        let done = Entry {
            request: claim.request.clone(),
            reply: Some(reply.clone()),
        };
        // The answer keeps the key for a time to live of its own, counted from now.
        tx.update_expiring(&self.entries, &claim.key, claim.version, done, self.ttl)
            .await
            .map(drop)
    }

    /// Frees the key of a request that failed, so that a retry runs again. Should this fail,
    /// the next start of the service frees it.
    pub async fn release(&self, claim: Claim) {
        let Claim { key, version, .. } = claim;
        drop(self.entries.delete(&key, version).await);
    }
}

/// The request a key stands for: method, path and body, compared byte for byte.
pub fn fingerprint(uri: &Uri, body: &[u8]) -> String {
    format!("POST {}\n{}", uri.path(), String::from_utf8_lossy(body))
}

/// The request's `Idempotency-Key`: a token of 1 to 255 visible characters, as sent or as a
/// quoted structured-field string.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let fail = |reason| HttpError::from(HeaderError::new(IDEMPOTENCY_KEY, reason));
    let mut lines = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(line) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err(fail("the header is sent more than once"));
    }
    let text = line
        .to_str()
        .map_err(|_| fail("an Idempotency-Key is visible ASCII"))?
        .trim();
    let key = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(fail(
            "an Idempotency-Key is 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

fn key_problem(
    status: StatusCode,
    problem_type: &'static str,
    title: &str,
    detail: &str,
) -> HttpProblem {
    let mut members = Members::default();
    members.header = Some("Idempotency-Key".to_owned());
    HttpProblem::new(status, Uri::from_static(problem_type), title)
        .with_detail(detail)
        .with_members(members)
}
