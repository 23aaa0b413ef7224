//! What every path that finishes a call needs, whichever answers it (a slot,
//! the async path, the dead-letter path): the call's deadline, its
//! concurrency lease given back, its execution event. A leaf: it uses only
//! the worker's context and the contract.

use async_nats::HeaderMap;
use olin_proto::Message as _;
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

/// Publishes an execution event into `OLIN_EVENTS`. A plain core publish:
/// the stream stores it all the same, and asking JetStream for an ack that
/// nobody waits for cost the server and this worker a message per call.
pub(crate) async fn publish_event(ctx: &Ctx, event: &ExecutionEvent) {
    if let Ok(subj) = subject::event_subject(&event.function)
        && let Err(err) = ctx.nats.publish(subj, event.encode_to_vec().into()).await
    {
        warn!(%err, "execution event not published");
    }
}
