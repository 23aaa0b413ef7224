//! Execution events on their way to `OLIN_EVENTS`, several to a message.
//!
//! Every run leaves one `ExecutionEvent`. Stored one to a message, they cost
//! nats-server a stored message and an acknowledgement per call: about
//! 40 µs of its CPU per call on the direct path, more than the whole bare
//! request-reply (bench/README.md). Here the events of a worker's calls
//! queue while the batch before them is being stored, and go out together
//! as one `ExecutionEventBatch` per function (a group commit): alone when
//! the worker is quiet, so a call waits for nothing it did not wait for
//! before, and more to a message the busier it gets.
//!
//! What holds for each event:
//! - A reply given with it goes out only once its batch is handed to the
//!   connection, which keeps its messages in order: an answer never reaches
//!   NATS without its event. A hand-over that fails (the connection's queue
//!   full during a reconnect) is tried again, for up to [`RETRY`], before
//!   the replies behind it go.
//! - Its batch is published again under the same message id until
//!   JetStream stores it (stored once), for up to [`RETRY`]; then its events
//!   are counted in `olin_worker_events_lost_total`. Whoever waits (a queued
//!   call's ack, an async call) hears which.
//! - About `WORKER_MAX_UNCONFIRMED_EVENTS` events wait in the worker at
//!   most: a slot whose event reaches the bound waits, once its call is
//!   answered, until there is room again before it takes the next call
//!   (so at most the bound plus one per slot).
//! - The next batch goes out once the one before it is stored, or after
//!   [`GATE`] at most, so a JetStream that answers slowly holds replies back
//!   by that much, never longer.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::future::{Future, IntoFuture as _};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::subject;
use olin_proto::v1::{ExecutionEvent, ExecutionEventBatch};
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tracing::{debug, warn};

use crate::Stats;
use crate::reply::Outbox;

/// How long a batch is offered to JetStream again before its events are
/// given up: beyond a NATS leader election (up to 9 s) and a reconnect.
const RETRY: Duration = Duration::from_secs(30);

/// Retries start at 50 ms and double up to 2 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// The longest the next batch (and the replies behind it) waits for the
/// one before it to be stored. Under load a store takes well under this, so
/// this only bounds what a slow JetStream costs the callers.
const GATE: Duration = Duration::from_millis(5);

/// Events in one message at most.
const MAX_EVENTS: usize = 256;

/// Room kept in a message for its headers.
const HEADROOM: usize = 4 << 10;

/// A reply that goes out once its call's event is handed over.
pub(crate) struct Reply {
    /// The caller's reply subject.
    pub(crate) to: String,
    pub(crate) payload: Bytes,
    /// The call's deadline (Unix ms; 0: none).
    pub(crate) deadline_ms: u64,
}

/// What the recorder of an event can wait for.
pub(crate) struct Ticket {
    replied: Option<oneshot::Receiver<Result<(), async_nats::PublishError>>>,
    stored: oneshot::Receiver<bool>,
}

impl Ticket {
    /// Waits until the reply given with the event was sent (or could not be).
    ///
    /// # Errors
    /// If the client could not queue the reply (it is closed).
    pub(crate) async fn replied(&mut self) -> Result<(), async_nats::PublishError> {
        match self.replied.take() {
            Some(rx) => rx.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// Waits until the event is stored (true) or given up (false).
    pub(crate) async fn stored(self) -> bool {
        self.stored.await.unwrap_or(false)
    }
}

/// One event waiting for its batch.
struct Pending {
    /// `olin.event.<function>`.
    subject: Subject,
    /// One run, one id: a rerun of the call is an event of its own.
    id: String,
    event: ExecutionEvent,
    len: usize,
    reply: Option<(Reply, oneshot::Sender<Result<(), async_nats::PublishError>>)>,
    stored: oneshot::Sender<bool>,
}

/// The events of one message, and what waits on them.
struct Batch {
    subject: Subject,
    id: String,
    payload: Bytes,
    events: usize,
    replies: Vec<(Reply, oneshot::Sender<Result<(), async_nats::PublishError>>)>,
    waiters: Vec<oneshot::Sender<bool>>,
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// The event publisher of one worker.
pub(crate) struct Events {
    nats: async_nats::Client,
    js: async_nats::jetstream::Context,
    outbox: Arc<Outbox>,
    stats: Arc<Stats>,
    /// Unconfirmed events past which a slot waits.
    room: u64,
    /// Told when events are confirmed (or given up).
    freed: Notify,
    tasks: tokio_util::task::TaskTracker,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// A flush task runs: it takes the queue when the batch before is stored.
    flushing: bool,
}

impl Events {
    /// A publisher that holds at most `room` unconfirmed events and runs
    /// its flushes and retries on `tasks` (drain waits for them).
    pub(crate) fn new(
        nats: async_nats::Client,
        js: async_nats::jetstream::Context,
        outbox: Arc<Outbox>,
        stats: Arc<Stats>,
        room: usize,
        tasks: tokio_util::task::TaskTracker,
    ) -> Self {
        Events {
            nats,
            js,
            outbox,
            stats,
            room: room.max(1) as u64,
            freed: Notify::new(),
            tasks,
            state: Mutex::default(),
        }
    }

    /// Queues `event` for `OLIN_EVENTS`, with the `reply` that must follow
    /// it. Returns once it is queued, or, when it reaches
    /// `WORKER_MAX_UNCONFIRMED_EVENTS`, once there is room again (its reply
    /// goes out meanwhile). Must be called within the runtime.
    pub(crate) async fn record(self: &Arc<Self>, event: ExecutionEvent, reply: Option<Reply>) -> Ticket {
        let (stored_tx, stored) = oneshot::channel();
        let Ok(name) = subject::event_subject(&event.function) else {
            // Not a function name (the gateway routes none such): nothing
            // can be recorded under it, but its caller is answered.
            warn!(function = %event.function, "an execution event of an unnamable function was dropped");
            let replied = match reply {
                Some(r) => Some(self.outbox.send(&r.to, r.payload, r.deadline_ms).await),
                None => None,
            };
            let (told, replied_rx) = oneshot::channel();
            let _ = told.send(replied.unwrap_or(Ok(())));
            let _ = stored_tx.send(false);
            return Ticket { replied: Some(replied_rx), stored };
        };
        self.stats.events_unconfirmed.fetch_add(1, Ordering::Relaxed);
        let (reply, replied) = match reply {
            Some(r) => {
                let (tx, rx) = oneshot::channel();
                (Some((r, tx)), Some(rx))
            }
            None => (None, None),
        };
        let pending = Pending {
            id: format!("{}.{}.{}", event.invocation_id, event.worker_id, event.started_unix_ms),
            subject: Subject::from(name),
            len: event.encoded_len(),
            event,
            reply,
            stored: stored_tx,
        };
        let start = {
            let mut state = self.state.lock();
            state.queue.push_back(pending);
            !std::mem::replace(&mut state.flushing, true)
        };
        if start {
            self.tasks.spawn(self.clone().flush());
        }
        self.room_for_more().await;
        Ticket { replied, stored }
    }

    /// Waits until fewer than the bound of events are unconfirmed.
    async fn room_for_more(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.stats.events_unconfirmed.load(Ordering::Relaxed) < self.room {
                return;
            }
            freed.await;
        }
    }

    /// Publishes the queue, batch after batch, until it is empty.
    async fn flush(self: Arc<Self>) {
        loop {
            let round: Vec<Pending> = {
                let mut state = self.state.lock();
                if state.queue.is_empty() {
                    state.flushing = false;
                    return;
                }
                state.queue.drain(..).collect()
            };
            let max_bytes = self.nats.server_info().max_payload.saturating_sub(HEADROOM);
            let mut sent = Vec::new();
            for mut batch in batches(round, max_bytes) {
                let ack = self.hand_over(&batch).await;
                for (reply, told) in std::mem::take(&mut batch.replies) {
                    let sent = self.outbox.send(&reply.to, reply.payload, reply.deadline_ms).await;
                    if let Err(err) = &sent {
                        warn!(%err, "a reply could not be sent; a queued call is redelivered, a direct one queued by its gateway");
                    }
                    let _ = told.send(sent);
                }
                sent.push((batch, ack));
            }
            // The gate: the next round goes once these are stored, or after GATE.
            let gate = tokio::time::Instant::now() + GATE;
            for (batch, ack) in sent {
                let Ok(mut ack) = ack else {
                    self.tasks.spawn(self.clone().store(batch, None));
                    continue;
                };
                match tokio::time::timeout_at(gate, &mut ack).await {
                    Ok(Ok(_)) => self.done(batch, true),
                    Ok(Err(err)) => {
                        debug!(%err, "execution events not stored yet; publishing them again");
                        self.tasks.spawn(self.clone().store(batch, None));
                    }
                    Err(_) => {
                        self.tasks.spawn(self.clone().store(batch, Some(ack)));
                    }
                }
            }
        }
    }

    /// Hands `batch` to the connection, trying again for up to [`RETRY`].
    async fn hand_over(&self, batch: &Batch) -> Result<AckFuture, PublishError> {
        self.stats.event_messages.fetch_add(1, Ordering::Relaxed);
        let give_up = tokio::time::Instant::now() + RETRY;
        let mut backoff = BACKOFF;
        loop {
            match self.send(batch).await {
                Ok(ack) => return Ok(ack),
                Err(err) => {
                    let delay = backoff.next_delay();
                    if tokio::time::Instant::now() + delay > give_up {
                        return Err(err);
                    }
                    debug!(%err, "execution events not handed to NATS yet; trying again before answering");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn send(&self, batch: &Batch) -> Result<AckFuture, PublishError> {
        let message = PublishMessage::build().payload(batch.payload.clone()).message_id(batch.id.as_str());
        Ok(self.js.send_publish(batch.subject.clone(), message).await?.into_future())
    }

    /// Waits for `batch` to be stored (`ack`: its acknowledgement still on
    /// its way), publishing it again while JetStream does not confirm it,
    /// for up to [`RETRY`]; then counts its events lost.
    async fn store(self: Arc<Self>, batch: Batch, mut ack: Option<AckFuture>) {
        let give_up = tokio::time::Instant::now() + RETRY;
        let mut backoff = BACKOFF;
        loop {
            let result = match ack.take() {
                Some(ack) => ack.await,
                None => match self.send(&batch).await {
                    Ok(ack) => ack.await,
                    Err(err) => Err(err),
                },
            };
            let err = match result {
                Ok(_) => return self.done(batch, true),
                Err(err) => err,
            };
            let delay = backoff.next_delay();
            if tokio::time::Instant::now() + delay > give_up {
                self.stats.events_lost.fetch_add(batch.events as u64, Ordering::Relaxed);
                warn!(%err, id = %batch.id, events = batch.events, "execution events lost: JetStream did not store them in 30 s");
                return self.done(batch, false);
            }
            debug!(%err, "execution events not stored yet; publishing them again");
            tokio::time::sleep(delay).await;
        }
    }

    /// Tells the batch's waiters, and frees its room.
    fn done(&self, batch: Batch, stored: bool) {
        self.stats.events_unconfirmed.fetch_sub(batch.events as u64, Ordering::Relaxed);
        self.freed.notify_waiters();
        for waiter in batch.waiters {
            let _ = waiter.send(stored);
        }
    }
}

/// Splits a round of events into messages: one function's events each (a
/// message's subject names its function), at most [`MAX_EVENTS`] and
/// `max_bytes` of payload (an event alone always gets a message), in the
/// order they came.
fn batches(round: Vec<Pending>, max_bytes: usize) -> Vec<Batch> {
    struct Open {
        subject: Subject,
        id: String,
        events: Vec<ExecutionEvent>,
        bytes: usize,
        replies: Vec<(Reply, oneshot::Sender<Result<(), async_nats::PublishError>>)>,
        waiters: Vec<oneshot::Sender<bool>>,
    }
    fn close(open: Open) -> Batch {
        let events = open.events.len();
        let id = if events == 1 { open.id } else { format!("{}+{events}", open.id) };
        let payload = ExecutionEventBatch { events: open.events }.encode_to_vec().into();
        Batch { subject: open.subject, id, payload, events, replies: open.replies, waiters: open.waiters }
    }
    let mut done = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    for p in round {
        // A length-delimited field: its tag (two bytes for field 100), the
        // length (a varint of at most ten) and the event.
        let size = p.len + 12;
        let fresh = |p: &Pending| Open {
            subject: p.subject.clone(),
            id: p.id.clone(),
            events: Vec::new(),
            bytes: 0,
            replies: Vec::new(),
            waiters: Vec::new(),
        };
        let o = match by_subject.get(p.subject.as_str()).copied().and_then(|i| open.get_mut(i)) {
            Some(o) if o.events.len() < MAX_EVENTS && o.bytes + size <= max_bytes => o,
            Some(o) => {
                done.push(close(std::mem::replace(o, fresh(&p))));
                o
            }
            None => {
                by_subject.insert(p.subject.to_string(), open.len());
                open.push(fresh(&p));
                match open.last_mut() {
                    Some(o) => o,
                    None => continue,
                }
            }
        };
        o.bytes += size;
        o.events.push(p.event);
        if let Some(reply) = p.reply {
            o.replies.push(reply);
        }
        o.waiters.push(p.stored);
    }
    done.extend(open.into_iter().map(close));
    done
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    fn event(function: &str, i: usize) -> ExecutionEvent {
        ExecutionEvent {
            invocation_id: format!("call-{i}"),
            function: function.to_owned(),
            worker_id: "w".to_owned(),
            started_unix_ms: 1,
            stderr_tail: vec![b'x'; 100].into(),
            ..Default::default()
        }
    }

    fn pending(function: &str, i: usize) -> Pending {
        let e = event(function, i);
        Pending {
            subject: Subject::from(subject::event_subject(function).unwrap()),
            id: format!("{}.w.1", e.invocation_id),
            len: e.encoded_len(),
            event: e,
            reply: None,
            stored: oneshot::channel().0,
        }
    }

    fn ids(batch: &Batch) -> Vec<String> {
        let events = ExecutionEventBatch::decode(batch.payload.clone()).unwrap().events;
        assert_eq!(events.len(), batch.events);
        events.into_iter().map(|e| e.invocation_id).collect()
    }

    #[test]
    fn a_round_is_split_by_function_count_and_size_in_order() {
        let round: Vec<Pending> = (0..600).map(|i| pending(if i % 3 == 2 { "b" } else { "a" }, i)).collect();
        let out = batches(round, usize::MAX);
        let sizes: Vec<(String, usize)> = out.iter().map(|b| (b.subject.to_string(), b.events)).collect();
        // "a" has 400 events: one full message, then the rest; "b" 200.
        assert_eq!(
            sizes,
            [
                ("olin.event.a".to_owned(), MAX_EVENTS),
                ("olin.event.a".to_owned(), 144),
                ("olin.event.b".to_owned(), 200)
            ]
        );
        let a: Vec<String> = out.iter().filter(|b| b.subject.as_str() == "olin.event.a").flat_map(ids).collect();
        let expected: Vec<String> = (0..600).filter(|i| i % 3 != 2).map(|i| format!("call-{i}")).collect();
        assert_eq!(a, expected, "in the order they came");
        // A batch's id is its first run's, with the count: one batch, one id.
        assert_eq!(out[0].id, format!("call-0.w.1+{MAX_EVENTS}"));
        for b in &out {
            assert!(b.payload.len() <= b.events * (pending("a", 599).len + 12));
        }

        // By size: each message within the bound, an event alone always sent.
        let one = pending("a", 0).len + 12;
        let out = batches((0..10).map(|i| pending("a", i)).collect(), 3 * one);
        assert_eq!(out.iter().map(|b| b.events).collect::<Vec<_>>(), [3, 3, 3, 1]);
        assert!(out.iter().all(|b| b.payload.len() <= 3 * one));
        let out = batches((0..2).map(|i| pending("a", i)).collect(), 1);
        assert_eq!(out.iter().map(|b| b.events).collect::<Vec<_>>(), [1, 1]);
        assert_eq!(out[0].id, "call-0.w.1", "a batch of one keeps its run's id");
    }

    /// Events queued while a flush is on its way leave in one message per
    /// function, each stored once; every reply reaches NATS after its event.
    #[tokio::test(flavor = "current_thread")]
    async fn queued_events_share_a_message_and_replies_follow_them() {
        let server = olin_test_support::NatsServer::start();
        let client = server.client().await;
        let js = async_nats::jetstream::new(client.clone());
        olin_nats::topology::ensure_events(&js, &olin_nats::topology::TopologyConfig::default()).await.unwrap();
        let observer = server.client().await;
        let mut seen = observer.subscribe("olin.>").await.unwrap();
        observer.flush().await.unwrap();

        let stats = Arc::new(Stats::default());
        let outbox = Arc::new(Outbox::new(client.clone(), stats.clone()));
        let tasks = tokio_util::task::TaskTracker::new();
        let events = Arc::new(Events::new(client.clone(), js.clone(), outbox, stats.clone(), 1000, tasks.clone()));
        // One task: the flush starts only once these are all queued.
        let mut tickets = Vec::new();
        for i in 0..60 {
            let function = if i % 4 == 3 { "b" } else { "a" };
            let reply =
                Reply { to: format!("olin.test.reply.{i}"), payload: Bytes::from(format!("{i}")), deadline_ms: 0 };
            tickets.push(events.record(event(function, i), Some(reply)).await);
        }
        for mut t in tickets {
            t.replied().await.unwrap();
            assert!(t.stored().await, "stored");
        }
        assert_eq!(stats.event_messages.load(Ordering::Relaxed), 2, "one message per function");
        assert_eq!(stats.events_unconfirmed.load(Ordering::Relaxed), 0);

        let stored = olin_test_support::stream::events(&js).await;
        let mut stored_ids: Vec<String> = stored.iter().map(|e| e.invocation_id.clone()).collect();
        stored_ids.sort();
        let mut expected: Vec<String> = (0..60).map(|i| format!("call-{i}")).collect();
        expected.sort();
        assert_eq!(stored_ids, expected, "each event stored once");

        // In the order NATS passed them on: each reply after its event.
        let mut published = std::collections::HashSet::new();
        let mut replies = 0;
        while replies < 60 {
            let m = tokio::time::timeout(Duration::from_secs(5), seen.next()).await.unwrap().unwrap();
            if let Some(i) = m.subject.as_str().strip_prefix("olin.test.reply.") {
                assert!(published.contains(&format!("call-{i}")), "the reply of call {i} came before its event");
                replies += 1;
            } else {
                for e in ExecutionEventBatch::events_in(&m.payload).unwrap() {
                    published.insert(e.invocation_id);
                }
            }
        }
        tasks.close();
        tasks.wait().await;
    }
}
