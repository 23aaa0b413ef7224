//! Async calls: nobody waits on a reply subject. A failing run is retried
//! with backoff up to the function's attempts (default 3); the final result
//! (success or failure) is stored in `OLIN_RESULTS` under the invocation id;
//! a call that failed every attempt is also kept in `OLIN_DEAD`; and if the
//! caller gave a callback URL, the result is POSTed there, with retries, and
//! the callback's fate recorded beside the result.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use base64::Engine as _;
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::v1::{AsyncResult, ExecutionEvent, InvocationRequest, InvocationResponse, Outcome};
use tracing::{info, warn};

use crate::call::{publish_event, release_lease};
use crate::{Ctx, dead_letter};

/// Attempts when the function sets none.
const DEFAULT_ATTEMPTS: u32 = 3;

/// Waits between runs of a failing async call: 1 s, 2 s, ... up to 32 s.
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(32));

/// Callback POSTs before giving up, and the wait before each retry.
const CALLBACK_BACKOFF: &[Duration] = &[Duration::from_millis(250), Duration::from_millis(750)];

/// Whether a failed run may succeed if run again.
fn retryable(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::GuestError
            | Outcome::Timeout
            | Outcome::FuelExhausted
            | Outcome::MemoryExceeded
            | Outcome::OutputTooLarge
            | Outcome::BadCgiOutput
            | Outcome::Internal
    )
}

/// Settles one run of an async call.
pub(crate) async fn finish(
    ctx: &Ctx,
    msg: &jetstream::Message,
    req: &InvocationRequest,
    resp: InvocationResponse,
    event: ExecutionEvent,
    delivered: i64,
) {
    publish_event(ctx, &event).await;
    let outcome = resp.outcome();
    let attempts = if req.async_max_attempts == 0 { DEFAULT_ATTEMPTS } else { req.async_max_attempts };
    let attempts = i64::from(attempts).min(ctx.max_deliver).max(1);
    let expired = req.deadline_unix_ms != 0 && olin_proto::unix_ms() >= req.deadline_unix_ms;
    if outcome != Outcome::Ok && retryable(outcome) && delivered < attempts && !expired {
        let backoff = RETRY_BACKOFF.delay(u32::try_from(delivered - 1).unwrap_or(0));
        info!(attempt = delivered, of = attempts, ?backoff, "async call failed; retrying");
        if let Err(err) = msg.ack_with(AckKind::Nak(Some(backoff))).await {
            warn!(%err, "nak of a failed async call failed");
        }
        return;
    }
    let result = AsyncResult {
        invocation_id: req.invocation_id.clone(),
        function: req.function.clone(),
        response: Some(resp.clone()),
        attempts: u32::try_from(delivered).unwrap_or(u32::MAX),
        callback_url: req.callback_url.clone(),
        finished_unix_ms: olin_proto::unix_ms(),
        ..Default::default()
    };
    store(ctx, &result).await;
    // The last run: the call no longer counts against the function's concurrency.
    release_lease(ctx, req).await;
    if outcome != Outcome::Ok {
        let reason = format!("async call failed after {delivered} attempt(s): {}", resp.error);
        if let Err(err) =
            dead_letter::store(ctx, Some(&req.function), &reason, msg.headers.as_ref(), msg.payload.clone()).await
        {
            warn!(%err, "could not dead-letter the failed async call");
        }
    }
    if let Err(err) = msg.ack().await {
        warn!(%err, "ack of an async call failed");
    }
    if !req.callback_url.is_empty()
        && let Some(egress) = ctx.egress.clone()
    {
        let results = ctx.results.clone();
        ctx.background.spawn(deliver_callback(egress, results, result));
    }
}

/// For a synchronous call made with an idempotency key: stores its answer
/// under the key, for the client's retries. A call that never ran (its
/// deadline passed first, its module was unavailable) gives the key up
/// instead, so that a retry runs it.
pub(crate) async fn store_idempotent(ctx: &Ctx, req: &InvocationRequest, resp: &InvocationResponse) {
    if req.idempotency_key.is_empty() {
        return;
    }
    let stored = if resp.usage.is_some() {
        let answer = AsyncResult {
            invocation_id: req.invocation_id.clone(),
            function: req.function.clone(),
            response: Some(resp.clone()),
            attempts: 1,
            finished_unix_ms: olin_proto::unix_ms(),
            ..Default::default()
        };
        ctx.results.put(&req.idempotency_key, answer.encode_to_vec().into()).await.map(drop).map_err(|e| e.to_string())
    } else {
        ctx.results.delete(&req.idempotency_key).await.map_err(|e| e.to_string())
    };
    if let Err(err) = stored {
        warn!(%err, "the answer of an idempotent call was not stored; a retry waits for the claim to go stale");
    }
}

async fn store(ctx: &Ctx, result: &AsyncResult) {
    if let Err(err) = ctx.results.put(&result.invocation_id, result.encode_to_vec().into()).await {
        warn!(%err, invocation_id = %result.invocation_id, "async result not stored");
    }
}

/// The JSON document POSTed to a callback URL.
fn callback_body(result: &AsyncResult) -> Vec<u8> {
    let resp = result.response.clone().unwrap_or_default();
    let headers: Vec<(String, String)> =
        resp.headers.iter().map(|h| (h.name.clone(), String::from_utf8_lossy(&h.value).into_owned())).collect();
    serde_json::json!({
        "invocation_id": result.invocation_id,
        "function": result.function,
        "outcome": resp.outcome().header_value(),
        "status": resp.status,
        "headers": headers,
        "body_base64": base64::engine::general_purpose::STANDARD.encode(&resp.body),
        "error": resp.error,
        "attempts": result.attempts,
    })
    .to_string()
    .into_bytes()
}

async fn deliver_callback(
    egress: Arc<crate::egress::HttpEgress>,
    results: async_nats::jetstream::kv::Store,
    mut result: AsyncResult,
) {
    let body = callback_body(&result);
    let mut last_error = String::new();
    for attempt in 0..=CALLBACK_BACKOFF.len() {
        result.callback_attempts += 1;
        match egress.post_json(&result.callback_url, &result.invocation_id, body.clone()).await {
            Ok(status) if (200..300).contains(&status) => {
                result.callback_delivered = true;
                last_error.clear();
                break;
            }
            Ok(status) => last_error = format!("the callback answered {status}"),
            Err(err @ crate::egress::CallbackError::Refused) => {
                last_error = err.to_string();
                break;
            }
            Err(err) => last_error = err.to_string(),
        }
        if let Some(wait) = CALLBACK_BACKOFF.get(attempt) {
            tokio::time::sleep(*wait).await;
        }
    }
    if !result.callback_delivered {
        warn!(invocation_id = %result.invocation_id, url = %result.callback_url, error = %last_error,
            attempts = result.callback_attempts, "callback given up");
    }
    result.callback_error = last_error;
    if let Err(err) = results.put(&result.invocation_id, result.encode_to_vec().into()).await {
        warn!(%err, "callback outcome not recorded");
    }
}
