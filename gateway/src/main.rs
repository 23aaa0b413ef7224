//! `olin-gateway`: parse config, start tracing, connect, run.

use anyhow::Context as _;
use clap::Parser as _;
use olin_gateway::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    olin_telemetry::init(&cfg.log_format, "info");
    let nats = cfg.nats.connect(olin_proto::access::Role::Gateway).await?;
    let bind =
        |addr| async move { tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}")) };
    let listeners = olin_gateway::Listeners { public: bind(cfg.listen).await?, admin: bind(cfg.admin_listen).await? };
    let deps = olin_gateway::Deps { nats, topology: (&cfg.topology).into() };
    olin_gateway::run(&cfg, listeners, deps, olin_telemetry::shutdown_signal()).await?;
    Ok(())
}
