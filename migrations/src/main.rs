//! `olin-migrations up|down|status|fresh`: runs the control plane's schema
//! migrations against `DATABASE_URL` (Postgres, or `sqlite://file?mode=rwc`).

use clap::Parser as _;
use olin_migrations::cli::{Cli, Command};
use olin_migrations::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let db = Database::connect(&cli.database_url).await?;
    match cli.command {
        Command::Up => Migrator::up(&db, None).await?,
        Command::Down => Migrator::down(&db, Some(1)).await?,
        Command::Status => {}
    }
    for m in Migrator::get_migration_with_status(&db).await? {
        println!("{:<40} {}", m.name(), m.status());
    }
    Ok(())
}
