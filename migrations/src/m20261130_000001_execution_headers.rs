//! Execution records keep the response headers the function set, as a JSON
//! array of `{"name", "value"}` objects in their order (values decoded as
//! UTF-8, lossily), for the call detail of the API and the panel.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Same spelling on Postgres and SQLite; old rows get an empty list.
        let sql = "ALTER TABLE executions ADD COLUMN response_headers TEXT NOT NULL DEFAULT '[]'";
        manager.get_connection().execute_unprepared(sql).await.map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite has DROP COLUMN since 3.35 (sqlx bundles a newer one).
        let sql = "ALTER TABLE executions DROP COLUMN response_headers";
        manager.get_connection().execute_unprepared(sql).await.map(drop)
    }
}
