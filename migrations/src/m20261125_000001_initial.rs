//! The first schema: accounts, functions and their versions, deployments,
//! configuration, invoke keys, execution records and the audit log.
//!
//! Ids are UUIDv7 strings made by the control plane (time-ordered, so
//! indexes stay append-mostly); executions are keyed by invocation id, which
//! makes ingestion idempotent.

use sea_orm_migration::prelude::*;

use crate::dialect::Dialect;

/// Tables in creation order (dropped in reverse), with their DDL.
const TABLES: &[(&str, &str)] = &[
    (
        "users",
        "CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    {stamps}
)",
    ),
    (
        "api_tokens",
        "CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at {ts} NOT NULL,
    revoked_at {ts},
    {stamps}
)",
    ),
    (
        "functions",
        "CREATE TABLE functions (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    visibility TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
    fuel BIGINT,
    memory_bytes BIGINT,
    wall_ms BIGINT,
    max_output_bytes BIGINT,
    async_max_attempts INTEGER,
    egress_allow TEXT NOT NULL DEFAULT '[]',
    {stamps}
)",
    ),
    (
        "versions",
        "CREATE TABLE versions (
    id TEXT PRIMARY KEY,
    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    abi TEXT NOT NULL,
    imports TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    {stamps},
    UNIQUE (function_id, number)
)",
    ),
    (
        "deployments",
        "CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    canary_version_id TEXT REFERENCES versions (id) ON DELETE CASCADE,
    canary_percent INTEGER NOT NULL DEFAULT 0 CHECK (canary_percent BETWEEN 0 AND 100),
    active {bool} NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    {stamps}
)",
    ),
    (
        "function_env",
        "CREATE TABLE function_env (
    id TEXT PRIMARY KEY,
    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    secret {bool} NOT NULL DEFAULT FALSE,
    {stamps},
    UNIQUE (function_id, name)
)",
    ),
    (
        "invoke_keys",
        "CREATE TABLE invoke_keys (
    id TEXT PRIMARY KEY,
    function_id TEXT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    revoked_at {ts},
    {stamps}
)",
    ),
    (
        "executions",
        "CREATE TABLE executions (
    invocation_id TEXT PRIMARY KEY,
    owner_id TEXT,
    function_id TEXT,
    function_name TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    module_sha256 TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    exit_code INTEGER NOT NULL,
    wall_us BIGINT NOT NULL,
    fuel BIGINT NOT NULL,
    peak_memory_bytes BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    stderr_tail {blob} NOT NULL,
    error TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    is_async {bool} NOT NULL,
    started_at {ts} NOT NULL,
    finished_at {ts} NOT NULL,
    {stamps}
)",
    ),
    (
        "audit_log",
        "CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    {stamps}
)",
    ),
];

/// Indexes for the queries of the API and of ingestion.
const INDEXES: &[&str] = &[
    "CREATE INDEX api_tokens_user ON api_tokens (user_id)",
    "CREATE INDEX functions_owner ON functions (owner_id, name)",
    "CREATE INDEX versions_sha256 ON versions (sha256)",
    "CREATE INDEX deployments_function ON deployments (function_id, created_at)",
    "CREATE UNIQUE INDEX deployments_one_active ON deployments (function_id) WHERE active",
    "CREATE INDEX invoke_keys_function ON invoke_keys (function_id)",
    "CREATE INDEX executions_function ON executions (function_id, started_at)",
    "CREATE INDEX executions_owner ON executions (owner_id, started_at)",
    "CREATE INDEX audit_log_user ON audit_log (user_id, created_at)",
];

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature (async_trait) elides the manager's lifetime.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        for sql in d.prelude() {
            db.execute_unprepared(&sql).await?;
        }
        for (table, ddl) in TABLES {
            db.execute_unprepared(&d.ddl(ddl)).await?;
            db.execute_unprepared(&d.updated_at_trigger(table)).await?;
        }
        for sql in INDEXES {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Dialect::of(manager)?;
        let db = manager.get_connection();
        for (table, _) in TABLES.iter().rev() {
            db.execute_unprepared(&d.drop_table(table)).await?;
        }
        for sql in d.epilogue() {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_table_is_listed_for_the_trigger_tests() {
        let mut created: Vec<&str> = super::TABLES.iter().map(|(t, _)| *t).collect();
        // Tables of later migrations.
        created.extend(["usage_monthly", "usage_minutes", "execution_attempts"]);
        assert_eq!(created, crate::TABLES);
    }
}
