//! Gateways for tests, in this process on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::time::Duration;

use olin_nats::topology::TopologyConfig;
use olin_proto::access::Role;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{test_topology, wait};

/// A gateway to start in this process, with [`test_topology`] unless told
/// otherwise.
pub struct GatewayBuilder {
    nats_url: String,
    topology: TopologyConfig,
    config: olin_gateway::Config,
}

impl GatewayBuilder {
    /// A gateway of the test server at `nats_url`, with the gateway role's
    /// credential.
    pub fn new(nats_url: &str) -> GatewayBuilder {
        let mut config = olin_gateway::Config::with_listen(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.nats = crate::nats::args_for(nats_url, Role::Gateway);
        GatewayBuilder { nats_url: nats_url.to_owned(), topology: test_topology(), config }
    }

    /// JetStream settings of its own.
    pub fn topology(mut self, topology: TopologyConfig) -> GatewayBuilder {
        self.topology = topology;
        self
    }

    /// How it sends synchronous calls (`direct`, the default, or `queue`).
    pub fn sync_path(mut self, path: olin_gateway::SyncPath) -> GatewayBuilder {
        self.config.sync_path = path;
        self
    }

    /// Adjusts the configuration (its listeners are bound on
    /// `127.0.0.1:0` whatever `edit` does).
    pub fn config(mut self, edit: impl FnOnce(&mut olin_gateway::Config)) -> GatewayBuilder {
        edit(&mut self.config);
        self
    }

    /// Starts the gateway and waits until it is ready.
    pub async fn start(self) -> GatewayHandle {
        let GatewayBuilder { nats_url, topology, mut config } = self;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway admin");
        let (addr, admin_addr) =
            (listener.local_addr().expect("gateway addr"), admin.local_addr().expect("admin addr"));
        config.listen = addr;
        let nats = crate::nats::connect_as(&nats_url, Role::Gateway).await;
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            let listeners = olin_gateway::Listeners { public: listener, admin };
            let deps = olin_gateway::Deps { nats, topology };
            if let Err(err) = olin_gateway::run(&config, listeners, deps, shutdown).await {
                panic!("gateway failed: {err}");
            }
        });
        let handle = GatewayHandle { addr, admin_addr, shutdown: Some(tx), task };
        wait::ready(&handle.admin_url("/readyz")).await;
        handle
    }
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
        wait::until_true(&format!("route {function} reaches the gateway"), Duration::from_secs(5), || async {
            let r = http.get(self.function_url(function, "/")).send().await.expect("gateway answers");
            r.headers().get("olin-error").is_none_or(|v| v != "FUNCTION_NOT_FOUND")
        })
        .await;
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
