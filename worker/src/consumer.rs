//! The pull loop: the worker asks the shared `workers` consumer for exactly
//! as many messages as it has free execution slots. Per message: decode, check the deadline, load the module, run it,
//! reply on the caller's subject, publish the execution event, then ack.
//! Guest faults are replies; infrastructure faults are naks with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::StatusCode;
use async_nats::connection::State;
use async_nats::jetstream::consumer::{PullConsumer, pull::BatchConfig};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use olin_proto::Message as _;
use olin_proto::subject;
use olin_proto::v1::{ExecutionEvent, InvocationRequest, InvocationResponse, Outcome};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::{Ctx, async_call, dead_letter};

/// How long one pull request waits on the server for a message.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Pulls work for `concurrency` execution slots until `stop`, then drains.
///
/// One inbox subscription per worker; a pull request asks for exactly the
/// slots that are free and not already asked for, so the worker never holds
/// a message it cannot start at once (another worker gets it instead). Each
/// message runs in its own task holding a slot.
///
/// Requests are counted as outstanding until their messages arrive or the
/// server reports them expired (status 408 with `Nats-Pending-Messages`).
/// Since all requests expire within [`PULL_EXPIRES`], the count is also reset
/// once that long has passed since the last request, so a lost status (a
/// NATS restart) can never stall the worker.
pub(crate) async fn pull(ctx: Arc<Ctx>, consumer: PullConsumer, concurrency: usize, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let freed = Arc::new(Notify::new());
    let mut running = JoinSet::new();
    let inbox = ctx.nats.new_inbox();
    let mut sub = loop {
        match ctx.nats.subscribe(inbox.clone()).await {
            Ok(s) => break s,
            Err(err) => {
                warn!(%err, "cannot subscribe for pulled messages; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    };
    let mut outstanding = 0usize;
    let mut last_request = Instant::now();
    let mut stopping = false;
    loop {
        if last_request.elapsed() > PULL_EXPIRES + Duration::from_millis(500) {
            outstanding = 0;
        }
        let free = slots.available_permits();
        if !stopping && free > outstanding {
            let want = free - outstanding;
            let batch = BatchConfig { batch: want, expires: Some(PULL_EXPIRES), ..Default::default() };
            match consumer.request_batch(batch, inbox.clone().into()).await {
                Ok(()) => {
                    outstanding += want;
                    last_request = Instant::now();
                }
                Err(err) => {
                    warn!(%err, "pull request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        if stopping && (outstanding == 0 || ctx.nats.connection_state() != State::Connected) {
            break;
        }
        // Wake up for a message, a freed slot, the stop signal, or the
        // moment outstanding requests have surely expired.
        let expiry = tokio::time::sleep_until((last_request + PULL_EXPIRES + Duration::from_millis(600)).into());
        tokio::select! {
            msg = sub.next() => {
                let Some(msg) = msg else { break };
                match msg.status {
                    None => {
                        outstanding = outstanding.saturating_sub(1);
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            // Cannot happen (never more requested than free); leave it to redelivery.
                            warn!("message without a free slot; it will be redelivered");
                            continue;
                        };
                        let (ctx, freed) = (ctx.clone(), freed.clone());
                        let msg = jetstream::Message { message: msg, context: ctx.js.clone() };
                        running.spawn(async move {
                            handle(&ctx, msg).await;
                            drop(permit);
                            freed.notify_one();
                        });
                    }
                    Some(StatusCode::TIMEOUT | StatusCode::NOT_FOUND | StatusCode::REQUEST_TERMINATED) => {
                        let pending = msg
                            .headers
                            .as_ref()
                            .and_then(|h| h.get("Nats-Pending-Messages"))
                            .and_then(|v| v.as_str().parse::<usize>().ok());
                        match pending {
                            Some(n) => outstanding = outstanding.saturating_sub(n),
                            None => debug!(status = ?msg.status, "pull status without pending count"),
                        }
                    }
                    Some(status) => debug!(?status, description = ?msg.description, "pull status"),
                }
            }
            _ = freed.notified() => {}
            _ = expiry => {}
            _ = stop.wait_for(|s| *s), if !stopping => stopping = true,
        }
        // Reap finished handlers.
        while running.try_join_next().is_some() {}
    }
    // Finish the calls in flight.
    while running.join_next().await.is_some() {}
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

async fn handle(ctx: &Ctx, msg: jetstream::Message) {
    let delivered = msg.info().map_or(1, |i| i.delivered);
    let reply_to = header(msg.headers.as_ref(), subject::HDR_REPLY_TO).map(str::to_owned);
    let req = match InvocationRequest::decode(msg.payload.clone()) {
        Ok(req) if subject::is_valid_function_name(&req.function) && !req.invocation_id.is_empty() => req,
        Ok(req) => {
            let reason = format!("invalid invocation: function {:?}, id {:?}", req.function, req.invocation_id);
            return dead_letter::message(ctx, &msg, None, &reason).await;
        }
        Err(err) => {
            return dead_letter::message(ctx, &msg, None, &format!("undecodable InvocationRequest: {err}")).await;
        }
    };
    let span = tracing::info_span!("invocation", invocation_id = %req.invocation_id, function = %req.function,
        traceparent = %header(msg.headers.as_ref(), subject::HDR_TRACEPARENT).unwrap_or(""));
    let _enter = span.enter();
    let started_ms = olin_proto::unix_ms();

    let deadline = header(msg.headers.as_ref(), subject::HDR_DEADLINE)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(req.deadline_unix_ms);
    if deadline != 0 && started_ms >= deadline {
        let resp = platform_response(ctx, &req, Outcome::Timeout, "the deadline passed before a worker was free");
        return finish(ctx, &msg, &req, reply_to.as_deref(), resp, started_ms).await;
    }

    let module = match ctx.modules.get(&req.module_sha256).await {
        Ok(m) => m,
        Err(err) if err.is_transient() && delivered < ctx.max_deliver => {
            warn!(%err, delivered, "module store unavailable; nak for redelivery");
            let delay = Duration::from_millis(250 * (1 << delivered.clamp(0, 4)));
            if let Err(err) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                warn!(%err, "nak failed");
            }
            return;
        }
        Err(err) => {
            warn!(%err, "module unavailable");
            let resp = platform_response(ctx, &req, Outcome::ModuleUnavailable, &err.to_string());
            return finish(ctx, &msg, &req, reply_to.as_deref(), resp, started_ms).await;
        }
    };

    ctx.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let runtime = ctx.runtime.clone();
    let (worker_id, defaults, maxima) = (ctx.worker_id.clone(), ctx.defaults, ctx.maxima);
    let egress = ctx.egress.clone().map(|e| e as Arc<dyn olin::Egress>);
    let req = Arc::new(req);
    let job_req = req.clone();
    let mut job = tokio::task::spawn_blocking(move || {
        let rc = olin::RunContext { worker_id: &worker_id, defaults: &defaults, maxima: &maxima, egress };
        runtime.run(&module, &job_req, &rc)
    });
    // Long runs keep their message: tell JetStream the work goes on.
    // Not `interval()` + a first `tick()`: that "immediate" tick waits for the
    // timer wheel's next millisecond, which was most of a call's latency.
    let period = ctx.ack_wait / 2;
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let result = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = progress.tick() => {
                if let Err(err) = msg.ack_with(AckKind::Progress).await {
                    warn!(%err, "progress ack failed");
                }
            }
        }
    };
    ctx.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    let resp = match result {
        Ok(resp) => resp,
        Err(err) => platform_response(ctx, &req, Outcome::Internal, &format!("the run was aborted: {err}")),
    };
    finish(ctx, &msg, &req, reply_to.as_deref(), resp, started_ms).await;
}

fn platform_response(ctx: &Ctx, req: &InvocationRequest, outcome: Outcome, error: &str) -> InvocationResponse {
    InvocationResponse {
        invocation_id: req.invocation_id.clone(),
        outcome: outcome as i32,
        status: u32::from(outcome.http_status()),
        worker_id: ctx.worker_id.clone(),
        error: error.to_owned(),
        ..Default::default()
    }
}

/// Reply, publish the event, then ack: the reply is sent before the ack on
/// the same connection, so an acked call has always been answered.
async fn finish(
    ctx: &Ctx,
    msg: &jetstream::Message,
    req: &InvocationRequest,
    reply_to: Option<&str>,
    resp: InvocationResponse,
    started_ms: u64,
) {
    ctx.stats.executions.fetch_add(1, Ordering::Relaxed);
    info!(
        outcome = resp.outcome().header_value(),
        status = resp.status,
        wall_us = resp.usage.as_ref().map_or(0, |u| u.wall_us),
        "executed"
    );
    let event = event_of(req, &resp, started_ms);
    if req.r#async {
        let delivered = msg.info().map_or(1, |i| i.delivered);
        return async_call::finish(ctx, msg, req, resp, event, delivered).await;
    }
    if let Some(reply_to) = reply_to
        && let Err(err) = ctx.nats.publish(reply_to.to_owned(), resp.encode_to_vec().into()).await
    {
        // Not acked: the call is redelivered and answered again.
        warn!(%err, "reply failed; nak");
        let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_millis(100)))).await;
        return;
    }
    publish_event(ctx, &event).await;
    if let Err(err) = msg.ack().await {
        warn!(%err, "ack failed; the call may run again and its duplicate reply be dropped");
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
