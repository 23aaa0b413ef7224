//! Execution records: a durable pull consumer (`control`) on `OLIN_EVENTS`
//! turns each `ExecutionEvent` into an `executions` row. Batches are
//! inserted with one statement, idempotent on the invocation id
//! (`ON CONFLICT DO NOTHING`), and acked only after the insert commits, so
//! a control plane that stops mid-batch loses nothing and duplicates
//! nothing: the unacked events come again and conflict away.
//!
//! Two tasks form a pipeline: the reader fetches and decodes the next batch
//! while the writer stores the previous one. On Postgres a batch is one
//! `INSERT ... SELECT FROM UNNEST($1, ..., $22)` with one array per column
//! (23 parameters whatever the batch size, where a multi-row `VALUES`
//! statement binds 23 per row); SQLite, the embedded default, gets the
//! multi-row statement.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use olin_proto::Message as _;
use olin_proto::backoff::Backoff;
use olin_proto::v1::{ExecutionEvent, Header, Outcome};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait as _, DatabaseConnection, DbBackend, DbErr, EntityTrait, IntoActiveModel as _, NotSet,
    QueryFilter, QuerySelect as _, Statement, TransactionTrait as _,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::entity::{deployments, executions, functions};

/// Events per insert at most.
const BATCH: usize = 1000;

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

/// The row of one event, with the owner and function it belongs to
/// (`created_at`/`updated_at` are left to the database).
pub fn row(e: ExecutionEvent, owner: Option<String>, function_id: Option<String>) -> executions::Model {
    let usage = e.usage.clone().unwrap_or_default();
    let outcome = Outcome::try_from(e.outcome).unwrap_or(Outcome::Unspecified).header_value().to_owned();
    let now = Utc::now();
    executions::Model {
        invocation_id: e.invocation_id,
        owner_id: owner,
        function_id,
        function_name: e.function,
        deployment_id: e.deployment_id,
        module_sha256: e.module_sha256,
        outcome,
        status: i32::try_from(e.status).unwrap_or(0),
        exit_code: e.exit_code,
        wall_us: i64_of(usage.wall_us),
        fuel: i64_of(usage.fuel_used),
        peak_memory_bytes: i64_of(usage.peak_memory_bytes),
        bytes_in: i64_of(usage.bytes_in),
        bytes_out: i64_of(usage.bytes_out),
        stderr_tail: e.stderr_tail.to_vec(),
        error: e.error,
        worker_id: e.worker_id,
        method: e.method,
        path: e.path,
        is_async: e.r#async,
        response_headers: headers_json(&e.headers),
        started_at: time(e.started_unix_ms),
        finished_at: time(e.finished_unix_ms),
        created_at: now,
        updated_at: now,
    }
}

/// `headers` as stored: the JSON array the API shows.
fn headers_json(headers: &[Header]) -> String {
    let list: Vec<olin_api::Header> = headers.iter().map(|h| olin_api::Header::new(&h.name, &h.value)).collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned())
}

/// The UNNEST insert: one array parameter per column.
const INSERT_UNNEST: &str = "INSERT INTO executions (invocation_id, owner_id, function_id, function_name, \
    deployment_id, module_sha256, outcome, status, exit_code, wall_us, fuel, peak_memory_bytes, bytes_in, \
    bytes_out, stderr_tail, error, worker_id, method, path, is_async, response_headers, started_at, finished_at) \
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
    $8::int4[], $9::int4[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::bytea[], \
    $16::text[], $17::text[], $18::text[], $19::text[], $20::bool[], $21::text[], $22::timestamptz[], \
    $23::timestamptz[]) \
    ON CONFLICT (invocation_id) DO NOTHING";

/// The UNNEST insert, counting the rows it inserted (not those that
/// conflicted away) into `usage_monthly` in the same statement. Built once
/// from the constants above: no input reaches the SQL text.
static INSERT_AND_COUNT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH inserted AS ({INSERT_UNNEST} RETURNING owner_id, fuel, started_at) \
         INSERT INTO usage_monthly (user_id, month, calls, fuel) \
         SELECT i.owner_id, to_char(i.started_at AT TIME ZONE 'UTC', 'YYYY-MM'), count(*), sum(i.fuel) \
         FROM inserted i JOIN users u ON u.id = i.owner_id GROUP BY 1, 2 \
         {USAGE_UPSERT}"
    )
});

/// Adds to a user's month (both databases spell it so).
const USAGE_UPSERT: &str = "ON CONFLICT (user_id, month) DO UPDATE SET \
    calls = usage_monthly.calls + excluded.calls, fuel = usage_monthly.fuel + excluded.fuel";

/// Inserts `rows`, skipping invocation ids already recorded, and adds the
/// inserted ones to their owners' `usage_monthly`, atomically: a batch that
/// comes again is neither stored nor counted twice.
///
/// # Errors
/// A database failure.
pub async fn insert(db: &DatabaseConnection, rows: &[executions::Model]) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        return insert_unnest(db, rows).await;
    }
    // SQLite (one writer): what is new is what is not stored yet.
    let txn = db.begin().await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.invocation_id.as_str()).collect();
    let stored: std::collections::HashSet<String> = executions::Entity::find()
        .filter(executions::Column::InvocationId.is_in(ids))
        .select_only()
        .column(executions::Column::InvocationId)
        .into_tuple()
        .all(&txn)
        .await?
        .into_iter()
        .collect();
    let mut counts: HashMap<(String, String), (i64, i64)> = HashMap::new();
    let mut fresh = Vec::new();
    for r in rows.iter().filter(|r| !stored.contains(&r.invocation_id)) {
        if let Some(owner) = &r.owner_id {
            let c = counts.entry((owner.clone(), crate::quota::month(r.started_at))).or_default();
            *c = (c.0 + 1, c.1.saturating_add(r.fuel));
        }
        let mut a = r.clone().into_active_model();
        a.created_at = NotSet;
        a.updated_at = NotSet;
        fresh.push(a);
    }
    if !fresh.is_empty() {
        let on_conflict = OnConflict::column(executions::Column::InvocationId).do_nothing().to_owned();
        match executions::Entity::insert_many(fresh).on_conflict(on_conflict).exec_without_returning(&txn).await {
            Ok(_) | Err(DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e),
        }
    }
    for ((user, month), (calls, fuel)) in counts {
        let sql = format!(
            "INSERT INTO usage_monthly (user_id, month, calls, fuel) \
             SELECT id, ?, ?, ? FROM users WHERE id = ? {USAGE_UPSERT}"
        );
        let values = [month.into(), calls.into(), fuel.into(), user.into()];
        txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
    }
    txn.commit().await
}

/// Column arrays of a batch, in `INSERT_UNNEST` order.
#[derive(Default)]
struct Columns {
    invocation_id: Vec<String>,
    owner_id: Vec<Option<String>>,
    function_id: Vec<Option<String>>,
    function_name: Vec<String>,
    deployment_id: Vec<String>,
    module_sha256: Vec<String>,
    outcome: Vec<String>,
    status: Vec<i32>,
    exit_code: Vec<i32>,
    wall_us: Vec<i64>,
    fuel: Vec<i64>,
    peak_memory_bytes: Vec<i64>,
    bytes_in: Vec<i64>,
    bytes_out: Vec<i64>,
    stderr_tail: Vec<Vec<u8>>,
    error: Vec<String>,
    worker_id: Vec<String>,
    method: Vec<String>,
    path: Vec<String>,
    is_async: Vec<bool>,
    response_headers: Vec<String>,
    started_at: Vec<DateTime<Utc>>,
    finished_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn push(&mut self, r: &executions::Model) {
        self.invocation_id.push(r.invocation_id.clone());
        self.owner_id.push(r.owner_id.clone());
        self.function_id.push(r.function_id.clone());
        self.function_name.push(r.function_name.clone());
        self.deployment_id.push(r.deployment_id.clone());
        self.module_sha256.push(r.module_sha256.clone());
        self.outcome.push(r.outcome.clone());
        self.status.push(r.status);
        self.exit_code.push(r.exit_code);
        self.wall_us.push(r.wall_us);
        self.fuel.push(r.fuel);
        self.peak_memory_bytes.push(r.peak_memory_bytes);
        self.bytes_in.push(r.bytes_in);
        self.bytes_out.push(r.bytes_out);
        self.stderr_tail.push(r.stderr_tail.clone());
        self.error.push(r.error.clone());
        self.worker_id.push(r.worker_id.clone());
        self.method.push(r.method.clone());
        self.path.push(r.path.clone());
        self.is_async.push(r.is_async);
        self.response_headers.push(r.response_headers.clone());
        self.started_at.push(r.started_at);
        self.finished_at.push(r.finished_at);
    }
}

async fn insert_unnest(db: &DatabaseConnection, rows: &[executions::Model]) -> Result<(), DbErr> {
    let mut c = Columns::default();
    for r in rows {
        c.push(r);
    }
    sea_orm::sqlx::query(INSERT_AND_COUNT.as_str())
        .bind(c.invocation_id)
        .bind(c.owner_id)
        .bind(c.function_id)
        .bind(c.function_name)
        .bind(c.deployment_id)
        .bind(c.module_sha256)
        .bind(c.outcome)
        .bind(c.status)
        .bind(c.exit_code)
        .bind(c.wall_us)
        .bind(c.fuel)
        .bind(c.peak_memory_bytes)
        .bind(c.bytes_in)
        .bind(c.bytes_out)
        .bind(c.stderr_tail)
        .bind(c.error)
        .bind(c.worker_id)
        .bind(c.method)
        .bind(c.path)
        .bind(c.is_async)
        .bind(c.response_headers)
        .bind(c.started_at)
        .bind(c.finished_at)
        .execute(db.get_postgres_connection_pool())
        .await
        .map(drop)
        .map_err(|e| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e.into())))
}

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
    let writer = tokio::spawn(write(db.clone(), rx, metrics, stop.clone()));
    read(db, consumer, tx, stop).await;
    olin_telemetry::join("ingest writer", writer).await;
}

/// Fetches, decodes and attributes batches until `stop`.
async fn read(
    db: DatabaseConnection,
    consumer: PullConsumer,
    tx: mpsc::Sender<Batch>,
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
            match ExecutionEvent::decode(msg.payload.clone()) {
                Ok(e) if !e.invocation_id.is_empty() => {
                    events.push(e);
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
        loop {
            match insert(&db, &rows).await {
                Ok(()) => break,
                Err(err) => {
                    metrics.ingest_failures.inc();
                    warn!(%err, count, "storing execution rows failed; retrying");
                    if !pause(&mut backoff, &mut stop).await {
                        // Unacked: the events come again to whoever runs next.
                        return;
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
