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
//! - [`cli`]: the `olin-migrations` command line.
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
        ]
    }
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
