//! `olinctl dev`: the embedded default. Starts `nats-server` from PATH with
//! a JetStream store under the data directory, then in this process the
//! control plane on a SQLite file, a local-directory module store, one
//! worker and the gateway. It logs olinctl in to the stack (context `dev`),
//! and `--demo` deploys the examples through the API. Ctrl-C (or SIGTERM)
//! stops everything and leaves no process behind.
//!
//! State kept in the data directory across runs: `control.db` (users,
//! functions, versions, executions), `modules/`, `jwt-secret` and
//! `admin-password` (mode 0600). The NATS store is fresh each run (a stale
//! queue would replay old calls); control republishes the routes of
//! deployed functions at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use rand::RngCore as _;
use reqwest::Method;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::client::Client;
use crate::contexts::Context;
use crate::error::{CliError, Result};
use crate::session::Global;
use olin_nats_process::{NatsProcess, NatsProcessError, NatsSecurity};
use olin_proto::access::Role;

/// An example `--demo` deploys.
pub struct Example {
    /// The function name.
    pub name: &'static str,
    /// The committed module.
    pub wasm: &'static [u8],
    /// A request to try: path and query after the function's URL.
    pub path: &'static str,
    /// A body to send with it (a POST), if any.
    pub body: Option<&'static str>,
    /// Text the answer contains.
    pub expect: &'static str,
    /// Hosts the function may call (its egress allow-list).
    pub egress_allow: &'static [&'static str],
}

/// The examples `--demo` deploys (see `examples/`).
pub const EXAMPLES: &[Example] = &[
    Example {
        name: "hello",
        wasm: include_bytes!("../../examples/hello/hello.wasm"),
        path: "/world?greeting=hi",
        body: None,
        expect: "Hello from Olincloud!",
        egress_allow: &[],
    },
    Example {
        name: "echo",
        wasm: include_bytes!("../../examples/echo/echo.wasm"),
        path: "/",
        body: Some("ping"),
        expect: "ping",
        egress_allow: &[],
    },
    Example {
        name: "form",
        wasm: include_bytes!("../../examples/form/form.wasm"),
        path: "/",
        body: Some("name=Ada&message=hi+there"),
        expect: "Thanks, Ada!",
        egress_allow: &[],
    },
    Example {
        name: "greet",
        wasm: include_bytes!("../../examples/greet/greet.wasm"),
        path: "/?name=Ada",
        body: None,
        expect: "Hello, Ada!",
        egress_allow: &[],
    },
    Example {
        name: "fetch",
        wasm: include_bytes!("../../examples/fetch/fetch.wasm"),
        path: "/",
        body: None,
        // Offline, the answer is a 502 saying why; online, the page's status.
        expect: "example.com",
        egress_allow: &["example.com"],
    },
];

/// `olinctl dev` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Dev {
    /// Where the local stack keeps its state (database, modules, secrets).
    #[arg(long, env = "OLIN_DEV_DIR", default_value = ".olincloud")]
    pub data_dir: PathBuf,
    /// Address of the gateway (function calls).
    #[arg(long, env = "OLIN_DEV_GATEWAY", default_value = "127.0.0.1:8080")]
    pub gateway: SocketAddr,
    /// Address of the control plane (the /v1 API, olinctl's --url).
    #[arg(long, env = "OLIN_DEV_CONTROL", default_value = "127.0.0.1:8081")]
    pub control: SocketAddr,
    /// Guests run at once by the worker (default: the number of cores).
    #[arg(long, env = "OLIN_DEV_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Deploy the examples.
    #[arg(long, env = "OLIN_DEV_DEMO")]
    pub demo: bool,
    /// Addresses besides public ones that functions' outbound requests and
    /// async callbacks may reach, as CIDRs (e.g. `127.0.0.0/8` to call a
    /// service on this machine). Plain-http callbacks are allowed in dev.
    #[arg(long, env = "OLIN_DEV_EGRESS_ALLOW_CIDRS", default_value = "")]
    pub egress_allow_cidrs: String,
    /// Do not store a login for olinctl (context `dev`).
    #[arg(long, env = "OLIN_DEV_NO_LOGIN")]
    pub no_login: bool,
    /// Run NATS as a three-node cluster on loopback with every stream and
    /// bucket replicated three times, as production does (to try failover:
    /// kill one of the `nats-server` processes).
    #[arg(long, env = "OLIN_DEV_CLUSTER")]
    pub cluster: bool,
}

/// Reads a secret kept in `path`, creating it (random, mode 0600) the first time.
fn secret_file(path: &Path, bytes: usize) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_owned();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    let secret = hex::encode(raw);
    crate::contexts::write_private(path, secret.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

impl Dev {
    /// Runs the stack until `shutdown` resolves.
    ///
    /// # Errors
    /// [`CliError::Usage`] when `nats-server` is missing (with the install
    /// command) or an address is taken; otherwise any start-up failure.
    pub async fn run(self, g: &Global, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let data_dir = std::path::absolute(&self.data_dir).context("resolving the data directory")?;
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let nats_dir = data_dir.join("nats");
        // Each run starts from an empty queue: a stale store would replay old calls.
        let _ = std::fs::remove_dir_all(&nats_dir);
        // NATS as in production: TLS, one credential per service, no anonymous
        // access. The operator's credential is left in `nats/auth/olin-operator.env`.
        let security = NatsSecurity::generate(&nats_dir.join("auth")).context("securing nats-server")?;
        let mut servers = Vec::new();
        let started = if self.cluster {
            let plan =
                olin_nats_process::loopback_cluster("olin-dev", 3).context("finding ports for the NATS cluster")?;
            plan.iter().try_for_each(|(port, node)| {
                let dir = nats_dir.join(&node.name);
                let max = olin_nats_process::MAX_PAYLOAD;
                NatsProcess::start_node(&dir, i32::from(*port), Some(&security), max, Some(node))
                    .map(|n| servers.push(n))
            })
        } else {
            NatsProcess::start(&nats_dir, -1, Some(&security)).map(|n| servers.push(n))
        };
        match started {
            Ok(()) => {}
            Err(NatsProcessError::NotInstalled) => {
                return Err(CliError::usage(
                    "nats-server was not found on PATH",
                    format!("install it with `{}`", olin_nats_process::INSTALL_HINT),
                ));
            }
            Err(e) => return Err(CliError::Other(e.into())),
        }
        let url = servers.iter().map(NatsProcess::url).collect::<Vec<_>>().join(",");
        let result = match self.ready(&security, &url, servers.len()).await {
            Ok(()) => self.serve(g, &url, &security, &data_dir, shutdown).await,
            Err(e) => Err(e),
        };
        for mut n in servers {
            n.kill();
        }
        result
    }

    /// Waits until a cluster's JetStream has elected its leaders (a single
    /// server is ready when it listens).
    async fn ready(&self, security: &NatsSecurity, url: &str, nodes: usize) -> Result<()> {
        if !self.cluster {
            return Ok(());
        }
        let client =
            security.args(url, Role::Operator).connect(Role::Operator).await.context("connecting to nats-server")?;
        olin_nats_process::wait_for_jetstream(&client, nodes, std::time::Duration::from_secs(30))
            .await
            .map_err(|e| CliError::Other(e.into()))
    }

    async fn bind(addr: SocketAddr, what: &str, flag: &str) -> Result<TcpListener> {
        TcpListener::bind(addr).await.map_err(|e| {
            CliError::usage(
                format!("cannot listen on {addr} for the {what}: {e}"),
                format!("pass {flag} 127.0.0.1:<port>"),
            )
        })
    }

    async fn serve(
        &self,
        g: &Global,
        nats_url: &str,
        security: &NatsSecurity,
        data_dir: &Path,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let store = olin_module_store::ModuleStoreArgs::local(&data_dir.join("modules"));
        let objects = store.open().context("opening the module store")?;
        let replicas = if self.cluster { 3 } else { 1 };
        let topo = olin_nats::topology::TopologyConfig { replicas, ..Default::default() };
        let connect = |role: Role| async move {
            security.args(nats_url, role).connect(role).await.context("connecting to nats-server")
        };
        let gateway_listener = Self::bind(self.gateway, "gateway", "--gateway").await?;
        let control_listener = Self::bind(self.control, "control plane", "--control").await?;
        // Health, readiness and metrics: loopback, any free port.
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let gateway_admin = TcpListener::bind(loopback).await.context("binding the gateway's admin listener")?;
        let control_admin = TcpListener::bind(loopback).await.context("binding the control plane's admin listener")?;
        let gateway_admin_addr = gateway_admin.local_addr().context("gateway admin address")?;
        let control_admin_addr = control_admin.local_addr().context("control admin address")?;
        let gateway_addr = gateway_listener.local_addr().context("gateway address")?;
        let gateway_url = format!("http://{gateway_addr}");
        let control_url = format!("http://{}", control_listener.local_addr().context("control address")?);

        // Secret values are sealed under a key of this stack's own.
        let sealing = hex::decode(secret_file(&data_dir.join("secrets-key"), 32)?).context("reading secrets-key")?;
        let secrets_keys =
            format!("dev:{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealing));
        let mut worker_cfg = olin_worker::Config::new(nats_url, store.clone());
        worker_cfg.concurrency = self.concurrency;
        worker_cfg.egress_allow_cidrs.clone_from(&self.egress_allow_cidrs);
        worker_cfg.secrets_keys = Some(secrets_keys.clone());
        let worker = olin_worker::Worker::start(
            &worker_cfg,
            olin_worker::Deps { nats: connect(Role::Worker).await?, store: objects.clone(), topology: topo.clone() },
        )
        .await
        .context("starting the worker")?;
        let worker_listener = TcpListener::bind(worker_cfg.listen).await.context("binding the worker")?;

        let db_url = format!("sqlite://{}?mode=rwc", data_dir.join("control.db").display());
        let secret = secret_file(&data_dir.join("jwt-secret"), 32)?;
        let admin_password = secret_file(&data_dir.join("admin-password"), 12)?;
        let mut control_cfg = olin_control::Config::new(&db_url, nats_url, store.clone(), &secret);
        control_cfg.bootstrap_admin = Some(format!("admin:{admin_password}"));
        control_cfg.gateway_url = gateway_url.clone();
        control_cfg.secrets_keys = Some(secrets_keys.clone());
        let db = sea_orm::Database::connect(&db_url).await.context("opening the SQLite database")?;
        let control = olin_control::Control::start(
            &control_cfg,
            olin_control::Deps {
                db,
                nats: connect(Role::Control).await?,
                store: objects.clone(),
                topology: topo.clone(),
                clock: olin_control::Clock::system(),
            },
        )
        .await
        .context("starting the control plane")?;

        let mut gw_cfg = olin_gateway::Config::with_listen(gateway_addr);
        gw_cfg.nats = security.args(nats_url, Role::Gateway);
        gw_cfg.callback_allow_http = true;
        gw_cfg.egress_allow_cidrs.clone_from(&self.egress_allow_cidrs);
        let gw_deps = olin_gateway::Deps { nats: connect(Role::Gateway).await?, topology: topo.clone() };
        let gateway = olin_gateway::Gateway::start(&gw_cfg, gw_deps).await.context("starting the gateway")?;

        // All three started: serve them.
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let worker_task = tokio::spawn(worker.serve(worker_listener, stopped(stop_rx.clone())));
        let control_listeners = olin_control::Listeners { public: control_listener, admin: control_admin };
        let control_task = tokio::spawn(control.serve(control_listeners, stopped(stop_rx.clone())));
        let gw_listeners = olin_gateway::Listeners { public: gateway_listener, admin: gateway_admin };
        let gw_task = tokio::spawn(gateway.serve(gw_listeners, stopped(stop_rx)));

        let started = self.after_start(g, &control_url, &admin_password).await;
        if let Ok(lines) = &started {
            println!("Olincloud dev stack is up.");
            println!("  gateway:  {gateway_url}/f/<function>/");
            println!("  control:  {control_url}/v1 (admin password in {})", data_dir.join("admin-password").display());
            println!("  panel:    {control_url}/ (log in as admin)");
            println!(
                "  nats:     {nats_url}{} (TLS; operator credential in {})",
                if self.cluster { ", three nodes, streams R3" } else { "" },
                security.env_file(Role::Operator).display()
            );
            println!(
                "  metrics:  http://{gateway_admin_addr}/metrics (gateway), http://{control_admin_addr}/metrics (control)"
            );
            println!("  data:     {}", data_dir.display());
            for line in lines {
                println!("{line}");
            }
            println!("Press Ctrl-C to stop.");
            shutdown.await;
            println!("Stopping...");
        }
        let _ = stop_tx.send(true);
        olin_telemetry::join("gateway", gw_task).await;
        olin_telemetry::join("worker", worker_task).await;
        olin_telemetry::join("control plane", control_task).await;
        started.map(drop)
    }

    /// Logs olinctl in and deploys the demo; returns lines to print.
    async fn after_start(&self, g: &Global, control_url: &str, admin_password: &str) -> Result<Vec<String>> {
        let anonymous = Client::new(control_url, None)?;
        let login = olin_api::Login {
            username: "admin".to_owned(),
            password: admin_password.to_owned(),
            expires_in: None,
            session: false,
        };
        let token: olin_api::Token = anonymous
            .call(Method::POST, "/tokens", &login)
            .await
            .map_err(|e| e.hint("the admin password in the data directory does not match its database; remove the directory to start afresh"))?;
        let token_value = token.token.clone();
        let mut lines = Vec::new();
        if !self.no_login {
            let path = g.config_path()?;
            let mut all = g.contexts()?;
            all.put(
                "dev",
                Context {
                    url: control_url.to_owned(),
                    token: token_value.clone(),
                    token_id: token.id.clone(),
                    username: "admin".to_owned(),
                    expires_at: Some(token.expires_at.to_rfc3339()),
                },
            );
            all.save(&path)?;
            lines.push(format!("  olinctl:  logged in as admin (context \"dev\" in {})", path.display()));
        }
        if self.demo {
            let api = Client::new(control_url, Some(token_value))?;
            for ex in EXAMPLES {
                let url = deploy_example(&api, ex).await?;
                let data = ex.body.map(|b| format!(" -d '{b}'")).unwrap_or_default();
                lines.push(format!("  try:      curl -s{data} '{url}{}'", ex.path));
            }
        }
        Ok(lines)
    }
}

/// Deploys `ex` through the API unless its module is what is deployed
/// already; returns the function's URL.
///
/// # Errors
/// Any refusal of the API.
pub async fn deploy_example(api: &Client, ex: &Example) -> Result<String> {
    let f: olin_api::Function = match api.get(&format!("/functions/{}", ex.name)).await {
        Ok(f) => f,
        Err(e) if e.is_not_found() => {
            let new = olin_api::NewFunction { name: ex.name.to_owned(), visibility: olin_api::Visibility::Public };
            api.call(Method::POST, "/functions", &new).await?
        }
        Err(e) => return Err(e),
    };
    if !ex.egress_allow.is_empty() && f.egress_allow != ex.egress_allow {
        let patch = olin_api::FunctionPatch {
            egress_allow: Some(ex.egress_allow.iter().map(|h| (*h).to_owned()).collect()),
            ..olin_api::FunctionPatch::default()
        };
        api.call::<_, olin_api::Function>(Method::PATCH, &format!("/functions/{}", ex.name), &patch).await?;
    }
    let sha = olin_module_store::sha256_hex(ex.wasm);
    if let Some(d) = &f.deployment {
        let versions: olin_api::VersionList = api.get(&format!("/functions/{}/versions", ex.name)).await?;
        if versions.items.iter().any(|x| x.number == d.version && x.sha256 == sha) {
            return Ok(f.url);
        }
    }
    let path = format!("/functions/{}/versions", ex.name);
    let version = api.upload(&path, Bytes::from_static(ex.wasm), indicatif::ProgressBar::hidden()).await?;
    let deploy = olin_api::NewDeployment { version: version.number, canary: None };
    api.call::<_, olin_api::Deployment>(Method::POST, &format!("/functions/{}/deployments", ex.name), &deploy).await?;
    Ok(f.url)
}
