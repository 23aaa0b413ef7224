//! What every path that finishes a call needs, whichever answers it (a slot,
//! the async path, the dead-letter path): the call's deadline, its
//! concurrency lease given back, its execution event. A leaf: it uses only
//! the worker's context and the contract.

use async_nats::HeaderMap;
use olin_proto::subject;
use olin_proto::v1::{ExecutionEvent, InvocationRequest, InvocationResponse};
use tracing::warn;

use crate::Ctx;

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// A call's deadline in Unix ms (0: none): the `Olin-Deadline` header, else
/// the request's own field.
pub(crate) fn deadline(headers: Option<&HeaderMap>, req: &InvocationRequest) -> u64 {
    header(headers, subject::HDR_DEADLINE).and_then(|d| d.parse::<u64>().ok()).unwrap_or(req.deadline_unix_ms)
}

/// How many times the call has been delivered, counting the deliveries of
/// its first message if it was queued again (see `dead_letter::give_up`).
pub(crate) fn deliveries(msg: &async_nats::jetstream::Message) -> i64 {
    let before = header(msg.headers.as_ref(), subject::HDR_REQUEUED).and_then(|d| d.parse::<i64>().ok()).unwrap_or(0);
    msg.info().map_or(1, |i| i.delivered).saturating_add(before.max(0))
}

/// Gives back the call's concurrency lease, if the gateway took one: the
/// call has finished and will not run again (unless it is redelivered).
pub(crate) async fn release_lease(ctx: &Ctx, req: &InvocationRequest) {
    if !req.concurrency_lease {
        return;
    }
    if let Err(err) = ctx.limits.release_lease(&req.function, &req.invocation_id).await {
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

/// Stores an execution event in `OLIN_EVENTS` and waits until it is (or
/// is given up, see `events`).
pub(crate) async fn publish_event(ctx: &Ctx, event: ExecutionEvent) {
    ctx.events.record(event, None).await.stored().await;
}
