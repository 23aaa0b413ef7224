//! `olin-control`: parse config, start tracing, connect, run.

use anyhow::Context as _;
use clap::Parser as _;
use olin_control::{Config, Deps};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    olin_telemetry::init(&cfg.log_format, "info");
    let db = sea_orm::Database::connect(&cfg.database_url).await.context("connecting to the database")?;
    let nats =
        async_nats::connect(&cfg.nats_url).await.with_context(|| format!("connecting to NATS at {}", cfg.nats_url))?;
    let store = cfg.store.open().context("opening the module store")?;
    let bind =
        |addr| async move { tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}")) };
    let listeners = olin_control::Listeners { public: bind(cfg.listen).await?, admin: bind(cfg.admin_listen).await? };
    let deps = Deps { db, nats, store, topology: (&cfg.topology).into() };
    olin_control::run(&cfg, listeners, deps, olin_telemetry::shutdown_signal()).await?;
    Ok(())
}
