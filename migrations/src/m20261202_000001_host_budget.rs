//! Functions get a host budget limit (`functions.host_budget_bytes`): the
//! bytes the worker may keep for one call outside the guest's linear memory.
//! NULL is the server default, as for the other limits.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Same spelling on Postgres and SQLite.
        let sql = "ALTER TABLE functions ADD COLUMN host_budget_bytes BIGINT";
        manager.get_connection().execute_unprepared(sql).await.map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = "ALTER TABLE functions DROP COLUMN host_budget_bytes";
        manager.get_connection().execute_unprepared(sql).await.map(drop)
    }
}
