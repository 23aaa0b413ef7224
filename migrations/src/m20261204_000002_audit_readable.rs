//! A readable audit log: who acted (`actor`, their name at the time, kept
//! when the user is deleted), on whose resource (`owner_id`: the owner of
//! the function or the user acted on, so owners see what was done to their
//! things), from where (`source`, the client address) and with what
//! outcome (`ok`, or the error code of a refused change).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const COLUMNS: &[(&str, &str)] =
    &[("actor", "TEXT"), ("owner_id", "TEXT"), ("source", "TEXT"), ("outcome", "TEXT NOT NULL DEFAULT 'ok'")];

const INDEXES: &[(&str, &str)] = &[
    ("audit_log_created", "CREATE INDEX audit_log_created ON audit_log (created_at, id)"),
    ("audit_log_owner", "CREATE INDEX audit_log_owner ON audit_log (owner_id, created_at)"),
];

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (column, ty) in COLUMNS {
            db.execute_unprepared(&format!("ALTER TABLE audit_log ADD COLUMN {column} {ty}")).await?;
        }
        // Rows from before: the actor's name where the user still exists.
        db.execute_unprepared(
            "UPDATE audit_log SET actor = (SELECT username FROM users WHERE users.id = audit_log.user_id)",
        )
        .await?;
        for (_, sql) in INDEXES {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        for (column, _) in COLUMNS.iter().rev() {
            db.execute_unprepared(&format!("ALTER TABLE audit_log DROP COLUMN {column}")).await?;
        }
        Ok(())
    }
}
