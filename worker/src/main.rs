//! `olin-worker`: parse config, start tracing, connect, run.

use anyhow::Context as _;
use clap::Parser as _;
use olin_worker::{Config, Deps};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    init_tracing(&cfg.log_format);
    let nats =
        async_nats::connect(&cfg.nats_url).await.with_context(|| format!("connecting to NATS at {}", cfg.nats_url))?;
    let store = cfg.store.open().context("opening the module store")?;
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let deps = Deps { nats, store, topology: (&cfg.topology).into() };
    olin_worker::run(&cfg, listener, deps, shutdown_signal()).await?;
    Ok(())
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" { builder.json().init() } else { builder.init() }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
