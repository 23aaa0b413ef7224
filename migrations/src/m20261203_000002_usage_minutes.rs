//! What outlives execution records: `usage_minutes`, the calls of each
//! function in each minute (UTC) by outcome and wall-time bucket, counted as
//! execution records are ingested, so usage charts survive the pruning of
//! `executions`; and `execution_attempts`, the runs of a call after its
//! first (a worker lost, a reply lost in a reconnect), so reruns are
//! recorded rather than silently dropped.

use sea_orm_migration::prelude::*;

use crate::dialect::Dialect;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// `wall_bucket` is `floor(4 * log2(wall_us + 1))`: quarter powers of two,
/// so a percentile read back from the buckets is within 19% of the truth.
const USAGE_MINUTES: &str = "CREATE TABLE usage_minutes (
    function_id TEXT NOT NULL,
    minute {ts} NOT NULL,
    outcome TEXT NOT NULL,
    wall_bucket INTEGER NOT NULL,
    owner_id TEXT,
    calls BIGINT NOT NULL DEFAULT 0,
    reruns BIGINT NOT NULL DEFAULT 0,
    wall_us BIGINT NOT NULL DEFAULT 0,
    fuel BIGINT NOT NULL DEFAULT 0,
    bytes_in BIGINT NOT NULL DEFAULT 0,
    bytes_out BIGINT NOT NULL DEFAULT 0,
    {stamps},
    PRIMARY KEY (function_id, minute, outcome, wall_bucket)
)";

const EXECUTION_ATTEMPTS: &str = "CREATE TABLE execution_attempts (
    invocation_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    started_at {ts} NOT NULL,
    finished_at {ts} NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    wall_us BIGINT NOT NULL,
    fuel BIGINT NOT NULL,
    peak_memory_bytes BIGINT NOT NULL,
    error TEXT NOT NULL,
    {stamps},
    PRIMARY KEY (invocation_id, worker_id, started_at)
)";

/// Usage per owner over time; pruning by age (of rollups, records and
/// attempts).
const INDEXES: &[&str] = &[
    "CREATE INDEX usage_minutes_owner ON usage_minutes (owner_id, minute)",
    "CREATE INDEX usage_minutes_minute ON usage_minutes (minute)",
    "CREATE INDEX executions_started ON executions (started_at)",
    "CREATE INDEX execution_attempts_started ON execution_attempts (started_at)",
];

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        for (table, ddl) in [("usage_minutes", USAGE_MINUTES), ("execution_attempts", EXECUTION_ATTEMPTS)] {
            db.execute_unprepared(&d.ddl(ddl)).await?;
            db.execute_unprepared(&d.updated_at_trigger(table)).await?;
        }
        for index in INDEXES {
            db.execute_unprepared(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS executions_started").await?;
        for table in ["execution_attempts", "usage_minutes"] {
            db.execute_unprepared(&d.drop_table(table)).await?;
        }
        Ok(())
    }
}
