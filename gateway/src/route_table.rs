//! The gateway's copy of `OLIN_ROUTES`, kept current by a KV watch: the hot
//! path reads memory, never NATS or a database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use olin_proto::backoff::Backoff;
use parking_lot::RwLock;

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use olin_proto::Message as _;
use olin_proto::v1::RouteRecord;
use tokio::sync::watch;
use tracing::{debug, warn};

/// Function name -> route record.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: RwLock<HashMap<String, Arc<RouteRecord>>>,
    synced: AtomicBool,
}

impl RouteTable {
    /// The route of `function`, if deployed.
    pub fn get(&self, function: &str) -> Option<Arc<RouteRecord>> {
        self.routes.read().get(function).cloned()
    }

    /// Whether the table has loaded the bucket at least once.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    fn apply(&self, entry: kv::Entry) {
        let mut routes = self.routes.write();
        match entry.operation {
            Operation::Delete | Operation::Purge => {
                debug!(function = %entry.key, "route removed");
                routes.remove(&entry.key);
            }
            Operation::Put => match RouteRecord::decode(entry.value) {
                Ok(r) => {
                    debug!(function = %entry.key, deployment = %r.deployment_id, "route updated");
                    routes.insert(entry.key, Arc::new(r));
                }
                Err(err) => warn!(%err, key = %entry.key, "undecodable route record ignored"),
            },
        }
    }

    /// Follows the bucket until `stop`; a broken watch is re-established.
    pub(crate) async fn follow(self: Arc<Self>, kv: kv::Store, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            // The table is loaded once the watch has delivered every record
            // that existed when it began (the last one has delta 0), or at
            // once if the bucket holds none.
            let mut stream = kv.stream.clone();
            let existing = tokio::select! {
                info = stream.info() => info.map(|i| i.state.messages),
                _ = stop.wait_for(|s| *s) => return,
            };
            let watch = match existing {
                Ok(n) => {
                    let w = kv.watch_with_history(">").await;
                    if n == 0 && w.is_ok() {
                        self.synced.store(true, Ordering::Relaxed);
                    }
                    w
                }
                Err(err) => {
                    warn!(%err, "route bucket unreadable; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            let mut watch = match watch {
                Ok(w) => {
                    backoff.reset();
                    w
                }
                Err(err) => {
                    warn!(%err, "route watch failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    next = watch.next() => match next {
                        Some(Ok(entry)) => {
                            let caught_up = entry.delta == 0;
                            self.apply(entry);
                            if caught_up {
                                self.synced.store(true, Ordering::Relaxed);
                            }
                        }
                        Some(Err(err)) => { warn!(%err, "route watch error"); break; }
                        None => break,
                    },
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
