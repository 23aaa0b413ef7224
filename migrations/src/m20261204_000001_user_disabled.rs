//! Disabled accounts: `users.disabled_at`, set when an admin disables a
//! user (NULL: enabled). A disabled user's tokens stop working at once and
//! they cannot log in; their functions keep serving.

use sea_orm_migration::prelude::*;

use crate::dialect::Dialect;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        db.execute_unprepared(&d.ddl("ALTER TABLE users ADD COLUMN disabled_at {ts}")).await.map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE users DROP COLUMN disabled_at").await.map(drop)
    }
}
