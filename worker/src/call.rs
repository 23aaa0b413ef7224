//! What every path that finishes a call needs, whichever answers it (a slot,
//! the async path, the dead-letter path): the call's deadline, its
//! concurrency lease given back, its execution event. A leaf: it uses only
//! the worker's context and the contract.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::subject;
use olin_proto::v1::{ExecutionEvent, InvocationRequest, InvocationResponse};
use tracing::{debug, warn};

use crate::Ctx;

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// A call's deadline in Unix ms (0: none): the `Olin-Deadline` header, else
/// the request's own field.
pub(crate) fn deadline(headers: Option<&HeaderMap>, req: &InvocationRequest) -> u64 {
    header(headers, subject::HDR_DEADLINE).and_then(|d| d.parse::<u64>().ok()).unwrap_or(req.deadline_unix_ms)
}

/// Gives back the call's concurrency lease, if the gateway took one: the
/// call has finished and will not run again (unless it is redelivered).
pub(crate) async fn release_lease(ctx: &Ctx, req: &InvocationRequest) {
    if !req.concurrency_lease {
        return;
    }
    if let Err(err) = olin_nats::admission::release_lease(&ctx.limits, &req.function, &req.invocation_id).await {
        warn!(%err, "the concurrency lease was not given back; it expires on its own");
    }
}

/// The execution event of one run: the response without its body.
pub(crate) fn event_of(req: &InvocationRequest, resp: &InvocationResponse, started_ms: u64) -> ExecutionEvent {
    ExecutionEvent {
        invocation_id: resp.invocation_id.clone(),
        function: req.function.clone(),
        deployment_id: req.deployment_id.clone(),
        module_sha256: req.module_sha256.clone(),
        outcome: resp.outcome,
        status: resp.status,
        exit_code: resp.exit_code,
        stderr_tail: resp.stderr_tail.clone(),
        usage: resp.usage.clone(),
        worker_id: resp.worker_id.clone(),
        started_unix_ms: started_ms,
        finished_unix_ms: olin_proto::unix_ms(),
        method: req.method.clone(),
        path: req.path.clone(),
        r#async: req.r#async,
        error: resp.error.clone(),
        headers: resp.headers.clone(),
    }
}

/// Events being stored at once, at most (each holds up to 64 KiB of
/// stderr): past it, finishing calls wait for room, which slows a worker
/// down while JetStream cannot store events rather than losing them.
pub(crate) const EVENTS_IN_FLIGHT: usize = 1024;

/// How long an event is offered to JetStream again before it is given up
/// (counted in `olin_worker_events_lost_total`): beyond a NATS leader
/// election (up to 9 s) and a reconnect.
const EVENT_RETRY: Duration = Duration::from_secs(30);

/// Retries start at 50 ms and double up to 2 s.
const EVENT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// Stores an execution event in `OLIN_EVENTS`, in the background: the call's
/// slot goes on at once, and the event is published with JetStream's
/// acknowledgement and published again (same message id: stored once)
/// until it is stored, so an event outlives a lost stream leader. Drain
/// waits for these.
pub(crate) async fn publish_event(ctx: &Ctx, event: &ExecutionEvent) {
    let Ok(subj) = subject::event_subject(&event.function) else { return };
    let Ok(permit) = ctx.events_in_flight.clone().acquire_owned().await else { return };
    // One run, one id: a rerun of the call is an event of its own.
    let id = format!("{}.{}.{}", event.invocation_id, event.worker_id, event.started_unix_ms);
    let payload: bytes::Bytes = event.encode_to_vec().into();
    let (js, stats) = (ctx.js.clone(), ctx.stats.clone());
    ctx.background.spawn(async move {
        let _permit = permit;
        let give_up = tokio::time::Instant::now() + EVENT_RETRY;
        let mut backoff = EVENT_BACKOFF;
        loop {
            let message = PublishMessage::build().payload(payload.clone()).message_id(id.as_str());
            let err = match js.send_publish(subj.clone(), message).await {
                Ok(ack) => match ack.await {
                    Ok(_) => return,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if tokio::time::Instant::now() + delay > give_up {
                stats.events_lost.fetch_add(1, Ordering::Relaxed);
                warn!(%err, invocation_id = %id, "execution event lost: JetStream did not store it in 30 s");
                return;
            }
            debug!(%err, "execution event not stored yet; publishing it again");
            tokio::time::sleep(delay).await;
        }
    });
}
