//! Secret environment values are stored sealed (`olin_proto::sealed`):
//! `function_env.key_id` names the key a secret value is sealed under. NULL
//! is a plain value (and, for a secret written before this migration, one
//! control seals at its next start).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Same spelling on Postgres and SQLite.
        let sql = "ALTER TABLE function_env ADD COLUMN key_id TEXT";
        manager.get_connection().execute_unprepared(sql).await.map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = "ALTER TABLE function_env DROP COLUMN key_id";
        manager.get_connection().execute_unprepared(sql).await.map(drop)
    }
}
