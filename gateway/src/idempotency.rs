//! Idempotency keys: a client that repeats a request with the same
//! `Idempotency-Key` gets the first call's answer, and the function runs
//! once.
//!
//! The first request claims the key in `OLIN_RESULTS` (a create, which
//! succeeds only if the key is absent) with the invocation id that will run
//! the call; the worker stores the call's answer under the same key before
//! it replies. A later request with the key reads it: the stored answer, or
//! the invocation id to wait for. Keys are scoped to the function and to the
//! invoke key presented (for private functions), so different callers'
//! keys cannot collide, and they live as long as async results (24 hours).
//! A claim whose call never got an answer (a gateway that died before
//! publishing) can be taken over once it is older than any run could be.

use std::time::Duration;

use async_nats::jetstream::kv;
use http::HeaderMap;
use olin_nats::admission::{self, AdmitError};
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::subject;
use olin_proto::v1::{AsyncResult, InvocationResponse};
use sha2::Digest as _;
use tokio::time::Instant;

/// Longest idempotency key accepted, in bytes.
const MAX_KEY_BYTES: usize = 255;

/// What a request with an idempotency key found.
pub(crate) enum Claim {
    /// This request runs the call: the key is now its.
    Fresh,
    /// An earlier request with the key runs (or ran) the call.
    Taken(Box<AsyncResult>),
}

/// The request's `Idempotency-Key`, if it sent one.
///
/// # Errors
/// Why the key is refused: empty, too long, or not visible ASCII.
pub(crate) fn requested(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let Some(v) = headers.get(subject::HTTP_IDEMPOTENCY_KEY) else { return Ok(None) };
    let ok = !v.is_empty() && v.len() <= MAX_KEY_BYTES && v.as_bytes().iter().all(|c| (0x21..=0x7e).contains(c));
    if ok { Ok(v.to_str().ok()) } else { Err("Idempotency-Key must be 1 to 255 visible ASCII characters") }
}

/// The `OLIN_RESULTS` key of `key` for `function`, called with the invoke
/// key whose sha256 is `invoke_key` (private functions).
pub(crate) fn result_key(function: &str, invoke_key: Option<&str>, key: &str) -> String {
    let mut h = sha2::Sha256::new();
    for part in [function, invoke_key.unwrap_or(""), key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    subject::idempotency_result_key(&hex::encode(h.finalize()))
}

/// Claims `key` for `marker`'s call, or finds who holds it. A pending claim
/// older than `stale_after` is taken over.
///
/// # Errors
/// `OLIN_RESULTS` could not be read or written.
pub(crate) async fn claim(
    results: &kv::Store,
    key: &str,
    marker: &AsyncResult,
    stale_after: Duration,
) -> Result<Claim, AdmitError> {
    let value = bytes::Bytes::from(marker.encode_to_vec());
    // The common case, a key never seen: one round trip.
    match results.create(key, value.clone()).await {
        Ok(_) => return Ok(Claim::Fresh),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(AdmitError::Unavailable(e.to_string())),
    }
    let taken = admission::compare_and_set(results, key, |current| {
        let held = current.map(|v| AsyncResult::decode(v).unwrap_or_default());
        match held {
            Some(held) if held.response.is_some() || !is_stale(&held, stale_after) => Err(Box::new(held)),
            // Absent (released), or a pending claim of a gateway that died.
            _ => Ok(Some(value.clone())),
        }
    })
    .await?;
    Ok(match taken {
        Ok(()) => Claim::Fresh,
        Err(held) => Claim::Taken(held),
    })
}

/// Whether a pending claim is older than `stale_after`.
fn is_stale(held: &AsyncResult, stale_after: Duration) -> bool {
    Duration::from_millis(olin_proto::unix_ms().saturating_sub(held.accepted_unix_ms)) > stale_after
}

/// Gives `key` up: its call was refused before it was queued, so a retry
/// may run it.
pub(crate) async fn release(results: &kv::Store, key: &str) {
    if let Err(err) = results.delete(key).await {
        tracing::warn!(%err, "an idempotency key was not released; a retry waits for its claim to go stale");
    }
}

/// Waits until the answer stored under `key` is there, or `until`.
pub(crate) async fn answer(results: &kv::Store, key: &str, until: Instant) -> Option<InvocationResponse> {
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
    loop {
        if let Ok(Some(bytes)) = results.get(key).await
            && let Some(resp) = AsyncResult::decode(bytes).ok().and_then(|r| r.response)
        {
            return Some(resp);
        }
        let wait = backoff.next_delay();
        if Instant::now() + wait >= until {
            return None;
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_scoped() {
        let mut h = HeaderMap::new();
        assert_eq!(requested(&h), Ok(None));
        h.insert(subject::HTTP_IDEMPOTENCY_KEY, "order-42".parse().unwrap());
        assert_eq!(requested(&h), Ok(Some("order-42")));
        for bad in ["", "a b", &"x".repeat(256)] {
            h.insert(subject::HTTP_IDEMPOTENCY_KEY, bad.parse().unwrap());
            assert!(requested(&h).is_err(), "{bad:?}");
        }
        let k = result_key("f", None, "order-42");
        assert!(k.starts_with("idem_") && k.len() == 5 + 64, "{k}");
        assert_ne!(k, result_key("g", None, "order-42"), "per function");
        assert_ne!(k, result_key("f", Some("ab"), "order-42"), "per invoke key");
        // The separator keeps the parts apart.
        assert_ne!(result_key("f", Some("a"), "b"), result_key("f", Some("ab"), ""));
    }
}
