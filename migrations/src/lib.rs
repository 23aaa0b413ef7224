//! Olincloud's database schema, as sea-orm migrations that run on Postgres
//! (production, tests) and SQLite (the embedded `olinctl dev` default).
//!
//! # Layout
//! - [`Migrator`]: every migration, in order.
//! - `m20261125_000001_initial`: users, tokens, functions, versions,
//!   deployments, environment, invoke keys, executions, audit log.
//! - `m20261130_000001_execution_headers`: the response headers of each
//!   execution.
//! - `m20261202_000001_host_budget`: the host budget limit of functions.
//! - `m20261202_000002_sealed_env`: the key each secret value is sealed under.
//! - `m20261203_000001_call_limits`: functions' rate and concurrency
//!   limits, users' monthly quotas, and the monthly usage they are checked
//!   against.
//! - `m20261203_000002_usage_minutes`: per-minute usage rollups, kept
//!   longer than execution records, and the reruns of a call.
//! - `m20261204_000001_user_disabled`: disabled accounts.
//! - `m20261204_000002_audit_readable`: the audit log's actor, owner,
//!   source address and outcome.
//! - `m20261204_000003_identities`: who signed in through which OpenID
//!   provider (issuer and subject).
//! - [`cli`]: the `olin-migrations` command line.
//! - [`status`]: whether a database is at the version of this build,
//!   read without writing anything (services that do not migrate wait on it).
//! - `dialect`: the few spellings that differ between the two databases,
//!   and the `updated_at` triggers.
//!
//! Every table has `created_at` and `updated_at` (timestamptz on Postgres,
//! defaulting to now) and a trigger that sets `updated_at` on each update.

pub mod cli;
mod dialect;
mod m20261125_000001_initial;
mod m20261130_000001_execution_headers;
mod m20261202_000001_host_budget;
mod m20261202_000002_sealed_env;
mod m20261203_000001_call_limits;
mod m20261203_000002_usage_minutes;
mod m20261204_000001_user_disabled;
mod m20261204_000002_audit_readable;
mod m20261204_000003_identities;

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

/// All migrations of the control plane.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261130_000001_execution_headers::Migration),
            Box::new(m20261202_000001_host_budget::Migration),
            Box::new(m20261202_000002_sealed_env::Migration),
            Box::new(m20261203_000001_call_limits::Migration),
            Box::new(m20261203_000002_usage_minutes::Migration),
            Box::new(m20261204_000001_user_disabled::Migration),
            Box::new(m20261204_000002_audit_readable::Migration),
            Box::new(m20261204_000003_identities::Migration),
        ]
    }
}

/// Where a database's schema stands against this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Migrations of this build not applied yet: the schema is older.
    pub pending: Vec<String>,
    /// Migrations applied that this build does not know: the schema is
    /// newer (a later release migrated it). Migrations only add, so an
    /// older build keeps working against it.
    pub unknown: Vec<String>,
}

impl Status {
    /// Whether this build can serve against the schema: nothing of its
    /// own is missing.
    pub fn current(&self) -> bool {
        self.pending.is_empty()
    }

    /// The newest migration this build knows.
    pub fn latest() -> String {
        Migrator::migrations().last().map(|m| m.name().to_owned()).unwrap_or_default()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pending.is_empty() {
            write!(f, "schema at {}", Status::latest())?;
            if !self.unknown.is_empty() {
                write!(f, " and {} newer migration(s) this build does not know", self.unknown.len())?;
            }
            Ok(())
        } else {
            write!(f, "{} migration(s) pending, first {}: run olin-migrations up", self.pending.len(), self.pending[0])
        }
    }
}

/// Reads the applied migrations of `db` and compares them with this
/// build's, without writing anything (a missing migrations table is an
/// empty schema; the table is never created here).
///
/// # Errors
/// [`DbErr`] if the database cannot be read.
pub async fn status(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<Status, DbErr> {
    use sea_orm_migration::sea_orm::{EntityName as _, EntityTrait as _};
    let applied: std::collections::HashSet<String> =
        if SchemaManager::new(db).has_table(sea_orm_migration::seaql_migrations::Entity.table_name()).await? {
            sea_orm_migration::seaql_migrations::Entity::find().all(db).await?.into_iter().map(|m| m.version).collect()
        } else {
            Default::default()
        };
    let known: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let pending = known.iter().filter(|k| !applied.contains(*k)).cloned().collect();
    let mut unknown: Vec<String> = applied.into_iter().filter(|a| !known.contains(a)).collect();
    unknown.sort();
    Ok(Status { pending, unknown })
}

/// The tables of the schema, each with `created_at`, `updated_at` and its
/// `updated_at` trigger.
pub const TABLES: &[&str] = &[
    "users",
    "api_tokens",
    "functions",
    "versions",
    "deployments",
    "function_env",
    "invoke_keys",
    "executions",
    "audit_log",
    "usage_monthly",
    "usage_minutes",
    "execution_attempts",
];
