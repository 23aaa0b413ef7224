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
//!
//! # Layout
//! - here: the slots and their threads, and running one call.
//! - `queue`: the queue the slots take messages from.
//! - `lifecycle`: a call apart from its run: decode, prepare, finish.
//! - `keep_alive`: progress acks of long runs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream;
use olin_proto::subject;
use olin_proto::v1::{InvocationResponse, Outcome};
use tokio::runtime::Handle;
use tracing::warn;

use super::Pulls;
use crate::call::deadline;
use crate::{Ctx, dead_letter};

mod keep_alive;
mod lifecycle;
mod queue;

use keep_alive::{Running, Tell, keep_alive};
pub(super) use lifecycle::not_taken;
use lifecycle::{
    Call, Prepared, Source, clip_to_deadline, decode, finish, header, open_secrets, platform_response, prepare,
};
use queue::Queue;

/// A call for a slot. Moved into the queue once and out once: boxing the
/// larger variant would cost an allocation per call for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Job {
    /// Pulled from the queue.
    Queued(jetstream::Message),
    /// Sent to this worker directly by a gateway.
    Direct(async_nats::Message),
}

/// How often a direct call's gateway hears it is running, unless it asks
/// (`Olin-Direct`) for between [`RUNNING_EVERY_MIN`] and
/// [`RUNNING_EVERY_MAX`].
const RUNNING_EVERY: Duration = Duration::from_millis(250);
const RUNNING_EVERY_MIN: Duration = Duration::from_millis(50);
const RUNNING_EVERY_MAX: Duration = Duration::from_secs(60);

/// The slot threads of one worker and the queue that feeds them.
pub(super) struct Slots {
    jobs: Arc<Queue<Job>>,
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
        let running = Arc::new(Running::new(concurrency));
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
        if self.jobs.push(Job::Queued(msg)).is_err() {
            // Cannot happen while the loop runs; unacked, it is redelivered.
            self.pulls.busy.fetch_sub(1, Ordering::AcqRel);
            warn!("no execution slot left for a pulled message; it will be redelivered");
        }
    }

    /// Takes a direct call if a slot is free (not running or holding a
    /// call already) and memory admits a typical call; otherwise hands it
    /// back to its gateway, which queues it.
    pub(super) async fn direct(&self, ctx: &Ctx, msg: async_nats::Message) {
        let pulls = &self.pulls;
        let claimed = pulls.admission.admits(pulls.typical) > 0
            && pulls
                .busy
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| (b < pulls.concurrency).then_some(b + 1))
                .is_ok();
        if !claimed {
            return not_taken(ctx, msg.reply.as_deref()).await;
        }
        if let Err(Job::Direct(msg) | Job::Queued(jetstream::Message { message: msg, .. })) =
            self.jobs.push(Job::Direct(msg))
        {
            pulls.busy.fetch_sub(1, Ordering::AcqRel);
            not_taken(ctx, msg.reply.as_deref()).await;
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

/// One execution slot: its thread runs one call at a time.
struct Slot {
    ctx: Arc<Ctx>,
    pulls: Arc<Pulls>,
    running: Arc<Running>,
    index: usize,
    rt: Handle,
}

impl Slot {
    fn serve(self, jobs: &Queue<Job>) {
        while let Some(job) = jobs.pop() {
            let asked_next = match job {
                Job::Queued(msg) => self.queued(&msg),
                Job::Direct(msg) => self.direct(&msg),
            };
            self.pulls.busy.fetch_sub(1, Ordering::AcqRel);
            if !asked_next {
                self.pulls.freed.notify_one();
            }
        }
    }

    /// Runs one pulled call to its end; returns whether its ack asked for
    /// the next message.
    fn queued(&self, msg: &jetstream::Message) -> bool {
        let ctx = &*self.ctx;
        let req = match decode(&msg.payload) {
            Ok(req) => req,
            Err(reason) => {
                self.rt.block_on(dead_letter::message(ctx, msg, None, &reason));
                return false;
            }
        };
        let call = Call {
            reply_to: header(msg.headers.as_ref(), subject::HDR_REPLY_TO),
            deadline_ms: deadline(msg.headers.as_ref(), &req),
            started_ms: olin_proto::unix_ms(),
            source: Source::Queued(msg),
            req,
        };
        // JetStream hears that the call goes on every half ack wait.
        let tell = msg.reply.clone().map(Tell::Queue);
        self.run(call, msg.headers.as_ref(), tell, ctx.ack_wait / 2)
    }

    /// Runs one direct call to its end (it asks for no next message).
    fn direct(&self, msg: &async_nats::Message) -> bool {
        let ctx = &*self.ctx;
        let headers = msg.headers.as_ref();
        let reply_to = msg.reply.as_deref();
        let req = match decode(&msg.payload) {
            Ok(req) if !req.r#async => req,
            Ok(_) | Err(_) => {
                // Only a gateway sends direct calls; the queue deals with
                // whatever this is (dead letters for a poison message).
                warn!("a direct call that is not a synchronous invocation; handing it back");
                self.rt.block_on(not_taken(ctx, reply_to));
                return false;
            }
        };
        let every = header(headers, subject::HDR_DIRECT)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(RUNNING_EVERY, |ms| Duration::from_millis(ms).clamp(RUNNING_EVERY_MIN, RUNNING_EVERY_MAX));
        let call = Call {
            reply_to,
            deadline_ms: deadline(headers, &req),
            started_ms: olin_proto::unix_ms(),
            source: Source::Direct,
            req,
        };
        let tell = reply_to.map(|r| Tell::Caller(Subject::from(r)));
        self.run(call, headers, tell, every)
    }

    /// Prepares, runs and finishes `call` while `tell` hears every `every`
    /// that it goes on (while its module loads and it waits for memory too).
    fn run(
        &self,
        mut call: Call<'_>,
        headers: Option<&async_nats::HeaderMap>,
        tell: Option<Tell>,
        every: Duration,
    ) -> bool {
        let ctx = &*self.ctx;
        let span = tracing::info_span!("invocation", invocation_id = %call.req.invocation_id, function = %call.req.function,
            traceparent = %header(headers, subject::HDR_TRACEPARENT).unwrap_or(""),
            direct = matches!(call.source, Source::Direct));
        let _enter = span.enter();
        self.running.start(self.index, tell, every);
        let resp = match self.rt.block_on(prepare(ctx, &call)) {
            Prepared::Run(module) => self.admit_and_execute(&mut call, &module),
            Prepared::Answer(resp) => *resp,
            Prepared::Settled => {
                self.running.stop(self.index);
                return false;
            }
        };
        self.running.stop(self.index);
        self.rt.block_on(finish(&self.ctx, &self.pulls, &call, resp))
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

#[cfg(test)]
mod tests {
    use super::*;

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
