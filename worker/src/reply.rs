//! Replies to synchronous callers, sent again when they may not have arrived.
//!
//! A reply is a core NATS message: at most once. It is lost in three ways,
//! and each is repaired here rather than by running the call again:
//! - nobody is subscribed to it: a gateway still reconnecting after a NATS
//!   restart. The server says so at once: each reply carries a reply subject
//!   of this worker's, `<inbox>.<sequence>`, on which a no-responders status
//!   (503) comes back, and the reply is sent again after a back-off until it
//!   lands, its call's deadline passes, or [`GIVE_UP`] after the first try.
//! - it was written to a server that then died (this worker's connection
//!   dropped): nothing reports that. When the client has connected again,
//!   every reply kept is sent again.
//! - it was on its way from this worker's server to the gateway's when the
//!   gateway's server died: nothing reports that either, to anyone but the
//!   gateway, which has lost its connection. Once it is back it asks every
//!   worker for its replies again ([`subject::replay_request`]), and each
//!   worker sends again those it keeps for that gateway.
//!
//! So the worker keeps each reply's bytes for [`KEEP`] (at most
//! [`KEEP_BYTES`] in all). The gateway takes the first reply for an
//! invocation id and drops the others, so a reply sent twice is answered
//! once. A reply that landed costs a map entry and nothing on the wire; the
//! ack is not held back for it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::{StatusCode, Subject};
use bytes::Bytes;
use futures::StreamExt;
use olin_proto::backoff::Backoff;
use olin_proto::subject;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::Stats;

/// How long a sent reply is kept for a resend: the no-responders status
/// comes back within a round trip, but a reconnect (this worker's or a
/// gateway's) can take a few seconds after the reply was lost.
const KEEP: Duration = Duration::from_secs(10);
/// At most this many bytes of replies are kept; the oldest go first.
const KEEP_BYTES: usize = 64 << 20;
/// First resend delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// A reply still unheard this long after its first try is given up: a gateway
/// that has not resubscribed by then is gone, and its callers with it.
const GIVE_UP: Duration = Duration::from_secs(15);

/// The replies of one worker.
pub(crate) struct Outbox {
    nats: async_nats::Client,
    /// `<inbox>`: a reply's own reply subject is `<inbox>.<sequence>`.
    inbox: String,
    next: AtomicU64,
    kept: Mutex<Kept>,
    stats: Arc<Stats>,
    /// Resends waiting out their back-off, for drain to wait on.
    resends: tokio_util::task::TaskTracker,
}

#[derive(Default)]
struct Kept {
    replies: HashMap<u64, Reply>,
    /// Sequences in the order they were kept (oldest first).
    order: VecDeque<(Instant, u64)>,
    bytes: usize,
}

#[derive(Clone)]
struct Reply {
    to: Subject,
    payload: Bytes,
    /// The call's deadline (Unix ms; 0: none): past it, the caller has given up.
    deadline_ms: u64,
    first_try: Instant,
    attempt: u32,
}

impl Reply {
    /// Whether its caller may still wait at `now_ms`: before the deadline,
    /// or always when the call has none (0). Replies go at [`KEEP`] or
    /// [`GIVE_UP`] whatever their deadline.
    fn awaited(&self, now_ms: u64) -> bool {
        self.deadline_ms == 0 || now_ms < self.deadline_ms
    }
}

impl Outbox {
    pub(crate) fn new(nats: async_nats::Client, stats: Arc<Stats>) -> Self {
        let inbox = nats.new_inbox();
        Outbox {
            nats,
            inbox,
            next: AtomicU64::new(0),
            kept: Mutex::default(),
            stats,
            resends: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Where the no-responders statuses of this worker's replies arrive.
    pub(crate) fn statuses(&self) -> String {
        subject::reply_status_subscription(&self.inbox)
    }

    /// Sends `payload` to the caller waiting on `to`, and keeps it to send
    /// again if the server reports that nobody heard it.
    ///
    /// # Errors
    /// If the client cannot queue the publish (it is closed).
    pub(crate) async fn send(
        &self,
        to: &str,
        payload: Bytes,
        deadline_ms: u64,
    ) -> Result<(), async_nats::PublishError> {
        let reply = Reply { to: Subject::from(to), payload, deadline_ms, first_try: Instant::now(), attempt: 0 };
        self.try_send(reply).await
    }

    async fn try_send(&self, reply: Reply) -> Result<(), async_nats::PublishError> {
        let (to, payload) = (reply.to.clone(), reply.payload.clone());
        // Kept before it is sent: the status can come back at once.
        let seq = self.keep(reply);
        let sent = self.nats.publish_with_reply(to, subject::reply_status_subject(&self.inbox, seq), payload).await;
        if sent.is_err() {
            self.lock().remove(seq);
        }
        sent
    }

    fn keep(&self, reply: Reply) -> u64 {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().admit(seq, Instant::now(), reply, KEEP, KEEP_BYTES);
        seq
    }

    /// Resends waiting or under way.
    pub(crate) fn resending(&self) -> usize {
        self.resends.len()
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock()
    }

    /// Sends again every reply kept for a caller still waiting, or, given
    /// `gateway`, every one addressed to that gateway. Returns how many.
    pub(crate) async fn replay(&self, gateway: Option<&str>) -> usize {
        let now_ms = olin_proto::unix_ms();
        let again: Vec<Reply> = {
            let mut kept = self.lock();
            let seqs: Vec<u64> = kept
                .replies
                .iter()
                .filter(|(_, r)| r.awaited(now_ms))
                .filter(|(_, r)| gateway.is_none_or(|g| subject::gateway_of_reply(&r.to) == Some(g)))
                .map(|(&seq, _)| seq)
                .collect();
            seqs.into_iter().filter_map(|seq| kept.remove(seq)).collect()
        };
        let n = again.len();
        for reply in again {
            self.stats.replies_replayed.fetch_add(1, Ordering::Relaxed);
            let reply = Reply { attempt: reply.attempt + 1, ..reply };
            if let Err(err) = self.try_send(reply).await {
                warn!(%err, "sending a reply again failed");
            }
        }
        n
    }

    /// Follows, until `stop`, the statuses on [`Outbox::statuses`] (each
    /// no-responders status sends its reply again after a back-off), the
    /// gateways' replay requests, and this client's reconnects (each sends
    /// every kept reply again).
    pub(crate) async fn follow(
        self: Arc<Self>,
        mut statuses: async_nats::Subscriber,
        mut replays: async_nats::Subscriber,
        mut stop: watch::Receiver<bool>,
    ) {
        let reconnects = olin_nats::connect::Reconnects::new(&self.nats);
        enum Next {
            Status(Option<async_nats::Message>),
            Replay(async_nats::Message),
            Reconnected,
            Stop,
        }
        loop {
            let next = tokio::select! {
                m = statuses.next() => Next::Status(m),
                Some(r) = replays.next() => Next::Replay(r),
                _ = reconnects.next() => Next::Reconnected,
                _ = stop.wait_for(|s| *s) => Next::Stop,
            };
            let msg = match next {
                Next::Status(m) => m,
                Next::Replay(r) => {
                    if let Some(gateway) = subject::gateway_of_replay_request(&r.subject) {
                        let n = self.replay(Some(gateway)).await;
                        info!(gateway, replies = n, "a gateway reconnected; its recent replies sent again");
                    }
                    continue;
                }
                Next::Reconnected => {
                    let n = self.replay(None).await;
                    info!(replies = n, "reconnected to NATS; recent replies sent again");
                    continue;
                }
                Next::Stop => return,
            };
            let Some(msg) = msg else { return };
            if msg.status != Some(StatusCode::NO_RESPONDERS) {
                continue;
            }
            let Some(seq) = subject::reply_status_seq(&msg.subject) else { continue };
            let Some(reply) = self.lock().remove(seq) else {
                debug!(seq, "no-responders status for a reply no longer kept");
                continue;
            };
            if !reply.awaited(olin_proto::unix_ms()) || reply.first_try.elapsed() >= GIVE_UP {
                self.stats.replies_undelivered.fetch_add(1, Ordering::Relaxed);
                // Info, not warn: a gateway that died leaves many such replies,
                // and its callers are gone too.
                info!(to = %reply.to, attempts = reply.attempt + 1, "a reply reached no gateway before its caller gave up");
                continue;
            }
            debug!(to = %reply.to, attempt = reply.attempt, "reply reached no gateway; sending it again");
            let outbox = self.clone();
            self.resends.spawn(async move {
                tokio::time::sleep(backoff(reply.attempt)).await;
                outbox.stats.replies_resent.fetch_add(1, Ordering::Relaxed);
                let reply = Reply { attempt: reply.attempt + 1, ..reply };
                if let Err(err) = outbox.try_send(reply).await {
                    warn!(%err, "resending a reply failed");
                }
            });
        }
    }
}

impl Kept {
    /// Keeps `reply` as `seq`, first letting go of the replies older than
    /// `keep` and of the oldest ones while all would pass `cap` bytes.
    fn admit(&mut self, seq: u64, now: Instant, reply: Reply, keep: Duration, cap: usize) {
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) < keep && self.bytes + reply.payload.len() <= cap {
                break;
            }
            self.order.pop_front();
            self.remove(old);
        }
        self.bytes += reply.payload.len();
        self.order.push_back((now, seq));
        self.replies.insert(seq, reply);
    }

    fn remove(&mut self, seq: u64) -> Option<Reply> {
        let reply = self.replies.remove(&seq)?;
        self.bytes -= reply.payload.len();
        Some(reply)
    }
}

/// Delay before the resend after `attempt` failed tries.
fn backoff(attempt: u32) -> Duration {
    Backoff::new(FIRST_BACKOFF, MAX_BACKOFF).delay(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_replies_are_bounded_in_age_and_bytes() {
        let t0 = Instant::now();
        let reply = |n: usize| Reply {
            to: Subject::from("olin.reply.gw.x"),
            payload: Bytes::from(vec![0u8; n]),
            deadline_ms: 0,
            first_try: t0,
            attempt: 0,
        };
        let (keep, cap) = (Duration::from_secs(10), 100);
        let mut kept = Kept::default();
        for seq in 0..3 {
            kept.admit(seq, t0, reply(40), keep, cap);
        }
        // Three of 40 bytes pass 100: the oldest went.
        assert_eq!((kept.replies.len(), kept.bytes), (2, 80));
        assert!(!kept.replies.contains_key(&0));
        // Replies older than `keep` go at the next admission, whatever the room.
        kept.admit(3, t0 + Duration::from_secs(11), reply(1), keep, cap);
        assert_eq!((kept.replies.len(), kept.bytes), (1, 1));
        // One reply larger than the cap is still kept (alone): it was sent.
        kept.admit(4, t0 + Duration::from_secs(11), reply(500), keep, cap);
        assert_eq!((kept.replies.len(), kept.bytes), (1, 500));
        // Removed ones (heard as unheard, or sent again) leave the count.
        assert!(kept.remove(4).is_some());
        assert_eq!(kept.bytes, 0);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let delays: Vec<_> = (0..8).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
