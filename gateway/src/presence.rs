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

    /// How many workers sent a heartbeat within the TTL.
    pub(crate) fn live(&self) -> usize {
        let cutoff = olin_proto::unix_ms().saturating_sub(self.ttl.as_millis() as u64);
        self.seen.lock().values().filter(|t| **t >= cutoff).count()
    }

    /// Reads the bucket directly (bypassing the watch) and records what it
    /// holds: used when the cached view says no worker is alive, so a worker
    /// that has just started is not missed.
    pub(crate) async fn refresh(&self, kv: &kv::Store) -> usize {
        let read = async {
            let mut keys = kv.keys().await.ok()?;
            while let Some(Ok(key)) = keys.next().await {
                if let Ok(Some(entry)) = kv.entry(&key).await {
                    self.apply(&entry);
                }
            }
            Some(())
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), read).await;
        self.live()
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
