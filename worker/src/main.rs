//! `olin-worker`: parse config, start tracing, connect, run.

use anyhow::Context as _;
use clap::Parser as _;
use olin_worker::{Config, Deps};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    olin_telemetry::init(&cfg.log_format, "info");
    let nats = cfg.nats.connect(olin_proto::access::Role::Worker).await?;
    let store = cfg.store.open().context("opening the module store")?;
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let deps = Deps { nats, store, topology: (&cfg.topology).into() };
    olin_worker::run(&cfg, listener, deps, olin_telemetry::shutdown_signal()).await?;
    Ok(())
}
