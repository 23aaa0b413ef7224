//! The gateway and workers in-process on `127.0.0.1:0`, each with a shutdown
//! handle (after mini-redis's `tests/client.rs`), and a deploy helper that
//! stores a module and publishes its route, as control does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use olin_module_store::ModuleStoreArgs;
use olin_nats::topology::{self, TopologyConfig};
use olin_proto::access::Role;
use olin_proto::v1::RouteRecord;
use olin_worker::module_cache::CacheCounters;
use olin_worker::{Deps, Stats};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// JetStream settings for tests: quick redelivery, small limits. The byte
/// caps are small too: JetStream reserves each stream's cap against the
/// free disk, and the production caps (5 GiB in all) per test server made
/// every test fail on a machine with a few GB free.
pub fn test_topology() -> TopologyConfig {
    TopologyConfig {
        ack_wait: Duration::from_secs(5),
        invocations_max_bytes: 256 << 20,
        events_max_bytes: 64 << 20,
        dead_max_bytes: 64 << 20,
        results_max_bytes: 256 << 20,
        ..TopologyConfig::default()
    }
}

/// A worker running in this process.
pub struct WorkerHandle {
    /// The worker id (reported as `WORKER_ID`).
    pub id: String,
    /// Its counters.
    pub stats: Arc<Stats>,
    /// Where its modules came from (memory, disk, compile).
    pub cache: Arc<CacheCounters>,
    /// Its health and metrics address.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Asks the worker to drain and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Calls answered so far.
    pub fn executions(&self) -> u64 {
        self.stats.executions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replies sent again because no one was subscribed to them.
    pub fn replies_resent(&self) -> u64 {
        self.stats.replies_resent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a worker with `concurrency` slots against `nats_url` and `store`.
pub async fn spawn_worker(nats_url: &str, store: ModuleStoreArgs, concurrency: usize) -> WorkerHandle {
    spawn_worker_with(nats_url, store, |cfg| cfg.concurrency = Some(concurrency)).await
}

/// Starts a worker (2 slots unless `edit` says otherwise) whose
/// configuration `edit` adjusts first.
pub async fn spawn_worker_with(
    nats_url: &str,
    store: ModuleStoreArgs,
    edit: impl FnOnce(&mut olin_worker::Config),
) -> WorkerHandle {
    spawn_worker_topology(nats_url, store, test_topology(), edit).await
}

/// As [`spawn_worker_with`], with JetStream settings of its own.
pub async fn spawn_worker_topology(
    nats_url: &str,
    store: ModuleStoreArgs,
    topology: TopologyConfig,
    edit: impl FnOnce(&mut olin_worker::Config),
) -> WorkerHandle {
    let mut cfg = olin_worker::Config::new(nats_url, store);
    cfg.concurrency = Some(2);
    cfg.secrets_keys = Some(SECRETS_KEYS.to_owned());
    edit(&mut cfg);
    cfg.nats = crate::nats::args_for(nats_url, Role::Worker);
    let nats = crate::nats::connect_as(nats_url, Role::Worker).await;
    let store = cfg.store.open().expect("open module store");
    let listener = TcpListener::bind(cfg.listen).await.expect("bind worker");
    let addr = listener.local_addr().expect("worker addr");
    let worker = olin_worker::Worker::start(&cfg, Deps { nats, store, topology }).await.expect("worker starts");
    let (id, stats, cache) = (worker.id().to_owned(), worker.stats(), worker.cache_counters());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(worker.serve(listener, async {
        let _ = rx.await;
    }));
    WorkerHandle { id, stats, cache, addr, shutdown: Some(tx), task }
}

/// A gateway running in this process.
pub struct GatewayHandle {
    /// Where it serves functions.
    pub addr: SocketAddr,
    /// Where it serves `/healthz`, `/readyz` and `/metrics`.
    pub admin_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GatewayHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of function `name` with `path` appended.
    pub fn function_url(&self, name: &str, path: &str) -> String {
        format!("http://{}/f/{name}{path}", self.addr)
    }

    /// `http://<admin address><path>`, e.g. `/metrics`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Waits until the gateway knows `function` (routes reach it from the
    /// KV bucket asynchronously); panics after 5 s.
    pub async fn wait_for_route(&self, http: &reqwest::Client, function: &str) {
        for _ in 0..200 {
            let r = http.get(self.function_url(function, "/")).send().await.expect("gateway answers");
            if r.headers().get("olin-error").is_none_or(|v| v != "FUNCTION_NOT_FOUND") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("route {function} never reached the gateway");
    }

    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a gateway against `nats_url` and waits until it is ready.
pub async fn spawn_gateway(nats_url: &str) -> GatewayHandle {
    spawn_gateway_with(nats_url, test_topology(), |_| {}).await
}

/// Starts a gateway with the JetStream settings `topology` and the
/// configuration `edit` adjusts, and waits until it is ready.
pub async fn spawn_gateway_with(
    nats_url: &str,
    topology: TopologyConfig,
    edit: impl FnOnce(&mut olin_gateway::Config),
) -> GatewayHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway admin");
    let (addr, admin_addr) = (listener.local_addr().expect("gateway addr"), admin.local_addr().expect("admin addr"));
    let mut cfg = olin_gateway::Config::with_listen(addr);
    cfg.nats = crate::nats::args_for(nats_url, Role::Gateway);
    edit(&mut cfg);
    let nats = crate::nats::connect_as(nats_url, Role::Gateway).await;
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        let listeners = olin_gateway::Listeners { public: listener, admin };
        let deps = olin_gateway::Deps { nats, topology };
        if let Err(err) = olin_gateway::run(&cfg, listeners, deps, shutdown).await {
            panic!("gateway failed: {err}");
        }
    });
    let handle = GatewayHandle { addr, admin_addr, shutdown: Some(tx), task };
    wait_ready(&handle.admin_url("/readyz")).await;
    handle
}

/// A control plane serving in this process.
pub struct ControlHandle {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// How far the control plane's clock is ahead of the system's, in ms.
    clock_ahead_ms: Arc<std::sync::atomic::AtomicI64>,
}

/// Password of the admin every test control plane starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// Signing secret of test control planes.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The keys test control planes seal secret values under and test workers
/// open them with (`olin_proto::sealed`).
pub const SECRETS_KEYS: &str = "test1:b2xpbmNsb3VkLXRlc3Qtc2VjcmV0cy1rZXktMzJieXQ=";

impl ControlHandle {
    /// Moves the control plane's clock `by` ahead (tokens expire without a
    /// test waiting for them).
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.clock_ahead_ms.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `<url>/v1<path>`.
    pub fn v1(&self, path: &str) -> String {
        format!("http://{}/v1{path}", self.addr)
    }

    /// `http://<admin address><path>`, e.g. `/metrics`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a control plane on `database_url` (migrated at start) with the
/// admin `admin`/[`ADMIN_PASSWORD`], and the configuration `edit` adjusts;
/// waits until it is ready.
pub async fn spawn_control(
    database_url: &str,
    nats_url: &str,
    store: ModuleStoreArgs,
    edit: impl FnOnce(&mut olin_control::Config),
) -> ControlHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind control");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind control admin");
    let (addr, admin_addr) = (listener.local_addr().expect("control addr"), admin.local_addr().expect("admin addr"));
    let mut cfg = olin_control::Config::new(database_url, nats_url, store, JWT_SECRET);
    cfg.bootstrap_admin = Some(format!("admin:{ADMIN_PASSWORD}"));
    cfg.secrets_keys = Some(SECRETS_KEYS.to_owned());
    cfg.nats = crate::nats::args_for(nats_url, Role::Control);
    edit(&mut cfg);
    let clock_ahead_ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let deps = olin_control::Deps {
        db: sea_orm::Database::connect(database_url).await.expect("control connects to the database"),
        nats: crate::nats::connect_as(nats_url, Role::Control).await,
        store: cfg.store.open().expect("module store"),
        topology: test_topology(),
        clock: {
            let ahead = clock_ahead_ms.clone();
            olin_control::Clock::from_fn(move || {
                chrono::Utc::now() + chrono::Duration::milliseconds(ahead.load(std::sync::atomic::Ordering::SeqCst))
            })
        },
    };
    let control = olin_control::Control::start(&cfg, deps).await.unwrap_or_else(|e| panic!("control failed: {e}"));
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        control
            .serve(olin_control::Listeners { public: listener, admin }, async {
                let _ = rx.await;
            })
            .await;
    });
    let handle = ControlHandle { addr, admin_addr, shutdown: Some(tx), task, clock_ahead_ms };
    wait_ready(&handle.admin_url("/readyz")).await;
    handle
}

async fn wait_ready(url: &str) {
    for _ in 0..200 {
        if http_status(url).await == Some(200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never became ready");
}

/// The status of a plain GET, or `None` if the connection failed.
async fn http_status(url: &str) -> Option<u16> {
    let addr = url.strip_prefix("http://")?.split('/').next()?.to_owned();
    let path = format!("/{}", url.strip_prefix("http://")?.split_once('/')?.1);
    let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.ok()?;
    let line = String::from_utf8_lossy(&buf);
    line.split(' ').nth(1)?.parse().ok()
}

/// Stores `wasm` in the module store and publishes a route for `function`
/// to `OLIN_ROUTES`, as control does on deploy. Returns the module's sha256.
pub async fn deploy(nats: &async_nats::Client, store: &ModuleStoreArgs, function: &str, wasm: &[u8]) -> String {
    deploy_route(nats, store, function, wasm, |_| {}).await
}

/// As [`deploy`], with the route record adjusted by `edit` (limits, env,
/// egress allow-list) before it is published.
pub async fn deploy_route(
    nats: &async_nats::Client,
    store: &ModuleStoreArgs,
    function: &str,
    wasm: &[u8],
    edit: impl FnOnce(&mut RouteRecord),
) -> String {
    let objects = store.open().expect("open module store");
    let sha256 =
        olin_module_store::put_module(objects.as_ref(), Bytes::copy_from_slice(wasm)).await.expect("store module");
    let js = async_nats::jetstream::new(nats.clone());
    let routes = topology::ensure_routes(&js, &test_topology()).await.expect("routes bucket");
    let mut record = RouteRecord::single(function, &sha256, &uuid::Uuid::now_v7().to_string());
    edit(&mut record);
    topology::put_route(&routes, &record).await.expect("publish route");
    sha256
}

/// A worker running as its own OS process (the `olin-worker` binary), for
/// tests that kill it.
pub struct WorkerProcess {
    child: std::process::Child,
}

impl WorkerProcess {
    /// Starts `binary` (pass `env!("CARGO_BIN_EXE_olin-worker")`) against
    /// `nats_url` and `store`, with extra environment `env`. Returns once
    /// its heartbeat is in `OLIN_WORKERS`.
    pub async fn spawn(binary: &str, nats_url: &str, store: &ModuleStoreArgs, env: &[(&str, &str)]) -> WorkerProcess {
        let id = format!("proc-{}", uuid::Uuid::new_v4().simple());
        let mut cmd = std::process::Command::new(binary);
        let creds = crate::nats::args_for(nats_url, Role::Worker);
        cmd.env_clear()
            .env("NATS_URL", nats_url)
            .env("NATS_USER", creds.user.unwrap_or_default())
            .env("NATS_PASSWORD", creds.password.unwrap_or_default())
            .env("NATS_TLS_CA", creds.tls_ca.unwrap_or_default())
            .env("WORKER_ID", &id)
            .env("WORKER_LISTEN", "127.0.0.1:0")
            .env("MODULE_STORE", &store.url)
            .env("S3_REGION", &store.s3_region)
            .env("RUST_LOG", "warn")
            .env("OLIN_SECRETS_KEYS", SECRETS_KEYS)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        if let Some(e) = &store.s3_endpoint {
            cmd.env("S3_ENDPOINT", e);
        }
        if let Some(k) = &store.s3_access_key_id {
            cmd.env("S3_ACCESS_KEY_ID", k);
        }
        if let Some(s) = &store.s3_secret_access_key {
            cmd.env("S3_SECRET_ACCESS_KEY", s);
        }
        if store.s3_allow_http {
            cmd.env("S3_ALLOW_HTTP", "true");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = WorkerProcess { child: cmd.spawn().unwrap_or_else(|e| panic!("cannot start {binary}: {e}")) };
        let js = async_nats::jetstream::new(crate::nats::connect_as(nats_url, Role::Operator).await);
        for _ in 0..400 {
            if let Ok(kv) = js.get_key_value(olin_proto::subject::KV_WORKERS).await
                && let Ok(Some(_)) = kv.get(&id).await
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("worker process {id} never sent a heartbeat");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: the worker dies mid-flight, acking nothing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process to drain and exit; returns how long it took.
    pub fn terminate(&mut self) -> Duration {
        let started = std::time::Instant::now();
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        started.elapsed()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
