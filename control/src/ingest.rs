//! Execution records: a durable pull consumer (`control`) on `OLIN_EVENTS`
//! turns each `ExecutionEvent` into an `executions` row. Batches are
//! inserted with one multi-row statement, idempotent on the invocation id
//! (`ON CONFLICT DO NOTHING`), and acked only after the insert commits, so
//! a control plane that stops mid-batch loses nothing and duplicates
//! nothing: the unacked events come again and conflict away.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use olin_proto::Message as _;
use olin_proto::v1::{ExecutionEvent, Outcome};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::entity::{deployments, executions, functions};

/// The durable consumer every control replica shares.
pub const CONSUMER: &str = "control";

/// Events per insert at most.
const BATCH: usize = 1000;

/// Creates (idempotently) the `control` consumer on `OLIN_EVENTS`.
///
/// # Errors
/// If JetStream refuses.
pub async fn consumer(js: &jetstream::Context) -> Result<PullConsumer, String> {
    let stream = js.get_stream(olin_proto::subject::STREAM_EVENTS).await.map_err(|e| e.to_string())?;
    stream
        .get_or_create_consumer(
            CONSUMER,
            jetstream::consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 100_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// Who owns the function of a deployment, cached: deployments never move.
#[derive(Default)]
struct Owners {
    by_deployment: HashMap<String, (Option<String>, Option<String>)>,
}

impl Owners {
    async fn of(
        &mut self,
        db: &DatabaseConnection,
        deployment_id: &str,
    ) -> Result<(Option<String>, Option<String>), DbErr> {
        if let Some(hit) = self.by_deployment.get(deployment_id) {
            return Ok(hit.clone());
        }
        let found = match deployments::Entity::find_by_id(deployment_id.to_owned()).one(db).await? {
            Some(d) => {
                let owner = functions::Entity::find()
                    .filter(functions::Column::Id.eq(&d.function_id))
                    .one(db)
                    .await?
                    .map(|f| f.owner_id);
                (owner, Some(d.function_id))
            }
            None => (None, None),
        };
        // Unknown deployments (routes published by hand) are not cached: the row may come.
        if found.1.is_some() {
            self.by_deployment.insert(deployment_id.to_owned(), found.clone());
        }
        Ok(found)
    }
}

fn time(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The row of one event, with the owner and function it belongs to.
pub fn row(e: ExecutionEvent, owner: Option<String>, function_id: Option<String>) -> executions::ActiveModel {
    let usage = e.usage.clone().unwrap_or_default();
    let outcome = Outcome::try_from(e.outcome).unwrap_or(Outcome::Unspecified).header_value().to_owned();
    executions::ActiveModel {
        invocation_id: Set(e.invocation_id),
        owner_id: Set(owner),
        function_id: Set(function_id),
        function_name: Set(e.function),
        deployment_id: Set(e.deployment_id),
        module_sha256: Set(e.module_sha256),
        outcome: Set(outcome),
        status: Set(i32::try_from(e.status).unwrap_or(0)),
        exit_code: Set(e.exit_code),
        wall_us: Set(i64_of(usage.wall_us)),
        fuel: Set(i64_of(usage.fuel_used)),
        peak_memory_bytes: Set(i64_of(usage.peak_memory_bytes)),
        bytes_in: Set(i64_of(usage.bytes_in)),
        bytes_out: Set(i64_of(usage.bytes_out)),
        stderr_tail: Set(e.stderr_tail.to_vec()),
        error: Set(e.error),
        worker_id: Set(e.worker_id),
        method: Set(e.method),
        path: Set(e.path),
        is_async: Set(e.r#async),
        started_at: Set(time(e.started_unix_ms)),
        finished_at: Set(time(e.finished_unix_ms)),
        ..Default::default()
    }
}

/// Inserts `rows` in one statement, skipping invocation ids already recorded.
///
/// # Errors
/// A database failure.
pub async fn insert(db: &DatabaseConnection, rows: Vec<executions::ActiveModel>) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let on_conflict = OnConflict::column(executions::Column::InvocationId).do_nothing().to_owned();
    match executions::Entity::insert_many(rows).on_conflict(on_conflict).exec_without_returning(db).await {
        Ok(_) | Err(DbErr::RecordNotInserted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Ingests events until `stop`. Database or NATS failures are retried
/// with backoff; nothing is acked that is not stored.
pub async fn run(
    db: DatabaseConnection,
    consumer: PullConsumer,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut owners = Owners::default();
    let mut backoff = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = consumer.fetch().max_messages(BATCH).expires(Duration::from_millis(500)).messages().await;
        let mut messages = match batch {
            Ok(m) => m,
            Err(err) => {
                warn!(%err, "fetching execution events failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut pending = Vec::new();
        let mut events = Vec::new();
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = stop.changed() => return,
            };
            let Some(msg) = next else { break };
            let Ok(msg) = msg else { continue };
            match ExecutionEvent::decode(msg.payload.clone()) {
                Ok(e) if !e.invocation_id.is_empty() => {
                    events.push(e);
                    pending.push(msg);
                }
                _ => {
                    warn!(subject = %msg.subject, "undecodable execution event dropped");
                    let _ = msg.ack().await;
                }
            }
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
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let rows: Vec<_> = events
            .into_iter()
            .map(|e| {
                let (owner, function_id) = batch_owners.get(&e.deployment_id).cloned().unwrap_or_default();
                row(e, owner, function_id)
            })
            .collect();
        let count = rows.len();
        match insert(&db, rows).await {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                metrics.events_ingested.fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
                for msg in pending {
                    if let Err(err) = msg.ack().await {
                        debug!(%err, "event ack failed; it will come again and conflict away");
                    }
                }
                if count > 0 {
                    debug!(count, "execution rows stored");
                }
            }
            Err(err) => {
                metrics.ingest_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!(%err, count, "storing execution rows failed; the events will come again");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
