//! The NATS connection flags every binary takes, and the connection a role
//! makes with them: its own credential, TLS verified against the operator's
//! CA, and the role's inbox prefix (so its permissions can name its inboxes).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;

use olin_proto::access::Role;

/// How to reach and authenticate to NATS. The same flags and environment
/// names in every binary; each pod is given its own role's credential.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated (`tls://nats:4222`).
    #[arg(id = "nats_url", long = "nats-url", env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// User name of this service's NATS credential.
    #[arg(id = "nats_user", long = "nats-user", env = "NATS_USER")]
    pub user: Option<String>,
    /// Password of this service's NATS credential.
    #[arg(
        id = "nats_password",
        long = "nats-password",
        env = "NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub password: Option<String>,
    /// CA certificates (PEM) the NATS servers' certificates are verified
    /// against; given, the connection must be TLS.
    #[arg(id = "nats_tls_ca", long = "nats-tls-ca", env = "NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for servers that verify clients.
    #[arg(id = "nats_tls_cert", long = "nats-tls-cert", env = "NATS_TLS_CERT", requires = "nats_tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    #[arg(id = "nats_tls_key", long = "nats-tls-key", env = "NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Connecting to NATS failed: unreachable, TLS not verified, or the
/// credential refused.
#[derive(Debug, Error)]
#[error("connecting to NATS at {url} as {user}: {source}")]
pub struct NatsConnectError {
    /// The URL given.
    pub url: String,
    /// The user, or `anonymous`.
    pub user: String,
    /// The client's error.
    #[source]
    pub source: async_nats::ConnectError,
}

impl NatsArgs {
    /// Plain settings: `url`, no credential, no TLS.
    pub fn new(url: &str) -> NatsArgs {
        NatsArgs { url: url.to_owned(), user: None, password: None, tls_ca: None, tls_cert: None, tls_key: None }
    }

    /// The settings with a user and password.
    pub fn with_user(mut self, user: &str, password: &str) -> NatsArgs {
        self.user = Some(user.to_owned());
        self.password = Some(password.to_owned());
        self
    }

    /// The settings with a CA to verify the servers against (TLS required).
    pub fn with_tls_ca(mut self, ca: PathBuf) -> NatsArgs {
        self.tls_ca = Some(ca);
        self
    }

    /// Connects as `role`: named after it, with its inbox prefix.
    ///
    /// # Errors
    /// [`NatsConnectError`] if the credentials cannot be read or the server
    /// refuses the connection (unreachable, TLS not verified, bad credential).
    pub async fn connect(&self, role: Role) -> Result<async_nats::Client, NatsConnectError> {
        self.options(role).connect(self.servers().as_slice()).await.map_err(|source| NatsConnectError {
            url: self.url.clone(),
            user: self.user.clone().unwrap_or_else(|| "anonymous".to_owned()),
            source,
        })
    }

    /// The server URLs of [`NatsArgs::url`]: a comma-separated list names
    /// the nodes of a cluster (the client picks one and fails over to the
    /// others), and each entry is read on its own.
    pub fn servers(&self) -> Vec<&str> {
        self.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
    }

    /// The connect options [`NatsArgs::connect`] uses, for callers that add
    /// their own (event callbacks, retry on the first connect).
    pub fn options(&self, role: Role) -> async_nats::ConnectOptions {
        // Several rustls providers are compiled into our binaries (reqwest
        // brings aws-lc-rs, async-nats ring), and rustls then has no default:
        // choose one, unless the process already has.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut options = async_nats::ConnectOptions::new();
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        options.name(role.user()).custom_inbox_prefix(role.inbox_prefix())
    }
}

/// Tells when a client has connected again (after losing its server, or to
/// another node of a cluster). async-nats reports reconnects through its
/// connect count; this reads it, remembering the count last seen.
///
/// A reconnect is when replies and pull requests in flight may have been
/// lost: the gateway asks for its replies again, a worker resends its kept
/// replies and stops waiting for its pull requests.
#[derive(Debug)]
pub struct Reconnects {
    statistics: Arc<async_nats::Statistics>,
    seen: AtomicU64,
}

impl Reconnects {
    /// How often [`Reconnects::next`] reads the connect count: a reconnect
    /// is noticed within this long.
    pub const CHECK: Duration = Duration::from_millis(100);

    /// Follows `client` from its present connect count.
    pub fn new(client: &async_nats::Client) -> Reconnects {
        Reconnects::of(client.statistics())
    }

    /// Follows the client whose `statistics` these are.
    pub fn of(statistics: Arc<async_nats::Statistics>) -> Reconnects {
        let seen = AtomicU64::new(statistics.connects.load(Ordering::Acquire));
        Reconnects { statistics, seen }
    }

    /// Whether the client connected again since the last call (or since
    /// [`Reconnects::new`]).
    pub fn happened(&self) -> bool {
        let now = self.statistics.connects.load(Ordering::Acquire);
        self.seen.swap(now, Ordering::AcqRel) != now
    }

    /// Waits for the next reconnect. Cancel-safe: a reconnect noticed is
    /// returned, one not yet noticed is left for the next call.
    pub async fn next(&self) {
        loop {
            tokio::time::sleep(Reconnects::CHECK).await;
            if self.happened() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_is_told_once() {
        let statistics = Arc::new(async_nats::Statistics::default());
        let reconnects = Reconnects::of(statistics.clone());
        assert!(!reconnects.happened());
        statistics.connects.fetch_add(1, Ordering::AcqRel);
        assert!(reconnects.happened());
        assert!(!reconnects.happened(), "told once");
        statistics.connects.fetch_add(2, Ordering::AcqRel);
        assert!(reconnects.happened(), "two reconnects between reads are one");
    }

    #[test]
    fn a_url_list_names_every_server() {
        let args = NatsArgs::new("tls://a:4222, tls://b:4222,,tls://c:4222");
        assert_eq!(args.servers(), ["tls://a:4222", "tls://b:4222", "tls://c:4222"]);
        assert_eq!(NatsArgs::new("nats://127.0.0.1:4222").servers(), ["nats://127.0.0.1:4222"]);
    }
}
