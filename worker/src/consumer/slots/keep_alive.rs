//! Keep-alive notes: one task tells JetStream about every queued call that
//! has run half its ack wait (`AckProgress`), and the gateway about every
//! direct call at the interval it asked for (`Olin-Direct: running`),
//! instead of a timer per call.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use async_nats::{HeaderMap, Subject};
use olin_proto::subject;
use parking_lot::Mutex;
use tracing::warn;

use crate::Ctx;

/// How often the task looks for notes due: the slack of every interval.
const TICK: Duration = Duration::from_millis(50);

/// The calls running on each slot, for keep-alive notes.
pub(super) struct Running {
    calls: Vec<Mutex<Option<Progress>>>,
}

/// Who hears that a call goes on.
#[derive(Clone)]
pub(super) enum Tell {
    /// JetStream, on the message's ack subject.
    Queue(Subject),
    /// The gateway waiting on a direct call's reply subject.
    Caller(Subject),
}

/// A running call: who hears of it, how often, and when they last did.
pub(super) struct Progress {
    tell: Tell,
    every: Duration,
    told: Instant,
}

impl Running {
    /// The table of `slots` slots, none running.
    pub(super) fn new(slots: usize) -> Running {
        Running { calls: (0..slots).map(|_| Mutex::new(None)).collect() }
    }

    pub(super) fn slot(&self, index: usize) -> Option<parking_lot::MutexGuard<'_, Option<Progress>>> {
        self.calls.get(index).map(|m| m.lock())
    }

    /// Slot `index` runs a call that `tell` hears of every `every`.
    pub(super) fn start(&self, index: usize, tell: Option<Tell>, every: Duration) {
        if let (Some(mut slot), Some(tell)) = (self.slot(index), tell) {
            *slot = Some(Progress { tell, every, told: Instant::now() });
        }
    }

    pub(super) fn stop(&self, index: usize) {
        if let Some(mut slot) = self.slot(index) {
            *slot = None;
        }
    }

    /// Who is due a note now (last told at least their interval ago),
    /// marked as told.
    pub(super) fn due(&self) -> Vec<Tell> {
        let mut due = Vec::new();
        for slot in &self.calls {
            let mut slot = slot.lock();
            if let Some(call) = slot.as_mut()
                && call.told.elapsed() >= call.every
            {
                call.told = Instant::now();
                due.push(call.tell.clone());
            }
        }
        due
    }
}

/// Sends every note due, every [`TICK`]: JetStream does not redeliver a
/// long run's message to another worker mid-run, and a gateway does not
/// queue a direct call whose worker still runs it.
pub(super) async fn keep_alive(ctx: Arc<Ctx>, running: Arc<Running>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut note = HeaderMap::new();
    note.insert(subject::HDR_DIRECT, subject::DIRECT_RUNNING);
    loop {
        tick.tick().await;
        for tell in running.due() {
            let sent = match tell {
                Tell::Queue(ack) => ctx.nats.publish(ack, AckKind::Progress.into()).await,
                Tell::Caller(reply_to) => {
                    ctx.nats.publish_with_headers(reply_to, note.clone(), Default::default()).await
                }
            };
            if let Err(err) = sent {
                warn!(%err, "keep-alive note failed");
            }
        }
    }
}
