//! The dead-letter stream `OLIN_DEAD`: invocations that cannot be run, kept
//! with the reason in the `Olin-Dead-Reason` header so they can be listed
//! and re-driven.
//!
//! Two ways in: a worker that pulls an undecodable message moves it here at
//! once, and a message that ran out of deliveries (its workers kept dying
//! before acking) is moved here when JetStream's max-deliveries advisory
//! arrives; its caller then gets an `INTERNAL` answer instead of waiting for
//! the deadline.
//!
//! Not every delivery reaches a worker: while a clustered stream elects a
//! new leader, deliveries to pull requests of clients that were on the lost
//! node are spent without anybody seeing them (seen on nats-server 2.9: a
//! call's three deliveries gone in 13 s). So a synchronous call that runs
//! out while its caller still waits is queued again, once, as a new message
//! that carries the first one's count (`Olin-Requeued`); only when that one
//! runs out too (at most twice `max_deliver` deliveries in all) or the
//! deadline nears is it dead-lettered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use olin_proto::Message as _;
use olin_proto::subject;
use olin_proto::v1::{AsyncResult, InvocationRequest, InvocationResponse, Outcome};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Ctx;
use crate::call::deadline;

/// Writes `payload` to `OLIN_DEAD` with `reason` and the call's own headers.
pub(crate) async fn store(
    ctx: &Ctx,
    function: Option<&str>,
    reason: &str,
    original: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    headers.insert(subject::HDR_DEAD_REASON, reason);
    if let Some(h) = original {
        for name in [subject::HDR_MSG_ID, subject::HDR_REPLY_TO, subject::HDR_DEADLINE, subject::HDR_TRACEPARENT] {
            if let Some(v) = h.get(name) {
                headers.insert(name, v.as_str());
            }
        }
    }
    let ack = ctx
        .js
        .publish_with_headers(subject::dead_subject(function), headers, payload)
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(|_| ()).map_err(|e| e.to_string())?;
    ctx.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Moves a pulled message that cannot be run to `OLIN_DEAD` and stops its
/// redelivery. If the dead-letter write fails, the message is nak'd instead,
/// so nothing is lost.
pub(crate) async fn message(ctx: &Ctx, msg: &jetstream::Message, function: Option<&str>, reason: &str) {
    warn!(reason, "dead-lettering invocation");
    let kind = match store(ctx, function, reason, msg.headers.as_ref(), msg.payload.clone()).await {
        Ok(()) => AckKind::Term,
        Err(err) => {
            warn!(%err, "dead-letter write failed; nak");
            AckKind::Nak(Some(Duration::from_secs(1)))
        }
    };
    if let Err(err) = msg.ack_with(kind).await {
        warn!(%err, "ack of dead-lettered message failed");
    }
}

/// The fields of JetStream's max-deliveries advisory that matter here.
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Follows max-deliveries advisories of the `workers` consumer until `stop`.
pub(crate) async fn follow_advisories(
    ctx: Arc<Ctx>,
    invocations: jetstream::stream::Stream,
    mut stop: watch::Receiver<bool>,
) {
    let subject = subject::max_deliveries_advisory();
    let mut sub = match ctx.nats.queue_subscribe(subject.clone(), subject::QUEUE_DEAD_LETTER.to_owned()).await {
        Ok(s) => s,
        Err(err) => {
            warn!(%err, subject, "cannot follow max-deliveries advisories");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some(msg) = msg else { return };
        match serde_json::from_slice::<MaxDeliveries>(&msg.payload) {
            Ok(adv) => give_up(&ctx, &invocations, adv).await,
            Err(err) => warn!(%err, "unreadable max-deliveries advisory"),
        }
    }
}

async fn give_up(ctx: &Ctx, invocations: &jetstream::stream::Stream, adv: MaxDeliveries) {
    let stored = match invocations.get_raw_message(adv.stream_seq).await {
        Ok(m) => m,
        Err(err) => {
            // Already acked or removed: nothing to do.
            info!(%err, seq = adv.stream_seq, "exhausted message is gone");
            return;
        }
    };
    let before = requeued_after(&stored.headers);
    if before.is_none() && worth_requeuing(ctx, &stored, olin_proto::unix_ms()) {
        match requeue(ctx, invocations, &stored, adv.deliveries).await {
            Ok(()) => return,
            Err(err) => warn!(%err, "queuing an exhausted call again failed; dead-lettering it"),
        }
    }
    let deliveries = adv.deliveries + before.unwrap_or(0);
    let reason = format!("delivered {deliveries} times without being answered");
    move_to_dead(ctx, invocations, stored, &reason, deliveries).await;
}

/// The deliveries of a call's first message, if this one is its requeue.
fn requeued_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(subject::HDR_REQUEUED).and_then(|v| v.as_str().parse().ok())
}

/// Whether an exhausted message is worth a second round of deliveries: a
/// synchronous call (a caller waits on its reply subject) whose deadline
/// leaves at least an ack wait for a run. Async calls keep their own retry
/// budget (`async_call`), and a call without a deadline is not waited for.
fn worth_requeuing(ctx: &Ctx, stored: &jetstream::message::StreamMessage, now_ms: u64) -> bool {
    let Ok(req) = InvocationRequest::decode(stored.payload.clone()) else { return false };
    let deadline = deadline(Some(&stored.headers), &req);
    let ack_wait = u64::try_from(ctx.ack_wait.as_millis()).unwrap_or(u64::MAX);
    !req.r#async
        && stored.headers.get(subject::HDR_REPLY_TO).is_some()
        && deadline != 0
        && now_ms.saturating_add(ack_wait) < deadline
}

/// Publishes a copy of the exhausted `stored` message, with the count of
/// its deliveries and a message id of its own, then removes the original.
async fn requeue(
    ctx: &Ctx,
    invocations: &jetstream::stream::Stream,
    stored: &jetstream::message::StreamMessage,
    deliveries: u64,
) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    for name in [subject::HDR_REPLY_TO, subject::HDR_DEADLINE, subject::HDR_TRACEPARENT] {
        if let Some(v) = stored.headers.get(name) {
            headers.insert(name, v.as_str());
        }
    }
    headers.insert(subject::HDR_REQUEUED, deliveries.to_string().as_str());
    if let Some(first) = stored.headers.get(subject::HDR_MSG_ID) {
        headers.insert(subject::HDR_MSG_ID, subject::requeued_msg_id(first.as_str()).as_str());
    }
    let ack = ctx
        .js
        .publish_with_headers(stored.subject.clone(), headers, stored.payload.clone())
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map_err(|e| e.to_string())?;
    ctx.stats.requeued.fetch_add(1, Ordering::Relaxed);
    if let Err(err) = invocations.delete_message(stored.sequence).await {
        // Exhausted, so never delivered again; the sweeper takes it after
        // its deadline and its late answer is dropped by the gateway.
        warn!(%err, seq = stored.sequence, "could not remove the exhausted original of a requeued call");
    }
    warn!(seq = stored.sequence, deliveries, "a call ran out of deliveries while its caller waits; queued again once");
    Ok(())
}

/// Moves a message stuck in `OLIN_INVOCATIONS` to `OLIN_DEAD` and tells
/// whoever waits for it. A second mover of the same message (the advisory
/// and the sweeper, two workers) writes a duplicate that `OLIN_DEAD`'s
/// duplicate window drops, under the call's own message id.
async fn move_to_dead(
    ctx: &Ctx,
    invocations: &jetstream::stream::Stream,
    stored: jetstream::message::StreamMessage,
    reason: &str,
    deliveries: u64,
) {
    let seq = stored.sequence;
    let req = InvocationRequest::decode(stored.payload.clone()).ok();
    let function = req.as_ref().map(|r| r.function.as_str());
    if let Err(err) = store(ctx, function, reason, Some(&stored.headers), stored.payload.clone()).await {
        warn!(%err, "dead-letter write failed; the message stays in the queue");
        return;
    }
    if let Err(err) = invocations.delete_message(seq).await {
        warn!(%err, seq, "could not remove the exhausted message");
    }
    // Whoever waits hears of it now: a synchronous caller on its reply
    // subject, an async one in its result.
    if let Some(req) = req {
        let resp = InvocationResponse {
            invocation_id: req.invocation_id.clone(),
            outcome: Outcome::Internal as i32,
            status: u32::from(Outcome::Internal.http_status()),
            worker_id: ctx.worker_id.clone(),
            error: format!("the call was {reason}; it is kept in {}", subject::STREAM_DEAD),
            ..Default::default()
        };
        if let Some(reply_to) = stored.headers.get(subject::HDR_REPLY_TO) {
            let deadline = deadline(Some(&stored.headers), &req);
            if let Err(err) = ctx.outbox.send(reply_to.as_str(), resp.encode_to_vec().into(), deadline).await {
                warn!(%err, "the caller of the dead-lettered call could not be told");
            }
        }
        if req.r#async {
            let result = AsyncResult {
                invocation_id: req.invocation_id.clone(),
                function: req.function.clone(),
                response: Some(resp),
                attempts: u32::try_from(deliveries).unwrap_or(u32::MAX),
                callback_url: req.callback_url.clone(),
                ..Default::default()
            };
            if let Err(err) = ctx.results.put(&req.invocation_id, result.encode_to_vec().into()).await {
                warn!(%err, "result of the exhausted async call not stored");
            }
        }
    }
    warn!(seq, reason, "invocation dead-lettered");
}

/// Messages looked at per sweep, from the oldest.
const SWEEP_BATCH: usize = 200;

/// Sweeps `OLIN_INVOCATIONS` every `every` until `stop`: a message still
/// there `stuck_after` past its deadline will never be answered (its
/// deliveries ran out, or nobody took it in time) and is moved to
/// `OLIN_DEAD`, even if the max-deliveries advisory was missed (no worker
/// listened when it fired).
pub(crate) async fn sweep(
    ctx: Arc<Ctx>,
    invocations: jetstream::stream::Stream,
    every: Duration,
    stuck_after: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let moved = sweep_once(&ctx, &invocations, stuck_after).await;
        if moved > 0 {
            info!(moved, "the sweeper dead-lettered stuck invocations");
        }
    }
}

async fn sweep_once(ctx: &Ctx, invocations: &jetstream::stream::Stream, stuck_after: Duration) -> usize {
    let first = match invocations.get_info().await {
        Ok(info) if info.state.messages > 0 => info.state.first_sequence,
        Ok(_) => return 0,
        Err(err) => {
            warn!(%err, "the sweeper cannot read the invocation stream");
            return 0;
        }
    };
    let (mut seq, mut moved) = (first, 0);
    let now = olin_proto::unix_ms();
    for _ in 0..SWEEP_BATCH {
        let next =
            invocations.raw_message_builder().sequence(seq).next_by_subject(subject::invoke_subjects()).send().await;
        let Ok(stored) = next else { break };
        seq = stored.sequence + 1;
        let deadline =
            stored.headers.get(subject::HDR_DEADLINE).and_then(|v| v.as_str().parse::<u64>().ok()).unwrap_or(u64::MAX);
        if deadline.saturating_add(stuck_after.as_millis() as u64) > now {
            continue;
        }
        let reason = format!("still queued {} s after its deadline: never answered", stuck_after.as_secs());
        move_to_dead(ctx, invocations, stored, &reason, u64::try_from(ctx.max_deliver).unwrap_or(0)).await;
        moved += 1;
    }
    moved
}
