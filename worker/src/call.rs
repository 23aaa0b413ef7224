//! What every path that finishes a call needs, whichever answers it (a slot,
//! the async path, the dead-letter path): the call's deadline, its
//! concurrency lease given back, its execution event. A leaf: it uses only
//! the worker's context and the contract.

use std::sync::Arc;
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

/// How long an event is offered to JetStream again before it is given up
/// (counted in `olin_worker_events_lost_total`): beyond a NATS leader
/// election (up to 9 s) and a reconnect.
const EVENT_RETRY: Duration = Duration::from_secs(30);

/// Retries start at 50 ms and double up to 2 s.
const EVENT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// An execution event on its way to `OLIN_EVENTS`: published by
/// [`Event::publish`] (which does not wait for JetStream), confirmed by
/// [`Event::stored`]. A call's message is acked only once its event is
/// stored, so a worker killed in between leaves the call to be redelivered:
/// it runs again and is recorded as a second attempt, never lost from usage.
pub(crate) struct Event {
    subject: async_nats::Subject,
    /// One run, one id: a rerun of the call is an event of its own.
    id: String,
    payload: bytes::Bytes,
    first:
        Option<Result<async_nats::jetstream::context::PublishAckFuture, async_nats::jetstream::context::PublishError>>,
}

impl Event {
    /// Publishes `event`; JetStream's acknowledgement is awaited by
    /// [`Event::stored`], so the reply can go out meanwhile.
    ///
    /// Returns once the event is handed to the connection, ahead of
    /// anything the caller publishes next (one connection keeps its
    /// messages in order), so an answer sent after it never reaches NATS
    /// without its event. A hand-over that fails (the connection's queue
    /// full during a reconnect, too many acks awaited) is tried again, for
    /// up to [`EVENT_RETRY`], before the caller answers.
    pub(crate) async fn publish(ctx: &Ctx, event: &ExecutionEvent) -> Option<Event> {
        let subject = async_nats::Subject::from(subject::event_subject(&event.function).ok()?);
        let id = format!("{}.{}.{}", event.invocation_id, event.worker_id, event.started_unix_ms);
        let payload: bytes::Bytes = event.encode_to_vec().into();
        let mut event = Event { subject, id, payload, first: None };
        let give_up = tokio::time::Instant::now() + EVENT_RETRY;
        let mut backoff = EVENT_BACKOFF;
        loop {
            match event.send(ctx).await {
                Ok(ack) => {
                    event.first = Some(Ok(ack));
                    break;
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    if tokio::time::Instant::now() + delay > give_up {
                        event.first = Some(Err(err));
                        break;
                    }
                    debug!(%err, "execution event not handed to NATS yet; trying again before answering");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Some(event)
    }

    /// Hands the event to JetStream under its message id.
    async fn send(
        &self,
        ctx: &Ctx,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, async_nats::jetstream::context::PublishError> {
        let message = PublishMessage::build().payload(self.payload.clone()).message_id(self.id.as_str());
        ctx.js.send_publish(self.subject.clone(), message).await
    }

    /// Waits until the event is stored, publishing it again (same message
    /// id: stored once) while JetStream does not confirm it, for up to
    /// [`EVENT_RETRY`]; then counts it lost.
    pub(crate) async fn stored(mut self, ctx: &Ctx) {
        let give_up = tokio::time::Instant::now() + EVENT_RETRY;
        let mut backoff = EVENT_BACKOFF;
        loop {
            let sent = match self.first.take() {
                Some(sent) => sent,
                None => self.send(ctx).await,
            };
            let err = match sent {
                Ok(ack) => match ack.await {
                    Ok(_) => return,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if tokio::time::Instant::now() + delay > give_up {
                ctx.stats.events_lost.fetch_add(1, Ordering::Relaxed);
                warn!(%err, invocation_id = %self.id, "execution event lost: JetStream did not store it in 30 s");
                return;
            }
            debug!(%err, "execution event not stored yet; publishing it again");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Confirms a published event in the background ([`Event::stored`]), one
/// of at most `WORKER_MAX_UNCONFIRMED_EVENTS` (past it, this waits: the
/// slot's next call with it); drain waits for them.
pub(crate) async fn confirm_in_background(ctx: &Arc<Ctx>, event: Event) {
    let Ok(permit) = ctx.unconfirmed_events.clone().acquire_owned().await else {
        // Closed only when the worker is gone.
        return event.stored(ctx).await;
    };
    ctx.stats.events_unconfirmed.fetch_add(1, Ordering::Relaxed);
    let ctx2 = ctx.clone();
    ctx.background.spawn(async move {
        event.stored(&ctx2).await;
        ctx2.stats.events_unconfirmed.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    });
}

/// Stores an execution event in `OLIN_EVENTS` and waits until it is.
pub(crate) async fn publish_event(ctx: &Ctx, event: &ExecutionEvent) {
    if let Some(e) = Event::publish(ctx, event).await {
        e.stored(ctx).await;
    }
}
