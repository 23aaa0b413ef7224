//! The `olin-migrations` command line (here so tests can read its flags).

use clap::{Parser, Subcommand};

/// `olin-migrations`.
#[derive(Debug, Parser)]
#[command(version, about = "Runs Olincloud's database migrations")]
pub struct Cli {
    /// The database.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applies every pending migration.
    Up,
    /// Rolls back the last migration.
    Down,
    /// Lists migrations and whether each is applied.
    Status,
}
