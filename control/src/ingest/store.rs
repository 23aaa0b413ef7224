//! Storing a batch of execution rows, with the owners' monthly usage, in
//! one transaction: `INSERT ... SELECT FROM UNNEST` on Postgres, a
//! multi-row insert on SQLite.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait as _, DatabaseConnection, DbBackend, DbErr, EntityTrait, IntoActiveModel as _, NotSet,
    QueryFilter, QuerySelect as _, Statement, TransactionTrait as _,
};

use crate::entity::executions;

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
