//! Sending an invocation and waiting for its reply.
//!
//! A synchronous call goes to a worker directly (core NATS, one worker of a
//! queue group: one message each way) unless the gateway is set to queue
//! every call; a direct call that no worker takes or whose worker goes
//! quiet is queued in JetStream instead, under the same id (see [`Path`]).
//! Async calls are always queued.
//!
//! The gateway subscribes once to `olin.reply.<gateway-id>.*`. Each call
//! registers a slot under its invocation id before it is sent; the first
//! answer fills it, and later answers for the same id (a redelivered call
//! answered twice, a reply sent again, a direct run that was thought lost)
//! find no slot and are dropped.
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
use tokio::sync::{mpsc, watch};
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

/// What a gateway hears on a call's reply subject.
#[derive(Debug)]
enum Heard {
    /// The call's answer.
    Answer(Box<InvocationResponse>),
    /// A direct call still runs on its worker.
    Running,
    /// A direct call was not taken (the reason, for the metric): it is
    /// queued instead.
    NotTaken(&'static str),
}

/// Pending calls of one gateway, by invocation id.
pub(crate) struct Replies {
    pending: Mutex<HashMap<String, mpsc::Sender<Heard>>>,
    metrics: Arc<Metrics>,
    /// Direct calls in flight from this gateway, by function.
    direct: Mutex<HashMap<String, usize>>,
    /// The most a function may have in flight directly from this gateway:
    /// its share of the queue (`invocations_max_msgs_per_function`), so a
    /// flood of one function cannot take every worker's slots by the
    /// direct path when the queue would have refused it; past it, calls
    /// are queued (and refused when the function's share is full).
    direct_share: usize,
}

impl Replies {
    pub(crate) fn new(metrics: Arc<Metrics>, direct_share: usize) -> Self {
        Replies { pending: Mutex::default(), metrics, direct: Mutex::default(), direct_share: direct_share.max(1) }
    }

    /// A place for one more direct call of `function`, if it has not its
    /// share in flight already.
    fn direct_place(self: &Arc<Self>, function: &str) -> Option<DirectPlace> {
        let mut direct = self.direct.lock();
        let n = direct.entry(function.to_owned()).or_default();
        if *n >= self.direct_share {
            return None;
        }
        *n += 1;
        Some(DirectPlace { replies: self.clone(), function: function.to_owned() })
    }

    fn register(self: &Arc<Self>, id: &str) -> Pending {
        // Room for what a direct call hears before its answer (a few
        // `running` notes); more is dropped, which only delays a note.
        let (tx, rx) = mpsc::channel(4);
        self.pending.lock().insert(id.to_owned(), tx);
        Pending { replies: self.clone(), id: id.to_owned(), rx }
    }

    fn deliver(&self, id: &str, heard: Heard) {
        let slot = match heard {
            Heard::Answer(_) => self.pending.lock().remove(id),
            Heard::Running | Heard::NotTaken(_) => self.pending.lock().get(id).cloned(),
        };
        match slot {
            Some(tx) => {
                let _ = tx.try_send(heard);
            }
            None if matches!(heard, Heard::Answer(_)) => {
                self.metrics.dropped_replies.inc();
                debug!(invocation_id = id, "reply for no pending call dropped (duplicate or late)");
            }
            None => {}
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
            if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                self.deliver(id, Heard::NotTaken("no_workers"));
                continue;
            }
            match msg.headers.as_ref().and_then(|h| h.get(subject::HDR_DIRECT)).map(|v| v.as_str()) {
                Some(subject::DIRECT_RUNNING) => self.deliver(id, Heard::Running),
                Some(_) => self.deliver(id, Heard::NotTaken("not_taken")),
                None => match InvocationResponse::decode(msg.payload) {
                    Ok(resp) => self.deliver(id, Heard::Answer(Box::new(resp))),
                    Err(err) => warn!(%err, invocation_id = id, "undecodable reply dropped"),
                },
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

/// A direct call in flight; dropping it frees its function's place.
struct DirectPlace {
    replies: Arc<Replies>,
    function: String,
}

impl Drop for DirectPlace {
    fn drop(&mut self) {
        let mut direct = self.replies.direct.lock();
        if let Some(n) = direct.get_mut(&self.function) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                direct.remove(&self.function);
            }
        }
    }
}

/// A registered call; dropping it (timeout, client gone) frees the slot.
struct Pending {
    replies: Arc<Replies>,
    id: String,
    rx: mpsc::Receiver<Heard>,
}

impl Pending {
    /// The call's answer, whatever else is heard before it.
    async fn answer(&mut self) -> Result<InvocationResponse, InvokeError> {
        loop {
            match self.rx.recv().await {
                Some(Heard::Answer(resp)) => return Ok(*resp),
                Some(Heard::Running | Heard::NotTaken(_)) => {}
                None => return Err(InvokeError::Timeout),
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.replies.pending.lock().remove(&self.id);
    }
}

/// How a synchronous call reaches a worker: directly (core NATS, queued
/// when no worker takes it), or through the queue (JetStream).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path {
    /// Sent to one worker of the direct queue group, which answers or says
    /// it is running at least every `liveness`; queued if it does not.
    Direct { liveness: Duration },
    /// Published to `OLIN_INVOCATIONS`.
    Queue,
}

/// Sends `req` by `path` and waits up to `timeout` for its reply.
pub(crate) async fn invoke(
    nats: &async_nats::Client,
    js: &async_nats::jetstream::Context,
    replies: &Arc<Replies>,
    gateway_id: &str,
    req: &InvocationRequest,
    path: Path,
    timeout: Duration,
) -> Result<InvocationResponse, InvokeError> {
    let reply_to = subject::reply_subject(gateway_id, &req.invocation_id)?;
    let mut pending = replies.register(&req.invocation_id);
    let metrics = &replies.metrics;
    let wait = async {
        if let Path::Direct { liveness } = path {
            let sent = match replies.direct_place(&req.function) {
                Some(_place) => {
                    // A quiet worker may be hung: its pull requests still
                    // hold it a place in the queue for up to the worker's
                    // pull expiry (1 s), so the call is first sent directly
                    // once more (to any worker of the group; a first run
                    // that answers after all answers the call).
                    match direct(nats, req, &reply_to, &mut pending, liveness, metrics).await? {
                        Direct::Queue("silent") => {
                            metrics.direct_resent.inc();
                            direct(nats, req, &reply_to, &mut pending, liveness, metrics).await?
                        }
                        sent => sent,
                    }
                }
                None => Direct::Queue("function_share"),
            };
            match sent {
                Direct::Answered(resp) => return Ok(*resp),
                Direct::Queue(reason) => {
                    debug!(reason, "queuing a direct call");
                    metrics.direct_queued(reason);
                }
            }
        }
        tokio::select! {
            published = publish(js, req, Some(&reply_to), metrics) => match published {
                Ok(()) => {}
                // Maybe stored, so maybe running: its answer is awaited as usual
                // (or the deadline is, 504), never a 503 that invites a rerun.
                Err(InvokeError::Unconfirmed(why)) => warn!(%why, "waiting for the answer of an unconfirmed call"),
                Err(e) => return Err(e),
            },
            // Answered while its publish was still unconfirmed: it was stored
            // (or a direct run answered after all).
            answered = pending.answer() => return answered,
        }
        pending.answer().await
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| InvokeError::Timeout)?
}

/// The headers every call carries, however it is sent: its deadline and
/// its caller's trace context.
fn call_headers(req: &InvocationRequest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(subject::HDR_DEADLINE, req.deadline_unix_ms.to_string().as_str());
    if !req.traceparent.is_empty() {
        headers.insert(subject::HDR_TRACEPARENT, req.traceparent.as_str());
    }
    headers
}

/// How a direct call ended.
enum Direct {
    Answered(Box<InvocationResponse>),
    /// Queue it, for this reason.
    Queue(&'static str),
}

/// Sends `req` to one worker directly and waits for its answer while the
/// worker is heard from at least every `liveness`. A worker that has no
/// free slot says so at once, no worker at all is told by NATS (no
/// responders), and a worker that dies, hangs or is cut off goes quiet: in
/// each case the call is queued instead, under the same invocation id, and
/// a late answer of the first run is dropped as a duplicate.
async fn direct(
    nats: &async_nats::Client,
    req: &InvocationRequest,
    reply_to: &str,
    pending: &mut Pending,
    liveness: Duration,
    metrics: &Metrics,
) -> Result<Direct, InvokeError> {
    let subj = subject::direct_subject(&req.function)?;
    let mut headers = call_headers(req);
    // How often the worker says the call is running: four times a window.
    let every = u64::try_from((liveness / 4).as_millis()).unwrap_or(u64::MAX);
    headers.insert(subject::HDR_DIRECT, every.to_string().as_str());
    let payload: bytes::Bytes = req.encode_to_vec().into();
    match nats.publish_with_reply_and_headers(subj, reply_to.to_owned(), headers, payload).await {
        Ok(()) => {
            metrics.direct_calls.inc();
        }
        Err(e) if e.kind() == async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
            return Err(InvokeError::TooLarge);
        }
        Err(err) => {
            warn!(%err, "a direct call could not be sent; queuing it");
            return Ok(Direct::Queue("unsent"));
        }
    }
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            h = pending.rx.recv() => match h {
                Some(Heard::Answer(resp)) => return Ok(Direct::Answered(resp)),
                Some(Heard::Running) => heard = tokio::time::Instant::now(),
                Some(Heard::NotTaken(reason)) => return Ok(Direct::Queue(reason)),
                None => return Err(InvokeError::Timeout),
            },
            () = tokio::time::sleep_until(heard + liveness) => return Ok(Direct::Queue("silent")),
        }
    }
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
    let mut headers = call_headers(req);
    if let Some(reply_to) = reply_to {
        headers.insert(subject::HDR_REPLY_TO, reply_to);
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
