//! Retention: execution records are kept for a configured age and, per
//! function, up to a configured count; per-minute usage rollups are kept
//! longer, so charts and monthly quotas survive the pruning of the records
//! they were counted from.
//!
//! Pruning runs in the background every [`Retention::interval`], in
//! batches of [`BATCH`] rows (one short statement each, a pause between),
//! so it never holds a long lock against ingestion or the API, however far
//! behind it starts.
//!
//! Deleted rows free their space only once the table is vacuumed. Where
//! Postgres's autovacuum does not cover these tables (switched off for the
//! server or the table), a database under retention would grow without end
//! although its rows level off (seen in the soak: 120 -> 174 MiB in ten
//! minutes at ~42,000 rows), so a pass that deleted rows then vacuums them
//! itself. A plain
//! `VACUUM` blocks neither reads nor writes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, Order,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::entity::{execution_attempts, executions, usage_minutes};

/// Rows deleted per statement.
pub const BATCH: u64 = 1000;
/// Pause between two batches: ingestion and the API get the database.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// How long execution records and usage rollups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Execution records (and their reruns) older than this are deleted;
    /// none: kept whatever their age.
    pub executions_max_age: Option<Duration>,
    /// Only a function's newest this many records are kept; none: no cap.
    pub executions_per_function: Option<u64>,
    /// Per-minute usage rollups older than this are deleted; none: kept.
    pub usage_max_age: Option<Duration>,
    /// How often pruning runs.
    pub interval: Duration,
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Execution records.
    pub executions: u64,
    /// Rollup rows.
    pub usage_rows: u64,
    /// Tables vacuumed by the pass, autovacuum not covering them.
    pub vacuumed: u64,
}

/// The tables retention deletes from, and ingestion's upserted rollups.
const CHURNED: [&str; 4] = ["executions", "execution_attempts", "usage_minutes", "usage_monthly"];

/// Vacuums those of [`CHURNED`] that Postgres's autovacuum does not cover
/// (off for the server, or for the table); returns how many. Nothing to do
/// on SQLite, which reuses freed pages by itself.
async fn reclaim(db: &DatabaseConnection) -> Result<u64, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(0);
    }
    let uncovered = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relname = ANY($1) AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace \
             AND (NOT current_setting('autovacuum')::bool \
                  OR 'autovacuum_enabled=false' = ANY(coalesce(c.reloptions, '{}')))",
            [CHURNED.map(str::to_owned).to_vec().into()],
        ))
        .await?;
    let mut vacuumed = 0;
    for row in uncovered {
        let table: String = row.try_get_by_index(0)?;
        // Only names from CHURNED reach here.
        if CHURNED.contains(&table.as_str()) {
            db.execute_unprepared(&format!("VACUUM (ANALYZE) \"{table}\"")).await?;
            vacuumed += 1;
        }
    }
    Ok(vacuumed)
}

fn before(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

/// Deletes the records `select` names, [`BATCH`] at a time, with their
/// reruns, until none is left; returns how many.
async fn delete_in_batches(
    db: &DatabaseConnection,
    select: impl Fn() -> sea_orm::Select<executions::Entity>,
) -> Result<u64, DbErr> {
    let mut deleted = 0;
    loop {
        let ids: Vec<String> =
            select().select_only().column(executions::Column::InvocationId).limit(BATCH).into_tuple().all(db).await?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        let n = ids.len() as u64;
        execution_attempts::Entity::delete_many()
            .filter(execution_attempts::Column::InvocationId.is_in(ids.clone()))
            .exec(db)
            .await?;
        deleted += executions::Entity::delete_many()
            .filter(executions::Column::InvocationId.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
        if n < BATCH {
            return Ok(deleted);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Runs `batch` (one delete statement of at most about [`BATCH`] rows) with
/// a pause between runs until it deletes nothing; returns the rows deleted.
async fn batches<F, Fut>(batch: F) -> Result<u64, DbErr>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, DbErr>>,
{
    let mut deleted = 0;
    loop {
        let n = batch().await?;
        if n == 0 {
            return Ok(deleted);
        }
        deleted += n;
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Functions that ran since `since`: the only ones whose count can have
/// grown past the cap since the last pass.
async fn active_functions(db: &DatabaseConnection, since: DateTime<Utc>) -> Result<Vec<String>, DbErr> {
    usage_minutes::Entity::find()
        .filter(usage_minutes::Column::Minute.gte(crate::rollup::minute(since)))
        .select_only()
        .column(usage_minutes::Column::FunctionId)
        .distinct()
        .into_tuple()
        .all(db)
        .await
}

/// The newest record of `function_id` past the first `keep`, if any: it
/// and everything older go.
async fn first_over_cap(
    db: &DatabaseConnection,
    function_id: &str,
    keep: u64,
) -> Result<Option<(DateTime<Utc>, String)>, DbErr> {
    executions::Entity::find()
        .filter(executions::Column::FunctionId.eq(function_id))
        .order_by(executions::Column::StartedAt, Order::Desc)
        .order_by(executions::Column::InvocationId, Order::Desc)
        .select_only()
        .column(executions::Column::StartedAt)
        .column(executions::Column::InvocationId)
        .offset(keep)
        .limit(1)
        .into_tuple()
        .one(db)
        .await
}

/// One pass at `now`. `active_since`: functions that ran since then are
/// checked against the per-function cap (every function, if none).
///
/// # Errors
/// A database failure; what was deleted before it stays deleted.
pub async fn prune(
    db: &DatabaseConnection,
    r: &Retention,
    now: DateTime<Utc>,
    active_since: Option<DateTime<Utc>>,
) -> Result<Pruned, DbErr> {
    let mut pruned = Pruned::default();
    let mut reruns = 0;
    if let Some(age) = r.executions_max_age {
        let cutoff = before(now, age);
        pruned.executions +=
            delete_in_batches(db, || executions::Entity::find().filter(executions::Column::StartedAt.lt(cutoff)))
                .await?;
        // Reruns of calls whose first run was pruned already (or never stored).
        reruns = batches(|| async move {
            let aged = Query::select()
                .column(execution_attempts::Column::InvocationId)
                .from(execution_attempts::Entity)
                .and_where(Expr::col(execution_attempts::Column::StartedAt).lt(cutoff))
                .limit(BATCH)
                .to_owned();
            execution_attempts::Entity::delete_many()
                .filter(execution_attempts::Column::InvocationId.in_subquery(aged))
                .filter(execution_attempts::Column::StartedAt.lt(cutoff))
                .exec(db)
                .await
                .map(|r| r.rows_affected)
        })
        .await?;
    }
    if let Some(keep) = r.executions_per_function {
        let functions = match active_since {
            Some(since) => active_functions(db, since).await?,
            None => {
                executions::Entity::find()
                    .filter(executions::Column::FunctionId.is_not_null())
                    .select_only()
                    .column(executions::Column::FunctionId)
                    .distinct()
                    .into_tuple()
                    .all(db)
                    .await?
            }
        };
        for f in functions {
            let Some((at, id)) = first_over_cap(db, &f, keep).await? else { continue };
            let older = Condition::any().add(executions::Column::StartedAt.lt(at)).add(
                Condition::all()
                    .add(executions::Column::StartedAt.eq(at))
                    .add(executions::Column::InvocationId.lte(id.clone())),
            );
            pruned.executions += delete_in_batches(db, || {
                executions::Entity::find().filter(executions::Column::FunctionId.eq(f.as_str())).filter(older.clone())
            })
            .await?;
        }
    }
    if let Some(age) = r.usage_max_age {
        let cutoff = before(now, age);
        // A batch of whole minutes: every function's rows of each.
        pruned.usage_rows += batches(|| async move {
            let minutes = Query::select()
                .column(usage_minutes::Column::Minute)
                .from(usage_minutes::Entity)
                .and_where(Expr::col(usage_minutes::Column::Minute).lt(cutoff))
                .order_by(usage_minutes::Column::Minute, Order::Asc)
                .limit(BATCH)
                .to_owned();
            usage_minutes::Entity::delete_many()
                .filter(usage_minutes::Column::Minute.in_subquery(minutes))
                .exec(db)
                .await
                .map(|r| r.rows_affected)
        })
        .await?;
    }
    // Only a pass that deleted something left space to reclaim.
    if pruned.executions + pruned.usage_rows + reruns > 0 {
        pruned.vacuumed = reclaim(db).await?;
    }
    Ok(pruned)
}

/// Prunes every `r.interval` until `stop`. A failed pass is logged and
/// tried again at the next.
pub async fn enforce(
    db: DatabaseConnection,
    r: Retention,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    // The first pass checks every function's count; later ones those that
    // ran since the pass before (with a minute of slack for late events).
    let mut active_since = None;
    let mut told_vacuum = false;
    loop {
        let started = Utc::now();
        match prune(&db, &r, started, active_since).await {
            Ok(p) => {
                metrics.executions_pruned.inc_by(p.executions);
                metrics.usage_rows_pruned.inc_by(p.usage_rows);
                if p.vacuumed > 0 && !told_vacuum {
                    told_vacuum = true;
                    warn!(
                        tables = p.vacuumed,
                        "autovacuum does not cover the execution and usage tables: retention vacuums them each pass"
                    );
                }
                if p.executions > 0 || p.usage_rows > 0 {
                    info!(executions = p.executions, usage_rows = p.usage_rows, "pruned by retention");
                } else {
                    debug!("retention: nothing to prune");
                }
                active_since = Some(started - chrono::Duration::minutes(1));
            }
            Err(err) => warn!(%err, "pruning by retention failed; trying again at the next pass"),
        }
        tokio::select! {
            _ = tokio::time::sleep(r.interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
