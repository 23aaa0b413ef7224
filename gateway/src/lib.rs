//! The Olincloud gateway: the public data-plane entry. Each HTTP request to
//! `/f/{function}/...` becomes an `InvocationRequest` published to the
//! `OLIN_INVOCATIONS` stream; the worker's reply becomes the HTTP response.
//!
//! # Layout
//! - [`config`]: [`Config`], flags with environment twins.
//! - `http`: the warp face: routing, body limits, error shapes.
//! - `idempotency`: `Idempotency-Key`: a client's retries run a call once.
//! - `invoke`: publish, then await the reply on this gateway's own subject.
//! - [`route_table`]: the in-memory copy of `OLIN_ROUTES`.

pub mod config;
mod http;
mod idempotency;
mod invoke;
pub mod metrics;
mod presence;
pub mod route_table;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use olin_nats::topology::{self, TopologyConfig, TopologyError};
use olin_proto::subject;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;
use warp::Filter;

pub use config::{Config, SyncPath};
pub use route_table::RouteTable;

/// The gateway could not start.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// The JetStream topology could not be created.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The reply subscription failed.
    #[error("subscribing to replies failed: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    /// A subject could not be built from the gateway id.
    #[error(transparent)]
    Name(#[from] subject::NameError),
    /// `GATEWAY_EGRESS_ALLOW_CIDRS` does not parse.
    #[error("GATEWAY_EGRESS_ALLOW_CIDRS: {0}")]
    EgressCidrs(#[source] olin_proto::net_policy::BadCidr),
}

/// State shared by every request.
pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) config: Config,
    pub(crate) nats: async_nats::Client,
    pub(crate) js: async_nats::jetstream::Context,
    /// Publishes calls: waits `publish_ack_timeout_ms` for each ack.
    pub(crate) publisher: async_nats::jetstream::Context,
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) replies: Arc<invoke::Replies>,
    pub(crate) local_port: u16,
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) presence: Arc<presence::Presence>,
    /// Whether `OLIN_RESULTS` has room for more async calls.
    pub(crate) results_room: Arc<presence::ResultsRoom>,
    pub(crate) workers_kv: async_nats::jetstream::kv::Store,
    pub(crate) results_kv: async_nats::jetstream::kv::Store,
    /// Per-function rate and concurrency state, shared by every gateway.
    pub(crate) limits: olin_nats::admission::Limits,
    /// Request-body bytes all requests may hold at once.
    pub(crate) body_budget: olin_serve::BodyBudget,
    /// Where callbacks may point (IP literals are vetted here).
    pub(crate) egress: olin_proto::net_policy::AddressPolicy,
}

impl Shared {
    /// How this gateway sends synchronous calls.
    pub(crate) fn sync_path(&self) -> invoke::Path {
        match self.config.sync_path {
            SyncPath::Direct => {
                invoke::Path::Direct { liveness: Duration::from_millis(self.config.direct_liveness_ms.max(100)) }
            }
            SyncPath::Queue => invoke::Path::Queue,
        }
    }
}

impl Shared {
    /// Ready when NATS is connected, the invocation stream exists and the
    /// route table has loaded.
    pub(crate) async fn readiness(&self) -> Result<(), &'static str> {
        if self.nats.connection_state() != State::Connected {
            return Err("nats disconnected");
        }
        if !self.routes.is_synced() {
            return Err("routes not loaded");
        }
        match tokio::time::timeout(std::time::Duration::from_secs(2), self.js.get_stream(subject::STREAM_INVOCATIONS))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            _ => Err("invocation stream unavailable"),
        }
    }
}

/// The gateway's two listeners: the public one for functions, and the
/// admin one for health, readiness and metrics.
pub struct Listeners {
    /// Functions: `/f/...`, `/async/...`, `{name}.{base domain}`.
    pub public: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin: TcpListener,
}

/// A started gateway: the topology exists, the reply subscription and the
/// route, worker and results watchers run; not yet serving.
pub struct Gateway {
    id: String,
    config: Config,
    nats: async_nats::Client,
    js: async_nats::jetstream::Context,
    topo: topology::Topology,
    routes: Arc<RouteTable>,
    metrics: Arc<metrics::Metrics>,
    replies: Arc<invoke::Replies>,
    presence: Arc<presence::Presence>,
    results_room: Arc<presence::ResultsRoom>,
    egress: olin_proto::net_policy::AddressPolicy,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

/// External clients the gateway runs with.
pub struct Deps {
    /// A connected NATS client.
    pub nats: async_nats::Client,
    /// JetStream settings (tests shrink them).
    pub topology: TopologyConfig,
}

impl Gateway {
    /// Creates the gateway's part of the topology, subscribes to its replies
    /// and starts following routes, workers and the results bucket.
    ///
    /// # Errors
    /// [`GatewayError`] if a setting is unusable, or the topology or the
    /// reply subscription cannot be set up.
    pub async fn start(config: &Config, deps: Deps) -> Result<Gateway, GatewayError> {
        let Deps { nats, topology: topology_config } = deps;
        let config = config.clone();
        let egress = config.egress_allow_cidrs.parse().map_err(GatewayError::EgressCidrs)?;
        let js = async_nats::jetstream::new(nats.clone());
        // A concurrency lease of an async call may live as long as its deadline
        // and a whole run: the limits bucket keeps keys longer than that.
        let mut topology_config = topology_config;
        topology_config.limits_ttl =
            topology_config.limits_ttl.max(std::time::Duration::from_millis(config.async_deadline_ms) * 2);
        let topo = topology::gateway(&js, &topology_config).await?;
        let id = config.gateway_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let sub = nats.subscribe(subject::reply_subscription(&id)?).await?;
        let (stop, stop_rx) = watch::channel(false);
        let routes = Arc::new(RouteTable::default());
        let metrics = Arc::new(metrics::Metrics::default());
        let direct_share = usize::try_from(topology_config.invocations_max_msgs_per_function).unwrap_or(usize::MAX);
        let replies = Arc::new(invoke::Replies::new(metrics.clone(), direct_share));
        let presence = Arc::new(presence::Presence::new(topology_config.worker_ttl));
        let results_room = Arc::new(presence::ResultsRoom::default());
        let tasks = vec![
            ("route table", tokio::spawn(routes.clone().follow(topo.routes.clone(), stop_rx.clone()))),
            ("replies", tokio::spawn(replies.clone().receive(sub, stop_rx.clone()))),
            ("reply recovery", tokio::spawn(replies.clone().recover(nats.clone(), id.clone(), stop_rx.clone()))),
            ("results bucket", {
                let (room, kv, stop) = (results_room.clone(), topo.results.clone(), stop_rx.clone());
                tokio::spawn(async move { room.follow(kv, std::time::Duration::from_secs(1), stop).await })
            }),
            ("worker presence", {
                let (presence, kv, stop) = (presence.clone(), topo.workers.clone(), stop_rx.clone());
                tokio::spawn(async move { presence.follow(kv, stop).await })
            }),
        ];
        Ok(Gateway {
            id,
            config,
            nats,
            js,
            topo,
            routes,
            metrics,
            replies,
            presence,
            results_room,
            egress,
            stop,
            tasks,
        })
    }

    /// Serves the gateway on its listeners until `shutdown` resolves, then
    /// lets the requests in flight finish and stops the watchers.
    pub async fn serve(self, listeners: Listeners, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Listeners { public: listener, admin: admin_listener } = listeners;
        // The port of requests whose Host names none.
        let local_port = listener.local_addr().map_or(self.config.listen.port(), |a| a.port());
        let body_budget = olin_serve::BodyBudget::new(self.config.max_buffered_body_mib << 20);
        let mut publisher = self.js.clone();
        publisher.set_timeout(std::time::Duration::from_millis(self.config.publish_ack_timeout_ms));
        let gw = Arc::new(Shared {
            id: self.id,
            config: self.config,
            nats: self.nats,
            publisher,
            js: self.js,
            routes: self.routes,
            replies: self.replies,
            local_port,
            metrics: self.metrics,
            presence: self.presence,
            results_room: self.results_room,
            workers_kv: self.topo.workers.clone(),
            results_kv: self.topo.results.clone(),
            limits: olin_nats::admission::Limits::new(self.topo.limits.clone()),
            body_budget,
            egress: self.egress,
        });
        let state = gw.clone();
        let filter = warp::any()
            .map(move || state.clone())
            .and(warp::method())
            .and(warp::path::full())
            .and(warp::query::raw().map(Some).or(warp::any().map(|| None)).unify())
            .and(warp::header::headers_cloned())
            .and(olin_serve::remote())
            .and(warp::body::stream())
            .then(|gw, method, path, query, headers, remote, body| async move {
                let req = http::Incoming { method, path, query, headers, remote, body: Box::pin(body) };
                http::handle(gw, req).await
            });
        let admin_state = gw.clone();
        let admin_filter = warp::any()
            .map(move || admin_state.clone())
            .and(warp::path::full())
            .then(|gw, path| async move { http::admin(gw, path).await });
        info!(gateway_id = %gw.id, addr = ?listener.local_addr().ok(), admin = ?admin_listener.local_addr().ok(), "gateway serving");
        let admin = olin_serve::spawn_admin(admin_listener, warp::service(admin_filter), self.stop.subscribe());
        let (bounds, conns) = (gw.config.bounds(), gw.metrics.connections.clone());
        olin_serve::serve(listener, warp::service(filter), bounds, conns, shutdown).await;
        let _ = self.stop.send(true);
        olin_telemetry::join("admin listener", admin).await;
        for (name, task) in self.tasks {
            olin_telemetry::join(name, task).await;
        }
        info!("gateway stopped");
    }
}

/// Starts the gateway and serves it until `shutdown` resolves
/// ([`Gateway::start`], then [`Gateway::serve`]): the shape of
/// `olin_worker::run` and `olin_control::run`.
///
/// # Errors
/// [`GatewayError`] if the gateway cannot start.
pub async fn run(
    config: &Config,
    listeners: Listeners,
    deps: Deps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    Gateway::start(config, deps).await?.serve(listeners, shutdown).await;
    Ok(())
}
