//! `olin-control`: parse config, start tracing, connect, run.

use anyhow::Context as _;
use clap::Parser as _;
use olin_control::{Command, Config, Deps};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    olin_telemetry::init(&cfg.log_format, "info");
    let db = sea_orm::Database::connect(&cfg.database_url).await.context("connecting to the database")?;
    let nats = cfg.nats.connect(olin_proto::access::Role::Control).await?;
    let store = cfg.store.open().context("opening the module store")?;
    let deps = Deps { db, nats, store, topology: (&cfg.topology).into(), clock: olin_control::Clock::system() };
    if let Some(Command::RotateSecrets) = cfg.command {
        if cfg.secrets_keys.is_none() {
            anyhow::bail!("rotate-secrets needs OLIN_SECRETS_KEYS (the new key first, then the old ones)");
        }
        let control = olin_control::Control::start(&cfg, deps).await?;
        let done = control.resealed();
        println!("sealed {} secret value(s) again; republished {} route(s)", done.values, done.functions);
        return Ok(());
    }
    let bind =
        |addr| async move { tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}")) };
    let listeners = olin_control::Listeners { public: bind(cfg.listen).await?, admin: bind(cfg.admin_listen).await? };
    olin_control::run(&cfg, listeners, deps, olin_telemetry::shutdown_signal()).await?;
    Ok(())
}
