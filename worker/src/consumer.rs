//! The pull loop: the worker asks the shared `workers` consumer for exactly
//! as many messages as it has free execution slots, and hands each message
//! to the slots (see `slots`), which run, answer and acknowledge it.
//!
//! A slot acknowledges a finished call with `+NXT`: the ack also asks the
//! server for that slot's next message. While the queue has work, a call
//! therefore costs one message from the worker to NATS besides the reply and
//! the event, and the pull loop is not woken at all; it only tops up what
//! expired, what a plain ack freed (a dead letter, a nak, an async call, the
//! drain) and the start.

mod slots;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::consumer::{PullConsumer, pull::BatchConfig};
use async_nats::jetstream::{self, AckKind};
use async_nats::{StatusCode, Subject};
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt};
use olin_proto::subject;
use tokio::sync::{Notify, watch};
use tracing::{debug, error, warn};

use crate::Ctx;
use crate::admission::Admission;

/// How long one pull request waits on the server for a message. Short: a
/// hung worker's requests hold it a place in the queue until they expire,
/// and a message delivered there waits for the ack wait (gateways resend a
/// direct call that went quiet directly once, for about this long, before
/// they queue it).
const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// What the pull loop and the execution slots share: the count of free slots
/// and of messages asked for, which together decide how much to pull.
pub(crate) struct Pulls {
    /// The subscription pulled messages arrive on.
    inbox: Subject,
    /// Execution slots of this worker.
    concurrency: usize,
    /// Slots holding a message (queued for or running on a slot thread).
    busy: AtomicUsize,
    /// Messages asked for and not yet arrived or expired.
    outstanding: AtomicUsize,
    /// When the last pull request was made, in ms since `epoch`: all of them
    /// expire within [`PULL_EXPIRES`], so after that long without one the
    /// outstanding count is surely stale (a status lost in a NATS restart)
    /// and is reset, which keeps a lost status from stalling the worker.
    last_request_ms: AtomicU64,
    epoch: Instant,
    /// The client's reconnects: one (perhaps to a restarted server) may have
    /// dropped the outstanding requests.
    reconnects: olin_nats::connect::Reconnects,
    /// Set when draining: acks stop asking for more.
    stopping: AtomicBool,
    /// Woken when a slot frees without asking for its next message.
    freed: Notify,
    /// The `+NXT` payload: ack, and ask for one more message on `inbox`.
    ack_next: Bytes,
    /// The worker's memory: no pulls while a call waits for it, and no more
    /// than it admits at `typical` bytes a call.
    admission: Arc<Admission>,
    typical: u64,
}

impl Pulls {
    fn new(
        inbox: Subject,
        concurrency: usize,
        client: Arc<async_nats::Statistics>,
        admission: Arc<Admission>,
        typical: u64,
    ) -> Self {
        let ack_next = format!("+NXT {{\"batch\":1,\"expires\":{}}}", PULL_EXPIRES.as_nanos());
        Pulls {
            inbox,
            concurrency,
            busy: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            last_request_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            reconnects: olin_nats::connect::Reconnects::of(client),
            stopping: AtomicBool::new(false),
            freed: Notify::new(),
            ack_next: Bytes::from(ack_next),
            admission,
            typical,
        }
    }

    /// Counts `n` more messages as asked for (before asking, so a message
    /// that arrives at once finds its request counted).
    fn requested(&self, n: usize) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_request_ms.store(now, Ordering::Relaxed);
        self.outstanding.fetch_add(n, Ordering::AcqRel);
    }

    /// Counts `n` asked-for messages as arrived or expired.
    fn settled(&self, n: usize) {
        let _ = self.outstanding.fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| Some(o.saturating_sub(n)));
    }

    fn last_request(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_request_ms.load(Ordering::Relaxed))
    }

    /// Slots free and not yet asked for, as far as memory admits them (none
    /// while a call waits for memory).
    fn wanted(&self) -> usize {
        let free = self.concurrency.saturating_sub(self.busy.load(Ordering::Acquire));
        let admitted = self.admission.admits(self.typical);
        free.min(admitted).saturating_sub(self.outstanding.load(Ordering::Acquire))
    }

    /// Acknowledges a finished call. Unless draining (or short of memory),
    /// the ack is a `+NXT` that also asks for the slot's next message;
    /// returns whether it did.
    pub(crate) async fn ack(&self, ctx: &Ctx, msg: &jetstream::Message) -> bool {
        let Some(ack_subject) = msg.reply.clone() else {
            warn!("pulled message without an ack subject");
            return false;
        };
        if !self.stopping.load(Ordering::Acquire) && self.admission.admits(self.typical) > 0 {
            self.requested(1);
            match ctx.nats.publish_with_reply(ack_subject, self.inbox.clone(), self.ack_next.clone()).await {
                Ok(()) => return true,
                Err(err) => {
                    self.settled(1);
                    warn!(%err, "ack failed; the call may run again and its duplicate reply be dropped");
                    return false;
                }
            }
        }
        if let Err(err) = msg.ack_with(AckKind::Ack).await {
            warn!(%err, "ack failed; the call may run again and its duplicate reply be dropped");
        }
        false
    }
}

/// Pulls work for `concurrency` execution slots until `stop`, then drains:
/// no more requests, the messages already asked for still run, and the
/// calls in flight finish.
///
/// One inbox subscription per worker; a request asks for exactly the slots
/// that are free and not already asked for, so the worker never holds a
/// message it cannot start at once (another worker gets it instead).
/// Requests count as outstanding until their messages arrive or the server
/// reports them expired (status 408 with `Nats-Pending-Messages`).
pub(crate) async fn pull(ctx: Arc<Ctx>, consumer: PullConsumer, concurrency: usize, mut stop: watch::Receiver<bool>) {
    let inbox = Subject::from(ctx.nats.new_inbox());
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
    // Direct calls: one worker of the queue group gets each.
    let queue_group = subject::DIRECT_QUEUE_GROUP.to_owned();
    let mut direct = match ctx.nats.queue_subscribe(subject::direct_subjects(), queue_group).await {
        Ok(sub) => Some(sub),
        Err(err) => {
            // Gateways queue the calls no worker listens for.
            warn!(%err, "cannot subscribe for direct calls; this worker takes queued calls only");
            None
        }
    };
    let (slots, pulls) = match slots::Slots::start(ctx.clone(), inbox, concurrency) {
        Ok(started) => started,
        Err(err) => {
            error!(%err, "cannot start execution slots; this worker takes no calls");
            return;
        }
    };
    let mut direct_call = None;
    loop {
        if pulls.reconnects.happened() || pulls.last_request().elapsed() > PULL_EXPIRES + Duration::from_millis(500) {
            pulls.outstanding.store(0, Ordering::Release);
        }
        let stopping = pulls.stopping.load(Ordering::Acquire);
        let want = pulls.wanted();
        if !stopping && want > 0 {
            let batch = BatchConfig { batch: want, expires: Some(PULL_EXPIRES), ..Default::default() };
            pulls.requested(want);
            if let Err(err) = consumer.request_batch(batch, pulls.inbox.clone()).await {
                pulls.settled(want);
                warn!(%err, "pull request failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        if stopping
            && (pulls.outstanding.load(Ordering::Acquire) == 0 || ctx.nats.connection_state() != State::Connected)
        {
            break;
        }
        // Wake up for a message, a freed slot, the stop signal, or the
        // moment outstanding requests have surely expired.
        let expiry =
            tokio::time::sleep_until((pulls.last_request() + PULL_EXPIRES + Duration::from_millis(600)).into());
        tokio::select! {
            msg = sub.next() => {
                let Some(msg) = msg else { break };
                take(&ctx, &pulls, &slots, msg);
                // Whatever else has arrived too, before asking for more: one
                // request then replaces several that expired together.
                while let Some(Some(msg)) = sub.next().now_or_never() {
                    take(&ctx, &pulls, &slots, msg);
                }
            }
            msg = next_direct(&mut direct) => match msg {
                Some(msg) => direct_call = Some(msg),
                None => direct = None,
            },
            _ = pulls.freed.notified() => {}
            _ = expiry => {}
            _ = stop.wait_for(|s| *s), if !stopping => pulls.stopping.store(true, Ordering::Release),
        }
        // Awaited out of the select: its output holds the stop signal's guard.
        if let Some(msg) = direct_call.take() {
            slots.direct(&ctx, msg).await;
        }
        if pulls.stopping.load(Ordering::Acquire) && direct.is_some() {
            stop_direct(&ctx, direct.take()).await;
        }
    }
    // Finish the calls in flight.
    slots.join().await;
}

/// The next direct call, if the worker listens for them.
async fn next_direct(direct: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match direct {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

/// Stops taking direct calls (draining): unsubscribes, then hands back
/// those that arrived meanwhile, so their gateways queue them at once.
async fn stop_direct(ctx: &Ctx, direct: Option<async_nats::Subscriber>) {
    let Some(mut sub) = direct else { return };
    if let Err(err) = sub.unsubscribe().await {
        warn!(%err, "unsubscribing from direct calls failed");
    }
    while let Some(Some(msg)) = sub.next().now_or_never() {
        slots::not_taken(ctx, msg.reply.as_deref()).await;
    }
}

/// Takes one message from the pull inbox: a call goes to the slots, a status
/// settles the requests it reports expired.
fn take(ctx: &Ctx, pulls: &Pulls, slots: &slots::Slots, msg: async_nats::Message) {
    match msg.status {
        None => {
            pulls.settled(1);
            slots.run(jetstream::Message { message: msg, context: ctx.js.clone() });
        }
        Some(StatusCode::TIMEOUT | StatusCode::NOT_FOUND | StatusCode::REQUEST_TERMINATED) => {
            let pending = msg
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Pending-Messages"))
                .and_then(|v| v.as_str().parse::<usize>().ok());
            match pending {
                Some(n) => pulls.settled(n),
                None => debug!(status = ?msg.status, "pull status without pending count"),
            }
        }
        Some(status) => debug!(?status, description = ?msg.description, "pull status"),
    }
}
