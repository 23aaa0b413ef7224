//! Sign-in through OpenID providers: `identities` ties an issuer's subject
//! (never an e-mail address, which a provider may reassign) to the user
//! provisioned at its first sign-in.

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
        for statement in [
            d.ddl(
                "CREATE TABLE identities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    last_login_at {ts},
    {stamps},
    UNIQUE (issuer, subject)
)",
            ),
            "CREATE INDEX identities_user ON identities (user_id)".to_owned(),
            d.updated_at_trigger("identities"),
        ] {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE identities").await.map(drop)
    }
}
