//! The pull loop: each free execution slot holds one pull request on the
//! shared `workers` consumer, so a worker never takes more messages than it
//! can run. Per message: decode, check the deadline, load the module, run it,
//! reply on the caller's subject, publish the execution event, then ack.
//! Guest faults are replies; infrastructure faults are naks with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures::StreamExt;
use olin_proto::Message as _;
use olin_proto::subject;
use olin_proto::v1::{ExecutionEvent, InvocationRequest, InvocationResponse, Outcome};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{Ctx, async_call, dead_letter};

/// How long one pull request waits on the server for a message.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// One execution slot: pull one message, handle it, repeat until stopped.
pub(crate) async fn slot(ctx: Arc<Ctx>, consumer: PullConsumer, stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(50);
    while !*stop.borrow() {
        let batch = consumer.batch().max_messages(1).expires(PULL_EXPIRES).messages().await;
        let mut batch = match batch {
            Ok(b) => {
                backoff = Duration::from_millis(50);
                b
            }
            Err(err) => {
                warn!(%err, "pull request failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        // A pull request in flight is finished even when stopping: a message
        // the server already sent is handled, never stranded until ack_wait.
        while let Some(msg) = batch.next().await {
            match msg {
                Ok(msg) => handle(&ctx, msg).await,
                Err(err) => debug!(%err, "pull ended"),
            }
        }
    }
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
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
    let started_ms = now_ms();

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
    let mut progress = tokio::time::interval(ctx.ack_wait / 2);
    progress.tick().await;
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
        finished_unix_ms: now_ms(),
        method: req.method.clone(),
        path: req.path.clone(),
        r#async: req.r#async,
        error: resp.error.clone(),
    }
}

/// Publishes an execution event to `OLIN_EVENTS` (not awaiting the ack:
/// accounting must never slow the call path).
pub(crate) async fn publish_event(ctx: &Ctx, event: &ExecutionEvent) {
    if let Ok(subj) = subject::event_subject(&event.function)
        && let Err(err) = ctx.js.publish(subj, event.encode_to_vec().into()).await
    {
        warn!(%err, "execution event not published");
    }
}
