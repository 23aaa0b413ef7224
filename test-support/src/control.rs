//! Control planes for tests, in this process on `127.0.0.1:0`, with a
//! clock the test can move.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use olin_module_store::ModuleStoreArgs;
use olin_proto::access::Role;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{test_topology, wait};

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

    /// Waits until `/readyz` answers 200.
    ///
    /// # Panics
    /// If control stops first (its error), or after 5 s.
    pub async fn wait_ready(&mut self) {
        let url = self.admin_url("/readyz");
        tokio::select! {
            () = wait::ready(&url) => {}
            stopped = &mut self.task => panic!("control stopped before it was ready: {stopped:?}"),
        }
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
    spawn_control_on(database_url, nats_url, store, test_topology(), edit).await
}

/// As [`spawn_control`], with JetStream settings of its own (a cluster's
/// replicas).
pub async fn spawn_control_on(
    database_url: &str,
    nats_url: &str,
    store: ModuleStoreArgs,
    topology: olin_nats::topology::TopologyConfig,
    edit: impl FnOnce(&mut olin_control::Config),
) -> ControlHandle {
    let mut handle = start_control(database_url, nats_url, store, topology, edit).await;
    handle.wait_ready().await;
    handle
}

/// Starts a control plane as `olin-control` runs (admin listener first,
/// then, unless it migrates, a wait for the schema) without waiting for it
/// to be ready.
pub async fn start_control(
    database_url: &str,
    nats_url: &str,
    store: ModuleStoreArgs,
    topology: olin_nats::topology::TopologyConfig,
    edit: impl FnOnce(&mut olin_control::Config),
) -> ControlHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind control");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind control admin");
    let (addr, admin_addr) = (listener.local_addr().expect("control addr"), admin.local_addr().expect("admin addr"));
    let mut cfg = olin_control::Config::new(database_url, nats_url, store, JWT_SECRET);
    cfg.bootstrap_admin = Some(format!("admin:{ADMIN_PASSWORD}"));
    cfg.secrets_keys = Some(SECRETS_KEYS.to_owned());
    cfg.nats = crate::nats::args_for(nats_url, Role::Control);
    cfg.public_url = Some(format!("http://{addr}"));
    edit(&mut cfg);
    let clock_ahead_ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let deps = olin_control::Deps {
        db: sea_orm::Database::connect(database_url).await.expect("control connects to the database"),
        nats: crate::nats::connect_as(nats_url, Role::Control).await,
        store: cfg.store.open().expect("module store"),
        topology,
        clock: {
            let ahead = clock_ahead_ms.clone();
            olin_control::Clock::from_fn(move || {
                chrono::Utc::now() + chrono::Duration::milliseconds(ahead.load(std::sync::atomic::Ordering::SeqCst))
            })
        },
    };
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let listeners = olin_control::Listeners { public: listener, admin };
        olin_control::run(&cfg, listeners, deps, async {
            let _ = rx.await;
        })
        .await
        .unwrap_or_else(|e| panic!("control failed: {e}"));
    });
    ControlHandle { addr, admin_addr, shutdown: Some(tx), task, clock_ahead_ms }
}
