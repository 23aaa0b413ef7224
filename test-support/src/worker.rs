//! Workers for tests: in this process ([`WorkerBuilder`], a shutdown handle
//! after mini-redis's `tests/client.rs`), or as an OS process of their own
//! for tests that kill one ([`WorkerProcess`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use olin_module_store::ModuleStoreArgs;
use olin_nats::topology::TopologyConfig;
use olin_proto::access::Role;
use olin_worker::module_cache::CacheCounters;
use olin_worker::{Deps, Stats};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{SECRETS_KEYS, test_topology, wait};

/// A worker to start in this process: 2 slots and [`test_topology`]
/// unless told otherwise.
///
/// ```no_run
/// # async fn f(nats: &olin_test_support::NatsServer, s3: &olin_test_support::S3Server) {
/// let worker = olin_test_support::WorkerBuilder::new(&nats.url(), s3.store_args()).slots(4).start().await;
/// # }
/// ```
pub struct WorkerBuilder {
    nats_url: String,
    topology: TopologyConfig,
    config: olin_worker::Config,
}

impl WorkerBuilder {
    /// A worker of the test server at `nats_url` reading modules from `store`.
    pub fn new(nats_url: &str, store: ModuleStoreArgs) -> WorkerBuilder {
        let mut config = olin_worker::Config::new(nats_url, store);
        config.concurrency = Some(2);
        config.secrets_keys = Some(SECRETS_KEYS.to_owned());
        WorkerBuilder { nats_url: nats_url.to_owned(), topology: test_topology(), config }
    }

    /// Runs `n` guests at once.
    pub fn slots(mut self, n: usize) -> WorkerBuilder {
        self.config.concurrency = Some(n);
        self
    }

    /// JetStream settings of its own.
    pub fn topology(mut self, topology: TopologyConfig) -> WorkerBuilder {
        self.topology = topology;
        self
    }

    /// Adjusts the rest of the configuration (its NATS credential is the
    /// worker role's whatever `edit` does).
    pub fn config(mut self, edit: impl FnOnce(&mut olin_worker::Config)) -> WorkerBuilder {
        edit(&mut self.config);
        self
    }

    /// Starts the worker; it is consuming when this returns.
    pub async fn start(self) -> WorkerHandle {
        let WorkerBuilder { nats_url, topology, mut config } = self;
        config.nats = crate::nats::args_for(&nats_url, Role::Worker);
        let nats = crate::nats::connect_as(&nats_url, Role::Worker).await;
        let store = config.store.open().expect("open module store");
        let listener = TcpListener::bind(config.listen).await.expect("bind worker");
        let addr = listener.local_addr().expect("worker addr");
        let worker = olin_worker::Worker::start(&config, Deps { nats, store, topology }).await.expect("worker starts");
        let (id, stats, cache) = (worker.id().to_owned(), worker.stats(), worker.cache_counters());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(worker.serve(listener, async {
            let _ = rx.await;
        }));
        WorkerHandle { id, stats, cache, addr, shutdown: Some(tx), task }
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

    /// Calls running now.
    pub fn in_flight(&self) -> u64 {
        self.stats.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replies sent again after a reconnect (this worker's or a gateway's).
    pub fn replies_replayed(&self) -> u64 {
        self.stats.replies_replayed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        wait::until(&format!("worker process {id} sends a heartbeat"), Duration::from_secs(10), || async {
            let kv = js.get_key_value(olin_proto::subject::KV_WORKERS).await.ok()?;
            kv.get(&id).await.ok().flatten()
        })
        .await;
        process
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
