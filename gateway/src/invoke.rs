//! Publishing an invocation and waiting for its reply.
//!
//! The gateway subscribes once to `olin.reply.<gateway-id>.*`. Each call
//! registers a one-shot slot under its invocation id before publishing; the
//! first reply fills it, and later replies for the same id (a redelivered
//! call answered twice, a reply sent again) find no slot and are dropped.
//!
//! A reply on its way to this gateway when its NATS server dies is lost
//! without a trace. So after each reconnect, with calls still waiting, the
//! gateway asks every worker to send again what it recently sent here
//! ([`subject::replay_request`]; the worker side is `olin_worker`'s outbox).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use olin_proto::Message as _;
use olin_proto::subject;
use olin_proto::v1::{AsyncResult, InvocationRequest, InvocationResponse};
use parking_lot::Mutex;
use thiserror::Error;
use tokio::sync::{oneshot, watch};
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// A call that got no reply.
#[derive(Debug, Error)]
pub(crate) enum InvokeError {
    /// The stream is at its limits: the queue is full.
    #[error("the invocation queue is full")]
    QueueFull,
    /// This function has its share of the queue already.
    #[error("this function's share of the invocation queue is full")]
    FunctionQueueFull,
    /// The request is larger than NATS' `max_payload`.
    #[error("the request is larger than the message size NATS accepts")]
    TooLarge,
    /// JetStream did not take the message: known not to be stored.
    #[error("publishing the invocation failed: {0}")]
    Publish(String),
    /// JetStream never confirmed the message, and may have stored it (an
    /// acknowledgement timed out): the call may run, so it is not refused.
    #[error("the invocation was not confirmed stored: {0}")]
    Unconfirmed(String),
    /// No reply before the deadline.
    #[error("no reply before the deadline")]
    Timeout,
    /// A name could not be built (bad function or id).
    #[error(transparent)]
    Name(#[from] subject::NameError),
}

/// Pending calls of one gateway, by invocation id.
pub(crate) struct Replies {
    pending: Mutex<HashMap<String, oneshot::Sender<InvocationResponse>>>,
    metrics: Arc<Metrics>,
}

impl Replies {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Replies { pending: Mutex::default(), metrics }
    }

    fn register(self: &Arc<Self>, id: &str) -> Pending {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id.to_owned(), tx);
        Pending { replies: self.clone(), id: id.to_owned(), rx: Some(rx) }
    }

    fn deliver(&self, id: &str, resp: InvocationResponse) {
        let slot = self.pending.lock().remove(id);
        match slot {
            Some(tx) => {
                let _ = tx.send(resp);
            }
            None => {
                self.metrics.dropped_replies.inc();
                debug!(invocation_id = id, "reply for no pending call dropped (duplicate or late)");
            }
        }
    }

    /// Receives every reply sent to this gateway until `stop`.
    pub(crate) async fn receive(self: Arc<Self>, mut sub: async_nats::Subscriber, mut stop: watch::Receiver<bool>) {
        loop {
            let msg = tokio::select! {
                m = sub.next() => m,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Some(msg) = msg else { return };
            let Some(id) = subject::invocation_id_of_reply(&msg.subject) else {
                continue;
            };
            match InvocationResponse::decode(msg.payload) {
                Ok(resp) => self.deliver(id, resp),
                Err(err) => warn!(%err, invocation_id = id, "undecodable reply dropped"),
            }
        }
    }
}

impl Replies {
    /// Until `stop`: after each reconnect of `nats`, if calls are waiting,
    /// asks the workers for this gateway's recent replies again.
    pub(crate) async fn recover(
        self: Arc<Self>,
        nats: async_nats::Client,
        gateway_id: String,
        mut stop: watch::Receiver<bool>,
    ) {
        let Ok(request) = subject::replay_request(&gateway_id) else { return };
        let reconnects = olin_nats::connect::Reconnects::new(&nats);
        loop {
            tokio::select! {
                _ = reconnects.next() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let waiting = self.pending.lock().len();
            if waiting == 0 {
                continue;
            }
            // Published after the client has subscribed again (it does so
            // first on a new connection), so the replays find the
            // subscription.
            self.metrics.replay_requests.inc();
            match nats.publish(request.clone(), bytes::Bytes::new()).await {
                Ok(()) => tracing::info!(waiting, "reconnected to NATS; asked the workers for replies again"),
                Err(err) => warn!(%err, "asking the workers for replies again failed"),
            }
        }
    }
}

/// A registered call; dropping it (timeout, client gone) frees the slot.
struct Pending {
    replies: Arc<Replies>,
    id: String,
    rx: Option<oneshot::Receiver<InvocationResponse>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.replies.pending.lock().remove(&self.id);
    }
}

/// Publishes `req` and waits up to `timeout` for its reply.
pub(crate) async fn invoke(
    js: &async_nats::jetstream::Context,
    replies: &Arc<Replies>,
    gateway_id: &str,
    req: &InvocationRequest,
    timeout: Duration,
) -> Result<InvocationResponse, InvokeError> {
    let reply_to = subject::reply_subject(gateway_id, &req.invocation_id)?;
    let mut pending = replies.register(&req.invocation_id);
    let mut rx = pending.rx.take().ok_or(InvokeError::Timeout)?;
    let wait = async {
        tokio::select! {
            published = publish(js, req, Some(&reply_to), &replies.metrics) => match published {
                Ok(()) => {}
                // Maybe stored, so maybe running: its answer is awaited as usual
                // (or the deadline is, 504), never a 503 that invites a rerun.
                Err(InvokeError::Unconfirmed(why)) => warn!(%why, "waiting for the answer of an unconfirmed call"),
                Err(e) => return Err(e),
            },
            // Answered while its publish was still unconfirmed: it was stored.
            answered = &mut rx => return answered.map_err(|_| InvokeError::Timeout),
        }
        rx.await.map_err(|_| InvokeError::Timeout)
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| InvokeError::Timeout)?
}

/// Accepts an async call: records it as pending in `OLIN_RESULTS` (before
/// publishing, so a fast worker's result is never overwritten), then
/// publishes it without a reply subject.
pub(crate) async fn accept_async(
    js: &async_nats::jetstream::Context,
    results: &async_nats::jetstream::kv::Store,
    req: &InvocationRequest,
    metrics: &Metrics,
) -> Result<(), InvokeError> {
    let pending = AsyncResult {
        invocation_id: req.invocation_id.clone(),
        function: req.function.clone(),
        callback_url: req.callback_url.clone(),
        accepted_unix_ms: olin_proto::unix_ms(),
        ..Default::default()
    };
    results
        .put(&req.invocation_id, pending.encode_to_vec().into())
        .await
        .map_err(|e| InvokeError::Publish(format!("recording the async call failed: {e}")))?;
    let published = match publish(js, req, None, metrics).await {
        // Maybe stored: accepted, and its pending result kept (it comes,
        // or the record expires with the bucket's TTL).
        Err(InvokeError::Unconfirmed(why)) => {
            warn!(%why, invocation_id = %req.invocation_id, "accepting an unconfirmed async call");
            Ok(())
        }
        other => other,
    };
    if published.is_err()
        && let Err(err) = results.delete(&req.invocation_id).await
    {
        tracing::warn!(%err, invocation_id = %req.invocation_id, "the pending result of an unpublished call stays until its TTL");
    }
    published
}

/// Publishes `req` to its function's subject, keyed by its invocation id
/// (JetStream drops a duplicate within the window), and waits for the
/// stream's acknowledgement. `reply_to` is where a synchronous caller waits.
async fn publish(
    js: &async_nats::jetstream::Context,
    req: &InvocationRequest,
    reply_to: Option<&str>,
    metrics: &Metrics,
) -> Result<(), InvokeError> {
    let subj = subject::invoke_subject(&req.function)?;
    let mut headers = HeaderMap::new();
    if let Some(reply_to) = reply_to {
        headers.insert(subject::HDR_REPLY_TO, reply_to);
    }
    headers.insert(subject::HDR_DEADLINE, req.deadline_unix_ms.to_string().as_str());
    if !req.traceparent.is_empty() {
        headers.insert(subject::HDR_TRACEPARENT, req.traceparent.as_str());
    }
    let payload: bytes::Bytes = req.encode_to_vec().into();
    // Published again under the same id while JetStream cannot confirm it:
    // the duplicate window stores it at most once. A stream without a
    // leader (a node lost, a new leader being elected: up to 9 s on NATS
    // 2.9) refuses publishes; they go through once it has one.
    let give_up = tokio::time::Instant::now() + FAILOVER_BUDGET;
    let mut backoff = PUBLISH_BACKOFF;
    let mut maybe_stored = false;
    loop {
        let message = PublishMessage::build()
            .payload(payload.clone())
            .headers(headers.clone())
            .message_id(req.invocation_id.as_str());
        let sent = match js.send_publish(subj.clone(), message).await {
            Ok(ack) => ack.await,
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => return Err(InvokeError::TooLarge),
            // Not sent at all (the connection is down): not stored.
            Err(e) => Err(e),
        };
        let err = match sent {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        // Whether the message may have been stored though no ack said so.
        maybe_stored |= matches!(err.kind(), PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe);
        let refused = classify_ack_error(&err.to_string());
        if !matches!(refused, InvokeError::Publish(_)) {
            // A limit: a final answer, and nothing was stored.
            return Err(refused);
        }
        let delay = backoff.next_delay();
        if tokio::time::Instant::now() + delay > give_up {
            let why = err.to_string();
            return Err(if maybe_stored { InvokeError::Unconfirmed(why) } else { InvokeError::Publish(why) });
        }
        warn!(%err, kind = ?err.kind(), "the invocation was not confirmed stored; publishing it again under the same id");
        metrics.publish_retries.inc();
        tokio::time::sleep(delay).await;
    }
}

/// How long a call's publish is retried while JetStream cannot confirm it:
/// past NATS 2.9's longest leader election (9 s), within the default
/// deadline (the caller's timeout cuts it shorter).
const FAILOVER_BUDGET: Duration = Duration::from_secs(12);

/// Retries of a publish start at 50 ms and double up to 1 s.
const PUBLISH_BACKOFF: olin_proto::backoff::Backoff =
    olin_proto::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));

fn classify_ack_error(text: &str) -> InvokeError {
    if text.contains("per subject") {
        InvokeError::FunctionQueueFull
    } else if text.contains("maximum messages") || text.contains("maximum bytes") || text.contains("resource limits") {
        InvokeError::QueueFull
    } else {
        InvokeError::Publish(text.to_owned())
    }
}
