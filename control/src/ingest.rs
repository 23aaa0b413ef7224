//! Execution records: a durable pull consumer (`control`) on `OLIN_EVENTS`
//! turns each `ExecutionEvent` (one to a message, as workers send them, or
//! several in an `ExecutionEventBatch`) into an `executions` row (a call's first
//! run) or an `execution_attempts` row (a later run of it), and adds it to
//! the per-minute rollups. Batches are stored in one transaction,
//! idempotent on the run (invocation id, worker, start), and acked only
//! after it commits, so a control plane that stops mid-batch loses nothing
//! and duplicates nothing: the unacked events come again and conflict away.
//! `OLIN_EVENTS` is a work queue: an acked event leaves the stream.
//!
//! Two tasks form a pipeline: the reader fetches and decodes the next batch
//! while the writer stores the previous one. On Postgres a batch is one
//! `INSERT ... SELECT FROM UNNEST($1, ..., $22)` with one array per column
//! (23 parameters whatever the batch size, where a multi-row `VALUES`
//! statement binds 23 per row); SQLite, the embedded default, gets the
//! multi-row statement.
//!
//! # Layout
//! - `record`: the row of an event, and the owner it is attributed to.
//! - `store`: the batch insert, with reruns and usage accounting.

mod record;
mod store;

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt as _;
use olin_proto::backoff::Backoff;
use olin_proto::v1::ExecutionEventBatch;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::entity::executions;
use record::Owners;
pub use record::row;
pub use store::insert;

/// Messages per fetch, and events per insert, at most (a message holds one
/// event or, as an `ExecutionEventBatch`, several).
const BATCH: usize = 1000;

/// A decoded batch on its way to the writer, with the messages to ack once
/// it is stored.
struct Batch {
    rows: Vec<executions::Model>,
    messages: Vec<jetstream::Message>,
}

/// Retries start at 100 ms and double up to 5 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// Sleeps `backoff`'s next delay; false if `stop` came first.
async fn pause(backoff: &mut Backoff, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(backoff.next_delay()) => true,
        _ = stop.changed() => false,
    }
}

/// Ingests events until `stop`. Database or NATS failures are retried
/// with backoff; nothing is acked that is not stored.
pub async fn run(
    db: DatabaseConnection,
    consumer: PullConsumer,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    stop: watch::Receiver<bool>,
) {
    // One batch waits while another is written: fetch and insert overlap.
    let (tx, rx) = mpsc::channel(1);
    let writer = tokio::spawn(write(db.clone(), rx, metrics.clone(), stop.clone()));
    read(db, consumer, tx, &metrics, stop).await;
    olin_telemetry::join("ingest writer", writer).await;
}

/// Fetches, decodes and attributes batches until `stop`.
async fn read(
    db: DatabaseConnection,
    consumer: PullConsumer,
    tx: mpsc::Sender<Batch>,
    metrics: &crate::metrics::Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut owners = Owners::default();
    let mut backoff = BACKOFF;
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = consumer.fetch().max_messages(BATCH).expires(Duration::from_millis(500)).messages().await;
        let mut fetched = match batch {
            Ok(m) => m,
            Err(err) => {
                warn!(%err, "fetching execution events failed; retrying");
                if !pause(&mut backoff, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let mut messages = Vec::new();
        let mut events = Vec::new();
        loop {
            let next = tokio::select! {
                m = fetched.next() => m,
                _ = stop.changed() => return,
            };
            let Some(msg) = next else { break };
            let Ok(msg) = msg else { continue };
            if let Ok(info) = msg.info() {
                metrics.events_pending.set(i64::try_from(info.pending).unwrap_or(i64::MAX));
            }
            match ExecutionEventBatch::events_in(&msg.payload) {
                Ok(found) if !found.is_empty() => {
                    events.extend(found);
                    messages.push(msg);
                }
                _ => {
                    warn!(subject = %msg.subject, "undecodable execution event dropped");
                    if let Err(err) = msg.ack().await {
                        warn!(%err, "ack of an undecodable event failed; it comes again");
                    }
                }
            }
        }
        if events.is_empty() {
            continue;
        }
        // One lookup per distinct deployment of the batch (most batches: a few).
        let mut batch_owners: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
        let mut lookup_failed = false;
        for e in &events {
            if batch_owners.contains_key(&e.deployment_id) {
                continue;
            }
            match owners.of(&db, &e.deployment_id).await {
                Ok(o) => {
                    batch_owners.insert(e.deployment_id.clone(), o);
                }
                Err(err) => {
                    warn!(%err, "looking up a deployment failed; the batch will come again");
                    lookup_failed = true;
                    break;
                }
            }
        }
        if lookup_failed {
            // Unacked: redelivered after ack_wait.
            if !pause(&mut backoff, &mut stop).await {
                return;
            }
            continue;
        }
        backoff.reset();
        let rows = events
            .into_iter()
            .map(|e| {
                let (owner, function_id) = batch_owners.get(&e.deployment_id).cloned().unwrap_or_default();
                row(e, owner, function_id)
            })
            .collect();
        if tx.send(Batch { rows, messages }).await.is_err() {
            return;
        }
    }
}

/// Stores each batch (retrying with backoff until it is in or `stop`), then
/// acks its messages.
async fn write(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<Batch>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF;
    while let Some(Batch { rows, messages }) = rx.recv().await {
        let count = rows.len();
        // Idempotent on the run: a part stored before a later one fails
        // conflicts away when the unacked messages come again.
        for part in rows.chunks(BATCH) {
            loop {
                match insert(&db, part).await {
                    Ok(()) => break,
                    Err(err) => {
                        metrics.ingest_failures.inc();
                        warn!(%err, count = part.len(), "storing execution rows failed; retrying");
                        if !pause(&mut backoff, &mut stop).await {
                            // Unacked: the events come again to whoever runs next.
                            return;
                        }
                    }
                }
            }
        }
        backoff.reset();
        metrics.events_ingested.inc_by(count as u64);
        for msg in messages {
            if let Err(err) = msg.ack().await {
                debug!(%err, "event ack failed; it will come again and conflict away");
            }
        }
        debug!(count, "execution rows stored");
    }
}
