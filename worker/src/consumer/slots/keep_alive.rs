//! Keep-alive acks: one task tells JetStream about every call that has
//! run half its ack wait (`AckProgress`), instead of a timer per call.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream::AckKind;
use parking_lot::Mutex;
use tracing::warn;

use crate::Ctx;

/// The calls running on each slot, for progress acks.
pub(super) struct Running {
    calls: Vec<Mutex<Option<Progress>>>,
}

/// A running call: its ack subject and when JetStream last heard of it.
pub(super) struct Progress {
    ack: Subject,
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

    pub(super) fn start(&self, index: usize, ack: Option<Subject>) {
        if let (Some(mut slot), Some(ack)) = (self.slot(index), ack) {
            *slot = Some(Progress { ack, told: Instant::now() });
        }
    }

    pub(super) fn stop(&self, index: usize) {
        if let Some(mut slot) = self.slot(index) {
            *slot = None;
        }
    }

    /// The ack subjects of calls JetStream last heard of `after` ago or
    /// more, marked as told now.
    pub(super) fn due(&self, after: Duration) -> Vec<Subject> {
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
pub(super) async fn keep_alive(ctx: Arc<Ctx>, running: Arc<Running>) {
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
