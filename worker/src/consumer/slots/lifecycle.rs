//! One call's life on a slot, apart from running the guest: decoding and
//! checking the message, preparing the run (deadline, secrets, module),
//! and finishing it (reply, event, ack or nak).
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::subject;
use olin_proto::v1::{InvocationRequest, InvocationResponse, Outcome};
use tracing::{info, warn};

use crate::call::{Event, deliveries, event_of, release_lease};
use crate::consumer::Pulls;
use crate::{Ctx, async_call};

/// Clips the call's wall time to what is left before its deadline: a guest
/// that starts late (it waited in the queue, for memory, for its module)
/// must not run on after its caller has been answered 504.
pub(super) fn clip_to_deadline(ctx: &Ctx, req: &mut InvocationRequest, deadline_ms: u64) {
    if deadline_ms == 0 {
        return;
    }
    let left = deadline_ms.saturating_sub(olin_proto::unix_ms()).max(1);
    let wall = olin::Limits::resolve(req.limits.as_ref(), &ctx.defaults, &ctx.maxima).wall;
    if Duration::from_millis(left) < wall {
        req.limits.get_or_insert_with(Default::default).wall_ms = left;
    }
}

/// The request's environment with its sealed secrets opened, or `None` if it
/// has none.
///
/// # Errors
/// Which secret did not open, and why (never its value).
pub(super) fn open_secrets(
    ring: Option<&olin_proto::sealed::Keyring>,
    req: &InvocationRequest,
) -> Result<Option<Vec<olin_proto::v1::EnvVar>>, String> {
    if req.env.iter().all(|v| v.key_id.is_empty()) {
        return Ok(None);
    }
    let ring = ring.ok_or("the function has secret values and this worker has no keys (OLIN_SECRETS_KEYS)")?;
    let opened = req.env.iter().map(|v| {
        if v.key_id.is_empty() {
            return Ok(v.clone());
        }
        let value = ring
            .open(&req.function, &v.name, &v.key_id, &v.value)
            .map_err(|e| format!("the secret {} did not open: {e}", v.name))?;
        Ok(olin_proto::v1::EnvVar::plain(v.name.clone(), value))
    });
    opened.collect::<Result<Vec<_>, String>>().map(Some)
}

pub(super) fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// The invocation in a message, or why it goes to `OLIN_DEAD`.
pub(super) fn decode(payload: &bytes::Bytes) -> Result<InvocationRequest, String> {
    match InvocationRequest::decode(payload.clone()) {
        Ok(req) if subject::is_valid_function_name(&req.function) && !req.invocation_id.is_empty() => Ok(req),
        Ok(req) => Err(format!("invalid invocation: function {:?}, id {:?}", req.function, req.invocation_id)),
        Err(err) => Err(format!("undecodable InvocationRequest: {err}")),
    }
}

/// Where a call came from.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// Pulled from `OLIN_INVOCATIONS`: acked, nak'd, redelivered.
    Queued(&'a jetstream::Message),
    /// Sent to this worker directly: nothing to ack; a call this worker
    /// cannot run now is handed back to the gateway, which queues it.
    Direct,
}

/// One call, decoded, with what its headers say.
pub(super) struct Call<'a> {
    pub(super) source: Source<'a>,
    pub(super) req: InvocationRequest,
    /// Where the caller waits (`Olin-Reply-To`); none for an async call.
    pub(super) reply_to: Option<&'a str>,
    /// Unix ms; 0 for none.
    pub(super) deadline_ms: u64,
    pub(super) started_ms: u64,
}

/// Redelivery delays while the module store is unavailable: 500 ms after
/// the first delivery, doubling up to 4 s.
pub(super) const STORE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));

/// Checks the deadline and loads the module.
pub(super) async fn prepare(ctx: &Ctx, call: &Call<'_>) -> Prepared {
    let req = &call.req;
    if call.deadline_ms != 0 && call.started_ms >= call.deadline_ms {
        let passed = platform_response(ctx, req, Outcome::Timeout, "the deadline passed before a worker was free");
        return Prepared::Answer(Box::new(passed));
    }
    let msg = match call.source {
        Source::Queued(msg) => msg,
        Source::Direct => {
            return match ctx.modules.get(&req.module_sha256).await {
                Ok(module) => Prepared::Run(module),
                Err(err) if err.is_transient() => {
                    // The queue's redeliveries with backoff are made for this.
                    warn!(%err, "module store unavailable; handing the direct call back to be queued");
                    not_taken(ctx, call.reply_to).await;
                    Prepared::Settled
                }
                Err(err) => {
                    warn!(%err, "module unavailable");
                    let why = err.to_string();
                    Prepared::Answer(Box::new(platform_response(ctx, req, Outcome::ModuleUnavailable, &why)))
                }
            };
        }
    };
    let delivered = deliveries(msg);
    match ctx.modules.get(&req.module_sha256).await {
        Ok(module) => Prepared::Run(module),
        Err(err) if err.is_transient() && delivered < ctx.max_deliver => {
            warn!(%err, delivered, "module store unavailable; nak for redelivery");
            let delay = STORE_BACKOFF.delay(u32::try_from(delivered).unwrap_or(0));
            if let Err(err) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                warn!(%err, "nak failed");
            }
            Prepared::Settled
        }
        Err(err) => {
            warn!(%err, "module unavailable");
            Prepared::Answer(Box::new(platform_response(ctx, req, Outcome::ModuleUnavailable, &err.to_string())))
        }
    }
}

pub(super) fn platform_response(
    ctx: &Ctx,
    req: &InvocationRequest,
    outcome: Outcome,
    error: &str,
) -> InvocationResponse {
    InvocationResponse {
        invocation_id: req.invocation_id.clone(),
        outcome: outcome as i32,
        status: u32::from(outcome.http_status()),
        worker_id: ctx.worker_id.clone(),
        error: error.to_owned(),
        ..Default::default()
    }
}

/// Reply, store the event, then ack: the reply is sent before the ack, so
/// an acked call has always been answered (the outbox sends the reply again
/// if it may have been lost on the way, see `reply`), and the event is
/// stored before it, so an acked call is always recorded. Returns whether
/// the ack asked for the slot's next message.
///
/// A direct call has no ack: its event is published before its reply (NATS
/// has it before the caller has the answer, whatever happens to this worker
/// next) and confirmed in the background ([`call::Unconfirmed`]).
pub(super) async fn finish(ctx: &Arc<Ctx>, pulls: &Pulls, call: &Call<'_>, resp: InvocationResponse) -> bool {
    let req = &call.req;
    let resp = fit_in_a_message(ctx, req, resp, ctx.nats.server_info().max_payload);
    ctx.stats.executions.fetch_add(1, Ordering::Relaxed);
    info!(
        outcome = resp.outcome().header_value(),
        status = resp.status,
        wall_us = resp.usage.as_ref().map_or(0, |u| u.wall_us),
        "executed"
    );
    let event = event_of(req, &resp, call.started_ms);
    if let (true, Source::Queued(msg)) = (req.r#async, call.source) {
        let delivered = deliveries(msg);
        async_call::finish(ctx, msg, req, resp, event, delivered).await;
        return false;
    }
    // Before the reply: a caller that calls again once answered must find
    // its lease free, and its idempotent retry the answer.
    release_lease(ctx, req).await;
    async_call::store_idempotent(ctx, req, &resp).await;
    // The event is on its way while the reply goes out; the ack waits for
    // both (see `call::Event`).
    let event = Event::publish(ctx, &event).await;
    let replied = match call.reply_to {
        Some(reply_to) => ctx.outbox.send(reply_to, resp.encode_to_vec().into(), call.deadline_ms).await,
        None => Ok(()),
    };
    let msg = match call.source {
        Source::Queued(msg) => msg,
        Source::Direct => {
            if let Err(err) = replied {
                // The gateway hears nothing more and queues the call.
                warn!(%err, "reply to a direct call failed; its caller queues it again");
            }
            if let Some(event) = event {
                crate::call::confirm_in_background(ctx, event).await;
            }
            return false;
        }
    };
    if let Err(err) = replied {
        // Not acked: the call is redelivered and answered again.
        warn!(%err, "reply failed; nak");
        nak(msg, Duration::from_millis(100)).await;
        return false;
    }
    if let Some(event) = event {
        event.stored(ctx).await;
    }
    pulls.ack(ctx, msg).await
}

/// Tells the gateway waiting on `reply_to` that this worker does not take
/// its direct call (no free slot, no module now): it queues the call.
pub(in crate::consumer) async fn not_taken(ctx: &Ctx, reply_to: Option<&str>) {
    ctx.stats.direct_not_taken.fetch_add(1, Ordering::Relaxed);
    let Some(reply_to) = reply_to else { return };
    let mut headers = HeaderMap::new();
    headers.insert(subject::HDR_DIRECT, subject::DIRECT_NOT_TAKEN);
    let told = ctx.nats.publish_with_headers(reply_to.to_owned(), headers, bytes::Bytes::new()).await;
    if let Err(err) = told {
        // The gateway queues it when it hears nothing.
        warn!(%err, "could not hand a direct call back");
    }
}

/// Room kept in a message for what wraps an answer (headers, the async
/// result around it).
pub(super) const MESSAGE_OVERHEAD: usize = 64 << 10;

/// `resp`, or, if it cannot travel in one NATS message of `max_payload`
/// bytes, an `OUTPUT_TOO_LARGE` answer saying so (with the run's usage):
/// sending it again could never succeed, so the call is answered once
/// instead of being redelivered until it is dead-lettered.
pub(super) fn fit_in_a_message(
    ctx: &Ctx,
    req: &InvocationRequest,
    resp: InvocationResponse,
    max_payload: usize,
) -> InvocationResponse {
    let size = resp.encoded_len();
    if size.saturating_add(MESSAGE_OVERHEAD) <= max_payload {
        return resp;
    }
    let why = format!(
        "the answer ({size} bytes) is larger than the messages NATS carries here (max_payload {max_payload} bytes)"
    );
    warn!(size, max_payload, "answer too large for one message");
    InvocationResponse { usage: resp.usage, ..platform_response(ctx, req, Outcome::OutputTooLarge, &why) }
}

/// Asks for `msg` again after `delay`. A nak that fails is logged: the call
/// then comes back only after its ack wait.
pub(super) async fn nak(msg: &async_nats::jetstream::Message, delay: Duration) {
    if let Err(err) = msg.ack_with(AckKind::Nak(Some(delay))).await {
        warn!(%err, "nak failed; the call is redelivered after its ack wait");
    }
}

/// What a call needs before its guest runs.
pub(super) enum Prepared {
    /// Run this module.
    Run(olin::Module),
    /// Answer without running (deadline passed, module unavailable).
    Answer(Box<InvocationResponse>),
    /// Already settled (nak'd for redelivery).
    Settled,
}
