//! Gateway configuration: every flag has an environment twin.

use std::net::SocketAddr;

/// `olin-gateway` settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "olin-gateway", version, about = "The Olincloud HTTP gateway")]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub nats: olin_nats::connect::NatsArgs,
    /// Address to serve functions on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Address of `/healthz`, `/readyz` and `/metrics`, apart from the public
    /// one: metrics name every function, private ones too.
    #[arg(long, env = "GATEWAY_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// Time a client has to send a request's head (from its first byte, or
    /// from the connection's accept), in milliseconds.
    #[arg(long, env = "GATEWAY_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// How long an idle keep-alive connection waits for its next request, in
    /// milliseconds: longer than the load balancer or clients in front keep
    /// theirs, so that they close it, not the gateway.
    #[arg(long, env = "GATEWAY_IDLE_TIMEOUT_MS", default_value_t = 75_000)]
    pub idle_timeout_ms: u64,
    /// Time a request's body has to arrive after its head, in milliseconds.
    #[arg(long, env = "GATEWAY_BODY_TIMEOUT_MS", default_value_t = 60_000)]
    pub body_timeout_ms: u64,
    /// Most client connections open at once; past it, new ones are answered
    /// 503 with `Retry-After` and closed.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most request-body bytes held in memory at once, over all requests, in
    /// MiB; a request that would pass it is answered 503 with `Retry-After`.
    #[arg(long, env = "GATEWAY_MAX_BUFFERED_BODY_MIB", default_value_t = 512)]
    pub max_buffered_body_mib: u64,
    /// This gateway's id, used in its reply subjects (default: a fresh UUID).
    #[arg(long, env = "GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// Wall-clock limit assumed for functions that set none, in milliseconds.
    #[arg(long, env = "GATEWAY_DEFAULT_WALL_MS", default_value_t = 30_000)]
    pub default_wall_ms: u64,
    /// How long the gateway waits for JetStream to acknowledge a published
    /// call before publishing it again under the same id, in milliseconds.
    #[arg(long, env = "GATEWAY_PUBLISH_ACK_TIMEOUT_MS", default_value_t = 5_000)]
    pub publish_ack_timeout_ms: u64,
    /// How synchronous calls reach workers: `direct` (core NATS to one
    /// worker, queued in JetStream when none takes it or it goes quiet) or
    /// `queue` (always JetStream). See docs/operations.md.
    #[arg(long, env = "GATEWAY_SYNC_PATH", value_enum, default_value_t = SyncPath::Direct)]
    pub sync_path: SyncPath,
    /// How long a direct call's worker may stay quiet (it says it is running
    /// every quarter of this) before the call is queued for another worker,
    /// in milliseconds.
    #[arg(long, env = "GATEWAY_DIRECT_LIVENESS_MS", default_value_t = 1_000)]
    pub direct_liveness_ms: u64,
    /// Time a call may wait in the queue on top of its run time, in milliseconds.
    #[arg(long, env = "GATEWAY_QUEUE_SLACK_MS", default_value_t = 5_000)]
    pub queue_slack_ms: u64,
    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 10 << 20)]
    pub max_body_bytes: u64,
    /// How long an async call may wait in the queue before it is dropped, in milliseconds.
    #[arg(long, env = "GATEWAY_ASYNC_DEADLINE_MS", default_value_t = 3_600_000)]
    pub async_deadline_ms: u64,
    /// Largest total of request header bytes accepted (431 above).
    #[arg(long, env = "GATEWAY_MAX_HEADER_BYTES", default_value_t = 32 << 10)]
    pub max_header_bytes: u64,
    /// Serve `{function}.{base-domain}` as the function (host routing), besides `/f/{function}/`.
    #[arg(long, env = "GATEWAY_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// Accept `http://` callback URLs (default: `https://` only).
    #[arg(long, env = "GATEWAY_CALLBACK_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub callback_allow_http: bool,
    /// CIDRs a callback URL's IP literal may name besides public addresses,
    /// comma-separated; should match the workers' `WORKER_EGRESS_ALLOW_CIDRS`.
    #[arg(long, env = "GATEWAY_EGRESS_ALLOW_CIDRS", default_value = "")]
    pub egress_allow_cidrs: String,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub topology: olin_nats::topology::TopologyArgs,
}

/// How synchronous calls reach workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncPath {
    /// Core NATS to one worker; JetStream when none takes it.
    Direct,
    /// Always JetStream.
    Queue,
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

    /// Settings for tests and embedding: defaults, listening where told.
    pub fn with_listen(listen: SocketAddr) -> Self {
        Config {
            nats: olin_nats::connect::NatsArgs::new("nats://127.0.0.1:4222"),
            listen,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            header_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            body_timeout_ms: 60_000,
            max_connections: 10_000,
            max_buffered_body_mib: 512,
            gateway_id: None,
            default_wall_ms: 30_000,
            queue_slack_ms: 5_000,
            sync_path: SyncPath::Direct,
            direct_liveness_ms: 1_000,
            publish_ack_timeout_ms: 5_000,
            max_body_bytes: 10 << 20,
            max_header_bytes: 32 << 10,
            async_deadline_ms: 3_600_000,
            base_domain: None,
            callback_allow_http: false,
            egress_allow_cidrs: String::new(),
            log_format: "text".into(),
            topology: olin_nats::topology::TopologyArgs::default(),
        }
    }
}
