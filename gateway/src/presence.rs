//! Which workers are alive, from their heartbeats in `OLIN_WORKERS`. With no
//! live worker the gateway answers 503 at once instead of queueing a call
//! that nobody will take before its deadline.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::warn;

/// How much longer than its TTL a heartbeat counts when deciding that no
/// worker is alive: NATS 2.9 takes up to 9 s to elect a new leader for the
/// bucket after losing a node, and no heartbeat is stored meanwhile.
const FAILOVER_GRACE: Duration = Duration::from_secs(12);

/// Last heartbeat of each worker, in Unix milliseconds.
pub(crate) struct Presence {
    seen: Mutex<HashMap<String, u64>>,
    ttl: Duration,
}

fn entry_ms(entry: &kv::Entry) -> u64 {
    let nanos = entry.created.unix_timestamp_nanos();
    u64::try_from(nanos / 1_000_000).unwrap_or(0)
}

impl Presence {
    pub(crate) fn new(ttl: Duration) -> Self {
        Presence { seen: Mutex::default(), ttl }
    }

    fn apply(&self, entry: &kv::Entry) {
        let mut seen = self.seen.lock();
        match entry.operation {
            Operation::Put => {
                seen.insert(entry.key.clone(), entry_ms(entry));
            }
            Operation::Delete | Operation::Purge => {
                seen.remove(&entry.key);
            }
        }
    }

    /// How many workers sent a heartbeat within `within`.
    fn live_within(&self, within: Duration) -> usize {
        let cutoff = olin_proto::unix_ms().saturating_sub(within.as_millis() as u64);
        self.seen.lock().values().filter(|t| **t >= cutoff).count()
    }

    /// Whether no worker is known to be alive, so a call would wait for
    /// nobody. Known, not guessed: the bucket must be readable, and a
    /// heartbeat counts for the TTL plus [`FAILOVER_GRACE`], since while
    /// NATS elects a new leader for the bucket every heartbeat fails and
    /// every worker's last one ages at once. A worker that stops cleanly
    /// deletes its key and is gone at once.
    pub(crate) async fn none_alive(&self, kv: &kv::Store) -> bool {
        let within = self.ttl + FAILOVER_GRACE;
        if self.live_within(within) > 0 {
            return false;
        }
        // The cached view may have missed a worker that has just started.
        self.refresh(kv).await && self.live_within(within) == 0
    }

    /// Reads the bucket directly (bypassing the watch) and records what it
    /// holds; false if it could not be read in time.
    async fn refresh(&self, kv: &kv::Store) -> bool {
        let read = async {
            let mut keys = kv.keys().await.ok()?;
            while let Some(key) = keys.next().await {
                if let Ok(Some(entry)) = kv.entry(&key.ok()?).await {
                    self.apply(&entry);
                }
            }
            Some(())
        };
        matches!(tokio::time::timeout(Duration::from_millis(500), read).await, Ok(Some(())))
    }

    /// Follows the bucket until `stop`.
    pub(crate) async fn follow(&self, kv: kv::Store, mut stop: watch::Receiver<bool>) {
        loop {
            let watch = tokio::select! {
                w = kv.watch_with_history(">") => w,
                _ = stop.wait_for(|s| *s) => return,
            };
            match watch {
                Ok(mut w) => loop {
                    tokio::select! {
                        next = w.next() => match next {
                            Some(Ok(entry)) => self.apply(&entry),
                            Some(Err(err)) => { warn!(%err, "worker presence watch error"); break; }
                            None => break,
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                },
                Err(err) => warn!(%err, "worker presence watch failed; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Whether `OLIN_RESULTS` has room for more async calls: above
/// [`RESULTS_FULL_AT`] of its byte limit, new async calls are refused
/// (the rest is left for the results of calls already accepted), while
/// synchronous calls go on.
#[derive(Default)]
pub(crate) struct ResultsRoom {
    full: std::sync::atomic::AtomicBool,
}

/// The share of `OLIN_RESULTS`' byte limit past which async calls wait.
pub(crate) const RESULTS_FULL_AT: f64 = 0.9;

impl ResultsRoom {
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the bucket's size every `every` until `stop`.
    pub(crate) async fn follow(&self, kv: kv::Store, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut stream = kv.stream;
        loop {
            match stream.info().await {
                Ok(info) => {
                    let (used, max) = (info.state.bytes as f64, info.config.max_bytes);
                    let full = max > 0 && used >= max as f64 * RESULTS_FULL_AT;
                    if full != self.is_full() {
                        warn!(used, max, full, "async results storage (OLIN_RESULTS) fill changed");
                    }
                    self.full.store(full, std::sync::atomic::Ordering::Relaxed);
                }
                Err(err) => warn!(%err, "cannot read the size of OLIN_RESULTS"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
