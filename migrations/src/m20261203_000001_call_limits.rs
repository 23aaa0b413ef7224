//! Call limits: a function's rate limit (`rate_per_second`, `rate_burst`)
//! and concurrency limit (`max_concurrency`), a user's monthly quotas
//! (`quota_calls_month`, `quota_fuel_month`; NULL is none), and
//! `usage_monthly`, the calls and fuel of each user in each calendar month
//! (UTC), counted as execution records are ingested so that checking a
//! quota reads one row.

use sea_orm_migration::prelude::*;

use crate::dialect::Dialect;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Same spelling on Postgres and SQLite.
const COLUMNS: &[(&str, &str, &str)] = &[
    ("functions", "rate_per_second", "INTEGER"),
    ("functions", "rate_burst", "INTEGER"),
    ("functions", "max_concurrency", "INTEGER"),
    ("users", "quota_calls_month", "BIGINT"),
    ("users", "quota_fuel_month", "BIGINT"),
];

const USAGE_MONTHLY: &str = "CREATE TABLE usage_monthly (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    calls BIGINT NOT NULL DEFAULT 0,
    fuel BIGINT NOT NULL DEFAULT 0,
    {stamps},
    PRIMARY KEY (user_id, month)
)";

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        for (table, column, ty) in COLUMNS {
            db.execute_unprepared(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")).await?;
        }
        db.execute_unprepared(&d.ddl(USAGE_MONTHLY)).await?;
        db.execute_unprepared(&d.updated_at_trigger("usage_monthly")).await.map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        db.execute_unprepared(&d.drop_table("usage_monthly")).await?;
        for (table, column, _) in COLUMNS.iter().rev() {
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {column}")).await?;
        }
        Ok(())
    }
}
