//! `olinctl dev`: the embedded default. Starts `nats-server` from PATH with a
//! JetStream store under the data directory, a local-directory module store,
//! one worker and the gateway in this process; `--demo` deploys the examples.
//! Ctrl-C (or SIGTERM) stops everything and leaves no process behind.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use bytes::Bytes;
use olin_proto::topology::{self, TopologyConfig};
use olin_proto::v1::RouteRecord;
use olin_worker::ModuleStoreArgs;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::nats_process::{NatsProcess, NatsProcessError};

/// The examples `--demo` deploys: (name, module, what to try).
const DEMO: &[(&str, &[u8], &str)] = &[
    ("hello", include_bytes!("../../examples/hello/hello.wasm"), "/world?greeting=hi"),
    ("echo", include_bytes!("../../examples/echo/echo.wasm"), ""),
];

/// `olinctl dev` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Dev {
    /// Where the local stack keeps its state (NATS store, modules).
    #[arg(long, env = "OLIN_DEV_DIR", default_value = ".olincloud")]
    pub data_dir: PathBuf,
    /// Address of the gateway.
    #[arg(long, env = "OLIN_DEV_GATEWAY", default_value = "127.0.0.1:8080")]
    pub gateway: SocketAddr,
    /// Guests run at once by the worker (default: the number of cores).
    #[arg(long, env = "OLIN_DEV_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Deploy the examples (hello, echo).
    #[arg(long)]
    pub demo: bool,
}

/// How `olinctl dev` ended badly.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A prerequisite is missing; the message says how to install it.
    #[error("{0}")]
    Prerequisite(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Dev {
    /// Runs the stack until `shutdown` resolves.
    ///
    /// # Errors
    /// [`DevError::Prerequisite`] when `nats-server` is missing; otherwise
    /// any start-up failure.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), DevError> {
        let data_dir = std::path::absolute(&self.data_dir).context("resolving the data directory")?;
        let nats_dir = data_dir.join("nats");
        // Each run starts from an empty queue: a stale store would replay old calls.
        let _ = std::fs::remove_dir_all(&nats_dir);
        let mut nats = match NatsProcess::start(&nats_dir, -1) {
            Ok(n) => n,
            Err(NatsProcessError::NotInstalled) => {
                return Err(DevError::Prerequisite(format!(
                    "nats-server was not found on PATH. Install it with:\n    {}",
                    crate::nats_process::INSTALL_HINT
                )));
            }
            Err(e) => return Err(DevError::Other(e.into())),
        };
        let result = self.serve(&nats, &data_dir, shutdown).await;
        nats.kill();
        result.map_err(DevError::Other)
    }

    async fn serve(
        &self,
        nats: &NatsProcess,
        data_dir: &std::path::Path,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let store = ModuleStoreArgs::local(&data_dir.join("modules"));
        let objects = store.open().context("opening the module store")?;
        let topo = TopologyConfig::default();
        let client = async_nats::connect(nats.url()).await.context("connecting to nats-server")?;

        let mut worker_cfg = olin_worker::Config::new(&nats.url(), store.clone());
        worker_cfg.concurrency = self.concurrency;
        let worker = olin_worker::Worker::start(
            &worker_cfg,
            olin_worker::Deps { nats: client.clone(), store: objects.clone(), topology: topo.clone() },
        )
        .await
        .context("starting the worker")?;
        let worker_listener = TcpListener::bind(worker_cfg.listen).await.context("binding the worker")?;
        let gateway_listener = TcpListener::bind(self.gateway).await.with_context(|| {
            format!("binding the gateway to {} (in use? pass --gateway 127.0.0.1:<port>)", self.gateway)
        })?;
        let gateway_addr = gateway_listener.local_addr()?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let worker_task = tokio::spawn(worker.serve(worker_listener, stopped(stop_rx.clone())));
        let mut gw_cfg = olin_gateway::Config::with_listen(gateway_addr);
        gw_cfg.nats_url = nats.url();
        let gw_task =
            tokio::spawn(olin_gateway::run(gw_cfg, gateway_listener, client.clone(), topo.clone(), stopped(stop_rx)));

        let base = format!("http://{gateway_addr}");
        if self.demo {
            let js = async_nats::jetstream::new(client.clone());
            let routes = topology::ensure_routes(&js, &topo).await?;
            for (name, wasm, _) in DEMO {
                let sha256 = olin_worker::module_store::put_module(objects.as_ref(), Bytes::from_static(wasm)).await?;
                let record = RouteRecord::single(name, &sha256, &uuid::Uuid::now_v7().to_string());
                topology::put_route(&routes, &record).await?;
            }
        }
        println!("Olincloud dev stack is up.");
        println!("  gateway:  {base}/f/<function>/");
        println!("  nats:     {}", nats.url());
        println!("  data:     {}", data_dir.display());
        if self.demo {
            for (name, _, path) in DEMO {
                println!("  try:      curl -s '{base}/f/{name}{path}'");
            }
        }
        println!("Press Ctrl-C to stop.");

        shutdown.await;
        println!("Stopping...");
        let _ = stop_tx.send(true);
        let _ = gw_task.await;
        let _ = worker_task.await;
        Ok(())
    }
}
