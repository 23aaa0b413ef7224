//! Storing a batch of execution runs in one transaction: each call's first
//! run as its `executions` row, later runs as `execution_attempts`, every
//! run added to the per-minute rollups (`usage_minutes`) and first runs to
//! their owners' monthly usage. `INSERT ... SELECT FROM UNNEST` on
//! Postgres, row statements on SQLite.
//!
//! A run is named by (invocation id, worker id, start): a batch that comes
//! again (control stopped before it acked) finds every run already stored
//! and counts nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IntoActiveModel as _, NotSet, QueryFilter, QuerySelect as _, Statement, TransactionTrait as _,
};

use crate::entity::executions;
use crate::rollup::{self, Key, Sums};

/// The UNNEST insert: one array parameter per column.
const INSERT_UNNEST: &str = "INSERT INTO executions (invocation_id, owner_id, function_id, function_name, \
    deployment_id, module_sha256, outcome, status, exit_code, wall_us, fuel, peak_memory_bytes, bytes_in, \
    bytes_out, stderr_tail, error, worker_id, method, path, is_async, response_headers, started_at, finished_at) \
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
    $8::int4[], $9::int4[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::bytea[], \
    $16::text[], $17::text[], $18::text[], $19::text[], $20::bool[], $21::text[], $22::timestamptz[], \
    $23::timestamptz[]) \
    ON CONFLICT (invocation_id) DO NOTHING RETURNING invocation_id, worker_id, started_at";

/// The runs already stored as the first of their calls.
const STORED_FIRST_RUNS: &str =
    "SELECT invocation_id, worker_id, started_at FROM executions WHERE invocation_id = ANY($1::text[])";

const INSERT_ATTEMPTS: &str = "INSERT INTO execution_attempts (invocation_id, worker_id, started_at, \
    finished_at, outcome, status, wall_us, fuel, peak_memory_bytes, error) \
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::int4[], \
    $7::int8[], $8::int8[], $9::int8[], $10::text[]) \
    ON CONFLICT DO NOTHING RETURNING invocation_id, worker_id, started_at";

const ATTEMPT_SQLITE: &str = "INSERT INTO execution_attempts (invocation_id, worker_id, started_at, \
    finished_at, outcome, status, wall_us, fuel, peak_memory_bytes, error) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

/// Adds to a rollup row (both databases spell it so).
const ROLLUP_UPSERT: &str = "ON CONFLICT (function_id, minute, outcome, wall_bucket) DO UPDATE SET \
    calls = usage_minutes.calls + excluded.calls, reruns = usage_minutes.reruns + excluded.reruns, \
    wall_us = usage_minutes.wall_us + excluded.wall_us, fuel = usage_minutes.fuel + excluded.fuel, \
    bytes_in = usage_minutes.bytes_in + excluded.bytes_in, bytes_out = usage_minutes.bytes_out + excluded.bytes_out";

static ROLLUP_UNNEST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO usage_minutes (function_id, minute, outcome, wall_bucket, owner_id, calls, reruns, wall_us, \
         fuel, bytes_in, bytes_out) \
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::int4[], $5::text[], $6::int8[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[]) {ROLLUP_UPSERT}"
    )
});

static ROLLUP_SQLITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO usage_minutes (function_id, minute, outcome, wall_bucket, owner_id, calls, reruns, wall_us, \
         fuel, bytes_in, bytes_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {ROLLUP_UPSERT}"
    )
});

/// Adds to a user's month (both databases spell it so).
const USAGE_UPSERT: &str = "ON CONFLICT (user_id, month) DO UPDATE SET \
    calls = usage_monthly.calls + excluded.calls, fuel = usage_monthly.fuel + excluded.fuel";

static MONTHLY_UNNEST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO usage_monthly (user_id, month, calls, fuel) \
         SELECT u.id, m.month, m.calls, m.fuel \
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[]) AS m(user_id, month, calls, fuel) \
         JOIN users u ON u.id = m.user_id {USAGE_UPSERT}"
    )
});

static MONTHLY_SQLITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO usage_monthly (user_id, month, calls, fuel) SELECT id, ?, ?, ? FROM users WHERE id = ? {USAGE_UPSERT}"
    )
});

/// One run: (invocation id, worker id, start).
type Run = (String, String, DateTime<Utc>);

fn run_of(r: &executions::Model) -> Run {
    (r.invocation_id.clone(), r.worker_id.clone(), r.started_at)
}

/// Inserts `rows` (runs of calls), each call's first run as its execution
/// record and later ones as attempts, and counts the new ones into the
/// rollups and the owners' monthly usage, atomically.
///
/// Reruns are recorded and shown in usage, never charged: quotas count
/// first runs only.
///
/// # Errors
/// A database failure.
pub async fn insert(db: &DatabaseConnection, rows: &[executions::Model]) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        return postgres::insert(db.get_postgres_connection_pool(), rows)
            .await
            .map_err(|e| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e.into())));
    }
    sqlite(db, rows).await
}

/// What a batch adds once its first runs and reruns are known.
struct Counted<'a> {
    first: Vec<&'a executions::Model>,
    reruns: Vec<&'a executions::Model>,
}

impl Counted<'_> {
    fn rollups(&self) -> BTreeMap<Key, Sums> {
        rollup::add_up(self.first.iter().copied(), self.reruns.iter().copied())
    }

    /// (user, month) -> (calls, fuel) of first runs.
    fn monthly(&self) -> HashMap<(String, String), (i64, i64)> {
        let mut counts: HashMap<(String, String), (i64, i64)> = HashMap::new();
        for r in &self.first {
            if let Some(owner) = &r.owner_id {
                let c = counts.entry((owner.clone(), crate::quota::month(r.started_at))).or_default();
                *c = (c.0 + 1, c.1.saturating_add(r.fuel));
            }
        }
        counts
    }
}

/// Of the rows not inserted as first runs, those that are other runs of a
/// stored call (not the stored run itself, come again).
fn rerun_candidates<'a>(
    rows: &'a [executions::Model],
    inserted: &HashSet<Run>,
    stored: &HashMap<String, Run>,
) -> Vec<&'a executions::Model> {
    rows.iter()
        .filter(|r| {
            let run = run_of(r);
            !inserted.contains(&run) && stored.get(&r.invocation_id).is_some_and(|first| *first != run)
        })
        .collect()
}

mod postgres {
    //! The Postgres path: a statement per table, each with array parameters.

    use sea_orm::sqlx::{self, PgPool, Postgres, Transaction};

    use super::*;

    pub(super) async fn insert(pool: &PgPool, rows: &[executions::Model]) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        let inserted = first_runs(&mut tx, rows).await?;
        let mut counted = Counted { first: Vec::new(), reruns: Vec::new() };
        let mut seen = HashSet::new();
        for r in rows {
            let run = run_of(r);
            if inserted.contains(&run) && seen.insert(run) {
                counted.first.push(r);
            }
        }
        if counted.first.len() < rows.len() {
            let ids: Vec<&str> = rows.iter().map(|r| r.invocation_id.as_str()).collect();
            let stored: Vec<Run> = sqlx::query_as(STORED_FIRST_RUNS).bind(ids).fetch_all(&mut *tx).await?;
            let stored = stored.into_iter().map(|run| (run.0.clone(), run)).collect();
            let candidates = rerun_candidates(rows, &inserted, &stored);
            if !candidates.is_empty() {
                let new: HashSet<Run> = attempts(&mut tx, &candidates).await?.into_iter().collect();
                let mut seen = HashSet::new();
                counted.reruns =
                    candidates.into_iter().filter(|r| new.contains(&run_of(r)) && seen.insert(run_of(r))).collect();
            }
        }
        rollups(&mut tx, &counted).await?;
        monthly(&mut tx, &counted).await?;
        tx.commit().await
    }

    async fn first_runs(
        tx: &mut Transaction<'_, Postgres>,
        rows: &[executions::Model],
    ) -> Result<HashSet<Run>, sqlx::Error> {
        let mut c = Columns::default();
        for r in rows {
            c.push(r);
        }
        let inserted: Vec<Run> = sqlx::query_as(INSERT_UNNEST)
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
            .fetch_all(&mut **tx)
            .await?;
        Ok(inserted.into_iter().collect())
    }

    async fn attempts(
        tx: &mut Transaction<'_, Postgres>,
        runs: &[&executions::Model],
    ) -> Result<Vec<Run>, sqlx::Error> {
        let col = |f: fn(&executions::Model) -> String| runs.iter().map(|r| f(r)).collect::<Vec<_>>();
        let num = |f: fn(&executions::Model) -> i64| runs.iter().map(|r| f(r)).collect::<Vec<_>>();
        sqlx::query_as(INSERT_ATTEMPTS)
            .bind(col(|r| r.invocation_id.clone()))
            .bind(col(|r| r.worker_id.clone()))
            .bind(runs.iter().map(|r| r.started_at).collect::<Vec<_>>())
            .bind(runs.iter().map(|r| r.finished_at).collect::<Vec<_>>())
            .bind(col(|r| r.outcome.clone()))
            .bind(runs.iter().map(|r| r.status).collect::<Vec<_>>())
            .bind(num(|r| r.wall_us))
            .bind(num(|r| r.fuel))
            .bind(num(|r| r.peak_memory_bytes))
            .bind(col(|r| r.error.clone()))
            .fetch_all(&mut **tx)
            .await
    }

    async fn rollups(tx: &mut Transaction<'_, Postgres>, counted: &Counted<'_>) -> Result<(), sqlx::Error> {
        let rows = counted.rollups();
        if rows.is_empty() {
            return Ok(());
        }
        let num = |f: fn(&Sums) -> i64| rows.values().map(f).collect::<Vec<_>>();
        sqlx::query(ROLLUP_UNNEST.as_str())
            .bind(rows.keys().map(|k| k.function_id.clone()).collect::<Vec<_>>())
            .bind(rows.keys().map(|k| k.minute).collect::<Vec<_>>())
            .bind(rows.keys().map(|k| k.outcome.clone()).collect::<Vec<_>>())
            .bind(rows.keys().map(|k| k.wall_bucket).collect::<Vec<_>>())
            .bind(rows.values().map(|s| s.owner_id.clone()).collect::<Vec<_>>())
            .bind(num(|s| s.calls))
            .bind(num(|s| s.reruns))
            .bind(num(|s| s.wall_us))
            .bind(num(|s| s.fuel))
            .bind(num(|s| s.bytes_in))
            .bind(num(|s| s.bytes_out))
            .execute(&mut **tx)
            .await
            .map(drop)
    }

    async fn monthly(tx: &mut Transaction<'_, Postgres>, counted: &Counted<'_>) -> Result<(), sqlx::Error> {
        let counts = counted.monthly();
        if counts.is_empty() {
            return Ok(());
        }
        let (keys, sums): (Vec<_>, Vec<_>) = counts.into_iter().unzip();
        let (users, months): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
        let (calls, fuel): (Vec<i64>, Vec<i64>) = sums.into_iter().unzip();
        sqlx::query(MONTHLY_UNNEST.as_str())
            .bind(users)
            .bind(months)
            .bind(calls)
            .bind(fuel)
            .execute(&mut **tx)
            .await
            .map(drop)
    }
}

/// SQLite (one writer): what is new is what is not stored yet.
async fn sqlite(db: &DatabaseConnection, rows: &[executions::Model]) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.invocation_id.as_str()).collect();
    let stored_rows: Vec<(String, String, DateTime<Utc>)> = executions::Entity::find()
        .filter(executions::Column::InvocationId.is_in(ids))
        .select_only()
        .column(executions::Column::InvocationId)
        .column(executions::Column::WorkerId)
        .column(executions::Column::StartedAt)
        .into_tuple()
        .all(&txn)
        .await?;
    let mut stored: HashMap<String, Run> = stored_rows.into_iter().map(|run| (run.0.clone(), run)).collect();
    let mut counted = Counted { first: Vec::new(), reruns: Vec::new() };
    for r in rows {
        if !stored.contains_key(&r.invocation_id) {
            stored.insert(r.invocation_id.clone(), run_of(r));
            counted.first.push(r);
        }
    }
    let inserted: HashSet<Run> = counted.first.iter().map(|r| run_of(r)).collect();
    if !counted.first.is_empty() {
        let fresh = counted.first.iter().map(|r| {
            let mut a = (*r).clone().into_active_model();
            a.created_at = NotSet;
            a.updated_at = NotSet;
            a
        });
        let on_conflict = OnConflict::column(executions::Column::InvocationId).do_nothing().to_owned();
        match executions::Entity::insert_many(fresh).on_conflict(on_conflict).exec_without_returning(&txn).await {
            Ok(_) | Err(DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e),
        }
    }
    for r in rerun_candidates(rows, &inserted, &stored) {
        let values = [
            r.invocation_id.clone().into(),
            r.worker_id.clone().into(),
            r.started_at.into(),
            r.finished_at.into(),
            r.outcome.clone().into(),
            r.status.into(),
            r.wall_us.into(),
            r.fuel.into(),
            r.peak_memory_bytes.into(),
            r.error.clone().into(),
        ];
        if execute(&txn, ATTEMPT_SQLITE, values).await? == 1 {
            counted.reruns.push(r);
        }
    }
    for (k, s) in counted.rollups() {
        let values = [
            k.function_id.into(),
            k.minute.into(),
            k.outcome.into(),
            k.wall_bucket.into(),
            s.owner_id.into(),
            s.calls.into(),
            s.reruns.into(),
            s.wall_us.into(),
            s.fuel.into(),
            s.bytes_in.into(),
            s.bytes_out.into(),
        ];
        execute(&txn, &ROLLUP_SQLITE, values).await?;
    }
    for ((user, month), (calls, fuel)) in counted.monthly() {
        execute(&txn, &MONTHLY_SQLITE, [month.into(), calls.into(), fuel.into(), user.into()]).await?;
    }
    txn.commit().await
}

/// Runs one SQLite statement; returns the rows it changed.
async fn execute<const N: usize>(
    txn: &DatabaseTransaction,
    sql: &str,
    values: [sea_orm::Value; N],
) -> Result<u64, DbErr> {
    let statement = Statement::from_sql_and_values(DbBackend::Sqlite, sql, values);
    Ok(txn.execute_raw(statement).await?.rows_affected())
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
