//! Execution slots: one OS thread per slot, each taking pulled messages from
//! one queue and running the whole call: decode, deadline check, module
//! lookup, the guest run, reply, event, ack. Guest faults are replies;
//! infrastructure faults are naks with backoff.
//!
//! Why threads of their own rather than a task per call that runs the guest
//! with `spawn_blocking`: that crossed threads four times per call (pull loop,
//! task, blocking pool, task, pull loop again), each crossing a wake-up
//! through the kernel; it measured 7.3 futex calls per call, the largest
//! avoidable cost of the queue path. A slot thread drives the call's NATS
//! I/O with `Handle::block_on` (a publish only queues a command for the
//! connection task) and runs the guest outside it, so a guest's outbound
//! HTTP can use the runtime too.
//!
//! Long runs keep their message: one task sends `AckProgress` for every call
//! that has run half the ack wait, instead of a timer per call.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::{self, AckKind};
use async_nats::{HeaderMap, Subject};
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::subject;
use olin_proto::v1::{InvocationRequest, InvocationResponse, Outcome};
use parking_lot::{Condvar, Mutex};
use tokio::runtime::Handle;
use tracing::{info, warn};

use super::Pulls;
use crate::call::{deadline, event_of, publish_event, release_lease};
use crate::{Ctx, async_call, dead_letter};

/// When a call answered across a reconnect is offered again: time for every
/// gateway to be back and subscribed.
const RECONNECT_REDELIVERY: Duration = Duration::from_secs(1);

/// The slot threads of one worker and the queue that feeds them.
pub(super) struct Slots {
    jobs: Arc<Queue<jetstream::Message>>,
    threads: Vec<JoinHandle<()>>,
    pulls: Arc<Pulls>,
    keep_alive: tokio::task::JoinHandle<()>,
}

impl Slots {
    /// Starts `concurrency` slot threads and the progress task; pulled
    /// messages arrive on `inbox`. Must be called within the runtime.
    ///
    /// # Errors
    /// If not a single thread could be started. A slot whose thread could not
    /// start counts as busy for good, so nothing is pulled for it.
    pub(super) fn start(ctx: Arc<Ctx>, inbox: Subject, concurrency: usize) -> std::io::Result<(Slots, Arc<Pulls>)> {
        let typical = ctx.defaults.reservation_bytes();
        let pulls = Arc::new(Pulls::new(inbox, concurrency, ctx.nats.statistics(), ctx.admission.clone(), typical));
        let running = Arc::new(Running { calls: (0..concurrency).map(|_| Mutex::new(None)).collect() });
        let jobs = Arc::new(Queue::default());
        let rt = Handle::current();
        let mut threads = Vec::with_capacity(concurrency);
        for index in 0..concurrency {
            let slot = Slot { ctx: ctx.clone(), pulls: pulls.clone(), running: running.clone(), index, rt: rt.clone() };
            let jobs = jobs.clone();
            match std::thread::Builder::new().name(format!("olin-slot-{index}")).spawn(move || slot.serve(&jobs)) {
                Ok(thread) => threads.push(thread),
                Err(err) if threads.is_empty() => return Err(err),
                Err(err) => {
                    warn!(%err, started = threads.len(), concurrency, "fewer execution slots than configured");
                    pulls.busy.fetch_add(concurrency - threads.len(), Ordering::AcqRel);
                    break;
                }
            }
        }
        let keep_alive = tokio::spawn(keep_alive(ctx, running));
        Ok((Slots { jobs, threads, pulls: pulls.clone(), keep_alive }, pulls))
    }

    /// Queues a pulled message for the next free slot.
    pub(super) fn run(&self, msg: jetstream::Message) {
        self.pulls.busy.fetch_add(1, Ordering::AcqRel);
        if self.jobs.push(msg).is_err() {
            // Cannot happen while the loop runs; unacked, it is redelivered.
            self.pulls.busy.fetch_sub(1, Ordering::AcqRel);
            warn!("no execution slot left for a pulled message; it will be redelivered");
        }
    }

    /// Lets the slots finish every queued and running call, then stops them.
    pub(super) async fn join(mut self) {
        self.jobs.close();
        let threads = std::mem::take(&mut self.threads);
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    warn!("an execution slot thread panicked");
                }
            }
        });
        olin_telemetry::join("slot threads", joined).await;
        self.keep_alive.abort();
    }
}

/// The slots' queue of pulled messages: a mutex and a condition variable,
/// so a waiting slot sleeps in the kernel at once (a spinning channel's
/// back-off cost idle slots three `sched_yield`s per call), and a message
/// wakes one slot only when one is waiting.
struct Queue<T> {
    state: Mutex<QueueState<T>>,
    ready: Condvar,
}

struct QueueState<T> {
    items: VecDeque<T>,
    waiting: usize,
    closed: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(QueueState { items: VecDeque::new(), waiting: 0, closed: false }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Queue<T> {
    fn lock(&self) -> parking_lot::MutexGuard<'_, QueueState<T>> {
        self.state.lock()
    }

    /// Queues `item`; gives it back if the queue is closed.
    fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// The next item, waiting for one; `None` once closed and empty.
    fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state.waiting += 1;
            self.ready.wait(&mut state);
            state.waiting -= 1;
        }
    }

    /// No more items: waiting slots finish what is queued, then stop.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// One execution slot: its thread runs one call at a time.
struct Slot {
    ctx: Arc<Ctx>,
    pulls: Arc<Pulls>,
    running: Arc<Running>,
    index: usize,
    rt: Handle,
}

/// What a call needs before its guest runs.
enum Prepared {
    /// Run this module.
    Run(olin::Module),
    /// Answer without running (deadline passed, module unavailable).
    Answer(Box<InvocationResponse>),
    /// Already settled (nak'd for redelivery).
    Settled,
}

impl Slot {
    fn serve(self, jobs: &Queue<jetstream::Message>) {
        while let Some(msg) = jobs.pop() {
            let asked_next = self.call(msg);
            self.pulls.busy.fetch_sub(1, Ordering::AcqRel);
            if !asked_next {
                self.pulls.freed.notify_one();
            }
        }
    }

    /// Runs one call to its end; returns whether its ack asked for the next
    /// message.
    fn call(&self, msg: jetstream::Message) -> bool {
        let ctx = &*self.ctx;
        let req = match decode(&msg) {
            Ok(req) => req,
            Err(reason) => {
                self.rt.block_on(dead_letter::message(ctx, &msg, None, &reason));
                return false;
            }
        };
        let span = tracing::info_span!("invocation", invocation_id = %req.invocation_id, function = %req.function,
            traceparent = %header(msg.headers.as_ref(), subject::HDR_TRACEPARENT).unwrap_or(""));
        let _enter = span.enter();
        let mut call = Call {
            reply_to: header(msg.headers.as_ref(), subject::HDR_REPLY_TO),
            deadline_ms: deadline(msg.headers.as_ref(), &req),
            started_ms: olin_proto::unix_ms(),
            msg: &msg,
            req,
        };
        // From here JetStream hears that the call goes on, while its module
        // loads and while it waits for memory too.
        self.running.start(self.index, msg.reply.clone());
        let resp = match self.rt.block_on(prepare(ctx, &call)) {
            Prepared::Run(module) => self.admit_and_execute(&mut call, &module),
            Prepared::Answer(resp) => *resp,
            Prepared::Settled => {
                self.running.stop(self.index);
                return false;
            }
        };
        self.running.stop(self.index);
        self.rt.block_on(finish(ctx, &self.pulls, &call, resp))
    }

    /// Runs the guest once the worker's memory admits the call
    /// (`admission`); a call whose deadline passes while it waits is
    /// answered TIMEOUT without running.
    fn admit_and_execute(&self, call: &mut Call<'_>, module: &olin::Module) -> InvocationResponse {
        let ctx = &*self.ctx;
        let limits = olin::Limits::resolve(call.req.limits.as_ref(), &ctx.defaults, &ctx.maxima);
        let until = (call.deadline_ms != 0).then(|| {
            let left = call.deadline_ms.saturating_sub(olin_proto::unix_ms());
            Instant::now() + Duration::from_millis(left)
        });
        match ctx.admission.reserve(limits.reservation_bytes(), until) {
            Some(_reserved) => self.execute(call, module),
            None => platform_response(
                ctx,
                &call.req,
                Outcome::Timeout,
                "the deadline passed while the call waited for memory on the worker",
            ),
        }
    }

    /// Runs the guest on this thread, outside the runtime (a guest's
    /// outbound HTTP blocks on it). Sealed secrets are opened for the run
    /// only: the request is put back as it came (it may go on to a retry or
    /// `OLIN_DEAD`).
    fn execute(&self, call: &mut Call<'_>, module: &olin::Module) -> InvocationResponse {
        let ctx = &*self.ctx;
        let sealed = match open_secrets(ctx.secrets.as_ref(), &call.req) {
            Ok(Some(opened)) => Some(std::mem::replace(&mut call.req.env, opened)),
            Ok(None) => None,
            Err(why) => {
                warn!(error = %why, "a secret did not open");
                return platform_response(ctx, &call.req, Outcome::Internal, &why);
            }
        };
        clip_to_deadline(ctx, &mut call.req, call.deadline_ms);
        let req = &call.req;
        ctx.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let egress = ctx.egress.clone().map(|e| e as Arc<dyn olin::Egress>);
        let rc = olin::RunContext { worker_id: &ctx.worker_id, defaults: &ctx.defaults, maxima: &ctx.maxima, egress };
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| ctx.runtime.run(module, req, &rc)));
        ctx.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(sealed) = sealed {
            call.req.env = sealed;
        }
        ran.unwrap_or_else(|_| {
            platform_response(ctx, &call.req, Outcome::Internal, "the run was aborted: the sandbox panicked")
        })
    }
}

/// Clips the call's wall time to what is left before its deadline: a guest
/// that starts late (it waited in the queue, for memory, for its module)
/// must not run on after its caller has been answered 504.
fn clip_to_deadline(ctx: &Ctx, req: &mut InvocationRequest, deadline_ms: u64) {
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
fn open_secrets(
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

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// The invocation in a pulled message, or why it goes to `OLIN_DEAD`.
fn decode(msg: &jetstream::Message) -> Result<InvocationRequest, String> {
    match InvocationRequest::decode(msg.payload.clone()) {
        Ok(req) if subject::is_valid_function_name(&req.function) && !req.invocation_id.is_empty() => Ok(req),
        Ok(req) => Err(format!("invalid invocation: function {:?}, id {:?}", req.function, req.invocation_id)),
        Err(err) => Err(format!("undecodable InvocationRequest: {err}")),
    }
}

/// One pulled call, decoded, with what its headers say.
struct Call<'a> {
    msg: &'a jetstream::Message,
    req: InvocationRequest,
    /// Where the caller waits (`Olin-Reply-To`); none for an async call.
    reply_to: Option<&'a str>,
    /// Unix ms; 0 for none.
    deadline_ms: u64,
    started_ms: u64,
}

/// Redelivery delays while the module store is unavailable: 500 ms after
/// the first delivery, doubling up to 4 s.
const STORE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));

/// Checks the deadline and loads the module.
async fn prepare(ctx: &Ctx, call: &Call<'_>) -> Prepared {
    let (msg, req) = (call.msg, &call.req);
    if call.deadline_ms != 0 && call.started_ms >= call.deadline_ms {
        let passed = platform_response(ctx, req, Outcome::Timeout, "the deadline passed before a worker was free");
        return Prepared::Answer(Box::new(passed));
    }
    let delivered = msg.info().map_or(1, |i| i.delivered);
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
/// the same connection, so an acked call has always been answered. Returns
/// whether the ack asked for the slot's next message.
async fn finish(ctx: &Ctx, pulls: &Pulls, call: &Call<'_>, resp: InvocationResponse) -> bool {
    let (msg, req) = (call.msg, &call.req);
    let resp = fit_in_a_message(ctx, req, resp, ctx.nats.server_info().max_payload);
    ctx.stats.executions.fetch_add(1, Ordering::Relaxed);
    info!(
        outcome = resp.outcome().header_value(),
        status = resp.status,
        wall_us = resp.usage.as_ref().map_or(0, |u| u.wall_us),
        "executed"
    );
    let event = event_of(req, &resp, call.started_ms);
    if req.r#async {
        let delivered = msg.info().map_or(1, |i| i.delivered);
        async_call::finish(ctx, msg, req, resp, event, delivered).await;
        return false;
    }
    // Before the reply: a caller that calls again once answered must find
    // its lease free, and its idempotent retry the answer.
    release_lease(ctx, req).await;
    async_call::store_idempotent(ctx, req, &resp).await;
    let connection = pulls.connects();
    if let Some(reply_to) = call.reply_to
        && let Err(err) = ctx.outbox.send(reply_to, resp.encode_to_vec().into(), call.deadline_ms).await
    {
        // Not acked: the call is redelivered and answered again.
        warn!(%err, "reply failed; nak");
        nak(msg, Duration::from_millis(100)).await;
        return false;
    }
    publish_event(ctx, &event).await;
    // A reply that reached a server which then went away may be lost with it,
    // and nothing reports that (a reply that reached no subscriber comes
    // back as a no-responders status and is sent again, see `reply`). So a
    // call answered across a reconnect is not acked but answered again later
    // (a gateway drops the duplicate if the first reply did arrive).
    if ctx.nats.connection_state() != State::Connected || pulls.connects() != connection {
        warn!("NATS reconnected around the reply; nak so the call is answered again");
        nak(msg, RECONNECT_REDELIVERY).await;
        return false;
    }
    pulls.ack(ctx, msg).await
}

/// Room kept in a message for what wraps an answer (headers, the async
/// result around it).
const MESSAGE_OVERHEAD: usize = 64 << 10;

/// `resp`, or, if it cannot travel in one NATS message of `max_payload`
/// bytes, an `OUTPUT_TOO_LARGE` answer saying so (with the run's usage):
/// sending it again could never succeed, so the call is answered once
/// instead of being redelivered until it is dead-lettered.
fn fit_in_a_message(
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

/// The calls running on each slot, for progress acks.
struct Running {
    calls: Vec<Mutex<Option<Progress>>>,
}

/// A running call: its ack subject and when JetStream last heard of it.
struct Progress {
    ack: Subject,
    told: Instant,
}

impl Running {
    fn slot(&self, index: usize) -> Option<parking_lot::MutexGuard<'_, Option<Progress>>> {
        self.calls.get(index).map(|m| m.lock())
    }

    fn start(&self, index: usize, ack: Option<Subject>) {
        if let (Some(mut slot), Some(ack)) = (self.slot(index), ack) {
            *slot = Some(Progress { ack, told: Instant::now() });
        }
    }

    fn stop(&self, index: usize) {
        if let Some(mut slot) = self.slot(index) {
            *slot = None;
        }
    }

    /// The ack subjects of calls JetStream last heard of `after` ago or
    /// more, marked as told now.
    fn due(&self, after: Duration) -> Vec<Subject> {
        let mut due = Vec::new();
        for slot in &self.calls {
            let mut slot = slot.lock();
            if let Some(call) = slot.as_mut()
                && call.told.elapsed() >= after
            {
                call.told = Instant::now();
                due.push(call.ack.clone());
            }
        }
        due
    }
}

/// Tells JetStream, every half ack wait, that each long run goes on, so its
/// message is not redelivered to another worker mid-run.
async fn keep_alive(ctx: Arc<Ctx>, running: Arc<Running>) {
    let half = ctx.ack_wait / 2;
    let mut tick = tokio::time::interval((ctx.ack_wait / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for ack in running.due(half) {
            if let Err(err) = ctx.nats.publish(ack, AckKind::Progress.into()).await {
                warn!(%err, "progress ack failed");
            }
        }
    }
}

/// Asks for `msg` again after `delay`. A nak that fails is logged: the call
/// then comes back only after its ack wait.
async fn nak(msg: &async_nats::jetstream::Message, delay: Duration) {
    if let Err(err) = msg.ack_with(AckKind::Nak(Some(delay))).await {
        warn!(%err, "nak failed; the call is redelivered after its ack wait");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_hands_out_in_order_and_drains_after_close() {
        let queue = Arc::new(Queue::default());
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        assert_eq!(queue.pop(), Some(1));
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || (queue.pop(), queue.pop(), queue.pop()))
        };
        queue.close();
        assert_eq!(queue.push(3), Err(3), "closed: nothing more is taken");
        assert_eq!(waiter.join().unwrap(), (Some(2), None, None), "what was queued still runs, then the slot stops");
    }

    #[test]
    fn a_waiting_slot_is_woken_by_a_push() {
        let queue = Arc::new(Queue::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || queue.pop())
            })
            .collect();
        while queue.lock().waiting < 3 {
            std::thread::yield_now();
        }
        for i in 0..3 {
            queue.push(i).unwrap();
        }
        let mut got: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn pulls_ask_only_for_free_slots_not_yet_asked_for() {
        let admission = Arc::new(crate::admission::Admission::new(1 << 30));
        let pulls = Pulls::new(Subject::from("_INBOX.test"), 4, Arc::default(), admission.clone(), 1);
        assert_eq!(pulls.wanted(), 4);
        pulls.requested(3);
        assert_eq!(pulls.wanted(), 1);
        // Two messages arrive and take slots.
        pulls.settled(2);
        pulls.busy.fetch_add(2, Ordering::AcqRel);
        assert_eq!(pulls.wanted(), 1);
        // A slot acks with +NXT before it frees: momentarily over, never negative.
        pulls.requested(1);
        pulls.requested(1);
        assert_eq!(pulls.wanted(), 0);
        pulls.busy.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(pulls.wanted(), 0);
        // An expiry status reports more than is counted: the count stops at zero.
        pulls.settled(10);
        assert_eq!(pulls.wanted(), 3);
    }

    #[test]
    fn pulls_ask_only_for_what_memory_admits() {
        let admission = Arc::new(crate::admission::Admission::new(100));
        let pulls = Pulls::new(Subject::from("_INBOX.test"), 8, Arc::default(), admission.clone(), 30);
        assert_eq!(pulls.wanted(), 3, "8 slots, memory for 3 typical calls");
        let big = admission.reserve(90, None).unwrap();
        assert_eq!(pulls.wanted(), 0);
        let waiter = {
            let admission = admission.clone();
            std::thread::spawn(move || admission.reserve(50, None).map(drop))
        };
        while admission.snapshot().3 == 0 {
            std::thread::yield_now();
        }
        drop(big);
        waiter.join().unwrap().unwrap();
        assert_eq!(pulls.wanted(), 3);
    }
}
