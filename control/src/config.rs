//! Control-plane settings: flags, each with an environment twin.

use std::net::SocketAddr;

use olin_module_store::ModuleStoreArgs;
use olin_nats::topology::TopologyArgs;

/// `olin-control` settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about = "Olincloud control plane: the /v1 API")]
pub struct Config {
    /// Address the API listens on.
    #[arg(long, env = "CONTROL_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Address of `/healthz`, `/readyz` and `/metrics`, apart from the API's.
    #[arg(long, env = "CONTROL_ADMIN_LISTEN", default_value = "127.0.0.1:9092")]
    pub admin_listen: SocketAddr,
    /// Time a client has to send a request's head (from its first byte, or
    /// from the connection's accept), in milliseconds.
    #[arg(long, env = "CONTROL_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// How long an idle keep-alive connection waits for its next request, in
    /// milliseconds: longer than the proxies in front keep theirs.
    #[arg(long, env = "CONTROL_IDLE_TIMEOUT_MS", default_value_t = 75_000)]
    pub idle_timeout_ms: u64,
    /// Time a request's body has to arrive after its head, in milliseconds.
    #[arg(long, env = "CONTROL_BODY_TIMEOUT_MS", default_value_t = 60_000)]
    pub body_timeout_ms: u64,
    /// Most client connections open at once; past it, new ones are answered
    /// 503 with `Retry-After` and closed.
    #[arg(long, env = "CONTROL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most request-body bytes held in memory at once, over all requests, in
    /// MiB; a request that would pass it is answered 503 with `Retry-After`.
    #[arg(long, env = "CONTROL_MAX_BUFFERED_BODY_MIB", default_value_t = 256)]
    pub max_buffered_body_mib: u64,
    /// Postgres (`postgres://...`) or SQLite (`sqlite://file?mode=rwc`).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    /// Apply pending migrations at start-up.
    #[arg(long, env = "CONTROL_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub nats: olin_nats::connect::NatsArgs,
    /// Secret that signs API tokens (HS256); at least 32 bytes. Tokens
    /// name it by a key id derived from it (`kid`).
    #[arg(long, env = "CONTROL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// Earlier signing secrets, comma-separated, whose tokens still verify
    /// while they are retired (docs/operations/keys.md); each at least 32
    /// bytes.
    #[arg(long, env = "CONTROL_JWT_VERIFY_SECRETS", hide_env_values = true, value_delimiter = ',')]
    pub jwt_verify_secrets: Vec<String>,
    /// Lifetime of a token issued by `POST /v1/tokens`, in seconds, when the
    /// request names none (also the longest a request may name).
    #[arg(long, env = "CONTROL_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub token_ttl_secs: u64,
    /// `username:password` of an admin created at start-up if no user exists yet.
    #[arg(long, env = "CONTROL_BOOTSTRAP_ADMIN", hide_env_values = true)]
    pub bootstrap_admin: Option<String>,
    /// A header the proxy in front of control sets to the client's address
    /// (e.g. `X-Forwarded-For`, whose last value it appends, or `X-Real-IP`),
    /// for throttling logins per client. Unset: the connection's peer. Set
    /// it only behind such a proxy: a client can send any header itself.
    #[arg(long, env = "CONTROL_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Let functions' egress allow-lists hold `*` and IP literals (by default
    /// only host names and `*.domain`); the workers still vet every address.
    #[arg(long, env = "CONTROL_EGRESS_ALLOW_LITERALS", default_value_t = false, action = clap::ArgAction::Set)]
    pub egress_allow_literals: bool,
    /// Largest module upload, in bytes.
    #[arg(long, env = "CONTROL_MAX_MODULE_BYTES", default_value_t = 32 << 20)]
    pub max_module_bytes: u64,
    /// Largest memory a module may declare or a function may ask for, in MiB.
    #[arg(long, env = "CONTROL_MAX_MEMORY_MIB", default_value_t = 1024)]
    pub max_memory_mib: u64,
    /// Most calls per second (and burst) a function may be allowed; a
    /// function that sets no rate limit gets this one. 0: no maximum.
    #[arg(long, env = "CONTROL_MAX_RATE_PER_SECOND", default_value_t = 0)]
    pub max_rate_per_second: u32,
    /// Most concurrent calls a function may be allowed; a function that sets
    /// no concurrency limit gets this one. 0: no maximum.
    #[arg(long, env = "CONTROL_MAX_CONCURRENCY", default_value_t = 0)]
    pub max_concurrency: u32,
    /// How often users' monthly quotas are checked against their usage, in
    /// milliseconds (a user past a quota is refused from the next check on).
    #[arg(long, env = "CONTROL_QUOTA_CHECK_MS", default_value_t = 10_000)]
    pub quota_check_ms: u64,
    /// Execution records older than this are deleted (`30d`, `12h`; `0`:
    /// kept whatever their age). Usage charts and quotas read the
    /// per-minute rollups, which are kept longer.
    #[arg(long, env = "CONTROL_EXECUTIONS_MAX_AGE", default_value = "30d", value_parser = duration)]
    pub executions_max_age: std::time::Duration,
    /// Only each function's newest this many execution records are kept
    /// (`0`: no cap).
    #[arg(long, env = "CONTROL_EXECUTIONS_PER_FUNCTION", default_value_t = 1_000_000)]
    pub executions_per_function: u64,
    /// Per-minute usage rollups older than this are deleted (`0`: kept).
    #[arg(long, env = "CONTROL_USAGE_MAX_AGE", default_value = "400d", value_parser = duration)]
    pub usage_max_age: std::time::Duration,
    /// How often retention prunes (`1m`).
    #[arg(long, env = "CONTROL_RETENTION_INTERVAL", default_value = "1m", value_parser = duration)]
    pub retention_interval: std::time::Duration,
    /// Base URL functions are called at, shown to users (`<url>/f/<name>`).
    #[arg(long, env = "CONTROL_GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway_url: String,
    /// Where modules are stored.
    #[command(flatten)]
    pub store: ModuleStoreArgs,
    /// JetStream settings shared with the gateway and workers.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Keys that seal functions' secret values: `id:base64(32 bytes)`,
    /// comma-separated; the first seals, all open (rotation: put the new
    /// key first and keep the old until `rotate-secrets` has run). Unset,
    /// secret values cannot be set.
    #[arg(long, env = "OLIN_SECRETS_KEYS", hide_env_values = true)]
    pub secrets_keys: Option<String>,
    /// Where browsers and `olinctl` reach this control plane (scheme, host
    /// and port, e.g. `https://olin.example.com`): OpenID providers'
    /// redirect URIs are `{this}/v1/auth/sso/{provider}/callback`.
    #[arg(long, env = "CONTROL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The OpenID providers users may sign in with: a JSON document
    /// `{"providers": [...]}`, inline or in the file named
    /// (docs/operations/sso.md).
    #[arg(long, env = "CONTROL_OIDC_CONFIG", hide_env_values = true)]
    pub oidc_config: Option<String>,
    /// Whether users may log in with a username and password
    /// (`POST /v1/tokens`); off when everyone signs in through a provider.
    #[arg(long, env = "CONTROL_LOCAL_PASSWORDS", default_value_t = true, action = clap::ArgAction::Set)]
    pub local_passwords: bool,
    /// How long a deploy waits for the first worker to have its module
    /// fetched and compiled before it points the route at it, in ms (at
    /// once when no worker listens; past it, the first call loads it).
    #[arg(long, env = "CONTROL_PREWARM_WAIT_MS", default_value_t = 10_000)]
    pub prewarm_wait_ms: u64,
    /// How long a browser session lasts: its refresh cookie, which buys
    /// short-lived tokens until then.
    #[arg(long, env = "CONTROL_SESSION_TTL", default_value = "12h", value_parser = duration)]
    pub session_ttl: std::time::Duration,
    /// How long each token a browser session buys lasts.
    #[arg(long, env = "CONTROL_SESSION_TOKEN_TTL", default_value = "15m", value_parser = duration)]
    pub session_token_ttl: std::time::Duration,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// A one-off task instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-off tasks of `olin-control`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Seal every secret value again under the first key of
    /// `OLIN_SECRETS_KEYS` (and any stored in clear), republish the
    /// routes that carry them, report the counts and exit. Control also
    /// does this at each start.
    RotateSecrets,
}

impl Config {
    /// The public listener's bounds.
    pub fn bounds(&self) -> olin_serve::Bounds {
        olin_serve::Bounds {
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms),
            body_timeout: std::time::Duration::from_millis(self.body_timeout_ms),
            max_connections: self.max_connections.max(1),
        }
    }

    /// Settings for tests and `olinctl dev`: everything at its default but
    /// the given database, NATS, module store and signing secret.
    pub fn new(database_url: &str, nats_url: &str, store: ModuleStoreArgs, jwt_secret: &str) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            header_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            body_timeout_ms: 60_000,
            max_connections: 10_000,
            max_buffered_body_mib: 256,
            database_url: database_url.to_owned(),
            migrate: true,
            nats: olin_nats::connect::NatsArgs::new(nats_url),
            jwt_secret: jwt_secret.to_owned(),
            jwt_verify_secrets: Vec::new(),
            token_ttl_secs: 30 * 24 * 3600,
            bootstrap_admin: None,
            client_ip_header: None,
            egress_allow_literals: false,
            max_module_bytes: 32 << 20,
            max_memory_mib: 1024,
            max_rate_per_second: 0,
            max_concurrency: 0,
            quota_check_ms: 10_000,
            executions_max_age: std::time::Duration::from_secs(30 * 24 * 3600),
            executions_per_function: 1_000_000,
            usage_max_age: std::time::Duration::from_secs(400 * 24 * 3600),
            retention_interval: std::time::Duration::from_secs(60),
            gateway_url: "http://127.0.0.1:8080".to_owned(),
            store,
            topology: TopologyArgs::default(),
            secrets_keys: None,
            public_url: None,
            oidc_config: None,
            local_passwords: true,
            prewarm_wait_ms: 10_000,
            session_ttl: std::time::Duration::from_secs(12 * 3600),
            session_token_ttl: std::time::Duration::from_secs(15 * 60),
            log_format: "text".to_owned(),
            command: None,
        }
    }

    /// What retention keeps.
    pub fn retention(&self) -> crate::retention::Retention {
        let nonzero = |d: std::time::Duration| (!d.is_zero()).then_some(d);
        crate::retention::Retention {
            executions_max_age: nonzero(self.executions_max_age),
            executions_per_function: (self.executions_per_function > 0).then_some(self.executions_per_function),
            usage_max_age: nonzero(self.usage_max_age),
            interval: self.retention_interval.max(std::time::Duration::from_secs(1)),
        }
    }

    /// Largest declared memory, in 64 KiB pages.
    pub fn max_memory_pages(&self) -> u32 {
        u32::try_from(self.max_memory_mib * 16).unwrap_or(u32::MAX)
    }
}

/// A duration as `humantime` reads it (`500ms`, `30s`, `12h`, `30d`), or `0`.
fn duration(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 30s, 12h, 30d"))
}
