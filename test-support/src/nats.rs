//! A real `nats-server` per test, on a random port with its own JetStream
//! store, killed and deleted on drop (after nats.rs's own test harness).
//!
//! Every test server runs as production does: TLS with a throwaway CA, one
//! user per platform role with the permissions of `olin_proto::access`, and
//! no anonymous access. Services started by this crate connect with their
//! own role's credential ([`connect_as`]); the test itself uses the
//! operator's ([`NatsServer::client`]).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use olin_nats::connect::NatsArgs;
use olin_nats::topology::TopologyConfig;
use olin_nats_process::{NatsProcess, NatsProcessError, NatsSecurity};
use olin_proto::access::Role;
use parking_lot::Mutex;
use tempfile::TempDir;

use crate::slow_link::SlowLink;

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

/// A running `nats-server` with JetStream.
pub struct NatsServer {
    process: Option<NatsProcess>,
    port: u16,
    url: String,
    security: NatsSecurity,
    max_payload: usize,
    // Dropped after the process: the store is deleted once the server is gone.
    dir: TempDir,
}

/// Credentials of each running test server, by URL: the spawn helpers take
/// a URL, as the binaries do, and find the role's credential here.
fn registry() -> &'static Mutex<HashMap<String, NatsSecurity>> {
    static SERVERS: OnceLock<Mutex<HashMap<String, NatsSecurity>>> = OnceLock::new();
    SERVERS.get_or_init(Mutex::default)
}

/// Records the credentials of the test server (or cluster) at `url`.
pub(crate) fn register(url: &str, security: &NatsSecurity) {
    registry().lock().insert(url.to_owned(), security.clone());
}

/// Forgets the credentials of `url`.
pub(crate) fn forget(url: &str) {
    registry().lock().remove(url);
}

/// The connection settings `role` uses for the test server at `url`.
///
/// # Panics
/// If no test server of this process listens at `url`.
pub fn args_for(url: &str, role: Role) -> NatsArgs {
    let servers = registry().lock();
    let security = servers.get(url).unwrap_or_else(|| panic!("{url} is not a test nats-server of this process"));
    security.args(url, role)
}

/// Connects to the test server at `url` as `role`.
///
/// # Panics
/// If the server refuses the role's credential.
pub async fn connect_as(url: &str, role: Role) -> async_nats::Client {
    args_for(url, role).connect(role).await.unwrap_or_else(|e| panic!("{role:?} connects to {url}: {e}"))
}

fn start(dir: &TempDir, port: i32, security: &NatsSecurity, max_payload: usize) -> NatsProcess {
    match NatsProcess::start_with(dir.path(), port, Some(security), max_payload) {
        Ok(p) => p,
        Err(NatsProcessError::NotInstalled) => panic!(
            "nats-server is not installed: `apt-get install -y nats-server` \
             (the integration tests need a real NATS server with JetStream; they never skip)"
        ),
        Err(e) => panic!("cannot start nats-server: {e}"),
    }
}

impl NatsServer {
    /// Starts a server on a random port with a fresh JetStream store.
    ///
    /// # Panics
    /// If `nats-server` is not installed or does not start: tests never skip.
    pub fn start() -> NatsServer {
        NatsServer::start_with_max_payload(olin_nats_process::MAX_PAYLOAD)
    }

    /// As [`NatsServer::start`], taking messages of at most `max_payload`
    /// bytes (NATS' own default is 1 MiB).
    ///
    /// # Panics
    /// If `nats-server` is not installed or does not start.
    pub fn start_with_max_payload(max_payload: usize) -> NatsServer {
        let dir = tempfile::Builder::new().prefix("olin-nats-").tempdir().expect("temp dir");
        let security = NatsSecurity::generate(&dir.path().join("auth")).expect("NATS certificates and credentials");
        let process = start(&dir, -1, &security, max_payload);
        let url = process.url();
        register(&url, &security);
        NatsServer { port: process.port(), process: Some(process), url, security, max_payload, dir }
    }

    /// `tls://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(NatsProcess::pid)
    }

    /// The server's JetStream store directory.
    pub fn store_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA the server's certificate is signed by.
    pub fn ca(&self) -> std::path::PathBuf {
        self.security.ca()
    }

    /// The connection settings of `role`.
    pub fn args(&self, role: Role) -> NatsArgs {
        self.security.args(&self.url, role)
    }

    /// A client with the operator's credential (everything allowed): what
    /// a test uses to set the stage and to look behind the services.
    pub async fn client(&self) -> async_nats::Client {
        self.client_as(Role::Operator).await
    }

    /// A client with `role`'s credential.
    pub async fn client_as(&self, role: Role) -> async_nats::Client {
        connect_as(&self.url, role).await
    }

    /// A [`SlowLink`] to this server, delaying all it sends by `delay`; its
    /// `tls://` URL takes this server's credentials ([`args_for`]) and is
    /// forgotten when the link drops.
    pub async fn slow_link(&self, delay: Duration) -> SlowLink {
        let link = SlowLink::start(std::net::SocketAddr::from(([127, 0, 0, 1], self.port)), "tls", delay).await;
        register(link.url(), &self.security);
        link
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let process = start(&self.dir, i32::from(self.port), &self.security, self.max_payload);
        assert_eq!(process.port(), self.port);
        self.process = Some(process);
    }

    /// Stops the server (it can be started again with [`NatsServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        forget(&self.url);
    }
}
