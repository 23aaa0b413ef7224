//! The Olincloud control plane: the `/v1` REST API that users, `olinctl` and
//! the panel talk to. State lives in Postgres (SQLite for `olinctl dev`)
//! through sea-orm; modules in S3-compatible storage through `object_store`;
//! route records in the NATS KV bucket `OLIN_ROUTES`.
//!
//! # Layout
//! - [`config`]: [`Config`], flags with environment twins.
//! - `api`: the route table and one module per resource.
//! - `auth`: password hashes, JWTs, the bearer check.
//! - [`error`]: [`ApiError`], the one error shape and its HTTP statuses.
//! - [`entity`]: sea-orm entities of the tables `olin-migrations` creates.
//! - [`ingest`]: execution events from `OLIN_EVENTS` into `executions`,
//!   reruns and per-minute usage.
//! - [`retention`]: execution records and usage rollups pruned by age and
//!   count.
//! - [`rollup`]: per-minute usage rollups and the percentiles read back.
//! - `openapi`: the OpenAPI 3 document of every route, at `/v1/openapi.json`.
//! - `panel`: the embedded web panel at `/`, with its CSP and caching.
//! - `schema`: control waits, unready, for the schema it was built for.
//! - `quota`: functions' call limits within the operator's maxima, and
//!   users' monthly quotas, enforced by refusing their routes.

mod api;
pub mod auth;
pub mod config;
pub mod entity;
pub mod error;
pub mod ingest;
mod metrics;
mod openapi;
mod panel;
mod quota;
pub mod retention;
pub mod rollup;
mod schema;
pub mod sso;
mod throttle;

use std::future::Future;
use std::sync::Arc;

use object_store::ObjectStore;
use olin_migrations::{Migrator, MigratorTrait};
use olin_nats::topology::{self, TopologyConfig, TopologyError};
use sea_orm::DatabaseConnection;
use thiserror::Error;
use tokio::net::TcpListener;
use tracing::{info, warn};
use warp::Filter;

pub use api::{ResealError, Resealed};
pub use auth::Clock;
pub use config::{Command, Config};
pub use error::ApiError;

/// The control plane could not start.
#[derive(Debug, Error)]
pub enum ControlError {
    /// Migrating or reading the database failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The route bucket could not be created.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// `CONTROL_JWT_SECRET` is too short.
    #[error(transparent)]
    JwtSecret(#[from] auth::ShortSecret),
    /// `OLIN_SECRETS_KEYS` is unusable.
    #[error("OLIN_SECRETS_KEYS: {0}")]
    SecretsKeys(#[source] olin_proto::sealed::SealError),
    /// The HTTP client (for try-it calls) could not be built.
    #[error("the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// Stored secrets could not be sealed under the current key.
    #[error("sealing secrets: {0}")]
    Reseal(#[from] api::ResealError),
    /// Creating the first admin failed.
    #[error("bootstrap admin: {0}")]
    Bootstrap(ApiError),
    /// The database's schema is older than this build (migrations pending).
    #[error("database schema: {0}")]
    Schema(String),
    /// The OpenID providers' configuration is unusable.
    #[error(transparent)]
    Sso(#[from] sso::SsoConfigError),
}

/// External clients the control plane runs with.
pub struct Deps {
    /// The database (Postgres or SQLite).
    pub db: DatabaseConnection,
    /// A connected NATS client.
    pub nats: async_nats::Client,
    /// The module store.
    pub store: Arc<dyn ObjectStore>,
    /// JetStream settings (tests shrink them).
    pub topology: TopologyConfig,
    /// What time it is, for tokens ([`Clock::system`]; tests move it).
    pub clock: Clock,
}

/// A started control plane, not yet serving.
pub struct Control {
    api: Arc<api::Api>,
    events: async_nats::jetstream::consumer::PullConsumer,
    bounds: olin_serve::Bounds,
    body_budget: olin_serve::BodyBudget,
    resealed: Resealed,
    quota_check: std::time::Duration,
    retention: retention::Retention,
}

impl Control {
    /// The secret values [`Control::start`] sealed again (rotation).
    pub fn resealed(&self) -> Resealed {
        self.resealed
    }

    /// Migrates (if configured; otherwise checks that the schema is
    /// current), creates the bootstrap admin if there is no user yet, and
    /// opens the route bucket.
    ///
    /// # Errors
    /// [`ControlError`] if any of that fails.
    pub async fn start(cfg: &Config, deps: Deps) -> Result<Control, ControlError> {
        if !cfg.migrate {
            schema::check(&deps.db).await.map_err(ControlError::Schema)?;
        }
        Control::start_with(cfg, deps, Arc::default()).await
    }

    /// [`Control::start`] once the schema is known to be current where
    /// control does not migrate ([`run`] has waited for it).
    async fn start_with(cfg: &Config, deps: Deps, metrics: Arc<metrics::Metrics>) -> Result<Control, ControlError> {
        let keys = auth::Keys::new(&cfg.jwt_secret, &cfg.jwt_verify_secrets)?;
        let providers = match &cfg.oidc_config {
            Some(setting) if !setting.trim().is_empty() => sso::parse_config(setting)?,
            _ => Vec::new(),
        };
        let sso = sso::Sso::new(providers, cfg.public_url.as_deref())?;
        if cfg.migrate {
            Migrator::up(&deps.db, None).await?;
        }
        // Hashed now, off the async threads: from the first login on, an
        // unknown name costs what a wrong password does.
        let _ = tokio::task::spawn_blocking(auth::decoy_hash).await;
        if let Some(spec) = &cfg.bootstrap_admin
            && api::bootstrap_admin(&deps.db, spec).await.map_err(ControlError::Bootstrap)?
        {
            info!("bootstrap admin created");
        }
        let js = async_nats::jetstream::new(deps.nats.clone());
        let topology::ControlTopology { routes, events } = topology::control(&js, &deps.topology).await?;
        let api = api::Api {
            db: deps.db,
            keys,
            store: deps.store,
            nats: deps.nats,
            routes,
            token_ttl_secs: cfg.token_ttl_secs,
            sso,
            local_passwords: cfg.local_passwords,
            sessions: api::SessionTtl { session: cfg.session_ttl, token: cfg.session_token_ttl },
            prewarm_wait: std::time::Duration::from_millis(cfg.prewarm_wait_ms),
            max_module_bytes: cfg.max_module_bytes,
            max_memory_pages: cfg.max_memory_pages(),
            gateway_url: cfg.gateway_url.clone(),
            metrics,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(ControlError::HttpClient)?,
            logins: throttle::LoginThrottle::default(),
            // Half the cores for password hashes, and 64 logins waiting.
            hashes: throttle::HashPool::new(std::thread::available_parallelism().map_or(1, |n| n.get() / 2), 64),
            client_ip_header: cfg.client_ip_header.clone(),
            egress_allow_literals: cfg.egress_allow_literals,
            secrets: match &cfg.secrets_keys {
                Some(spec) => Some(spec.parse().map_err(ControlError::SecretsKeys)?),
                None => None,
            },
            clock: deps.clock,
            openapi: std::sync::OnceLock::new(),
            call_limits: quota::CallLimitMaxima {
                rate_per_second: cfg.max_rate_per_second,
                concurrency: cfg.max_concurrency,
            },
        };
        // Rotation, and values stored in clear before keys were configured.
        let resealed = api::reseal(&api).await?;
        if resealed.values > 0 {
            info!(
                values = resealed.values,
                functions = resealed.functions,
                "secret values sealed under the current key"
            );
        }
        match api::restore_routes(&api).await {
            Ok(0) => {}
            Ok(n) => info!(restored = n, "published routes missing from the route bucket"),
            Err(err) => warn!(%err, "restoring missing routes failed; deploys will publish them"),
        }
        let body_budget = olin_serve::BodyBudget::new(cfg.max_buffered_body_mib << 20);
        let quota_check = std::time::Duration::from_millis(cfg.quota_check_ms.max(100));
        Ok(Control {
            api: Arc::new(api),
            events,
            bounds: cfg.bounds(),
            body_budget,
            resealed,
            quota_check,
            retention: cfg.retention(),
        })
    }

    /// Serves the API and the panel on `listeners.public`, and health,
    /// readiness and metrics on `listeners.admin`, until `shutdown` resolves,
    /// then lets the requests in flight finish.
    pub async fn serve(self, listeners: Listeners, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let admin_routes = admin_routes(self.api.db.clone(), self.api.metrics.clone(), schema::open());
        let admin = olin_serve::spawn_admin(listeners.admin, warp::service(admin_routes), stop_rx);
        self.serve_public(listeners.public, shutdown).await;
        let _ = stop_tx.send(true);
        olin_telemetry::join("admin listener", admin).await;
        info!("control plane stopped");
    }

    /// The API, the panel and the background tasks, until `shutdown`.
    async fn serve_public(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
        // Multipart framing on top of the largest module.
        let max_upload = self.api.max_module_bytes + 64 * 1024;
        let routes = api::routes(self.api.clone(), max_upload, self.body_budget.clone())
            .or(panel::routes())
            .recover(error::recover);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let ingest = tokio::spawn(ingest::run(
            self.api.db.clone(),
            self.events.clone(),
            self.api.metrics.clone(),
            stop_rx.clone(),
        ));
        let retention = tokio::spawn(retention::enforce(
            self.api.db.clone(),
            self.retention,
            self.api.metrics.clone(),
            stop_rx.clone(),
        ));
        let quotas = tokio::spawn(quota::enforce(self.api.clone(), self.quota_check, stop_rx));
        info!(addr = ?listener.local_addr().ok(), "control plane serving");
        let conns = self.api.metrics.connections.clone();
        olin_serve::serve(listener, warp::service(routes), self.bounds, conns, shutdown).await;
        let _ = stop_tx.send(true);
        olin_telemetry::join("ingest", ingest).await;
        olin_telemetry::join("quotas", quotas).await;
        olin_telemetry::join("retention", retention).await;
    }
}

/// `/healthz` (the process is up), `/readyz` (the schema is current and
/// the database answers) and `/metrics`.
fn admin_routes(
    db: DatabaseConnection,
    metrics: Arc<metrics::Metrics>,
    gate: schema::Gate,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static {
    let healthz = warp::path!("healthz").and(warp::get()).map(|| "ok".to_owned());
    let readyz = warp::path!("readyz").and(warp::get()).then(move || {
        let db = db.clone();
        let waiting = gate.borrow().clone();
        async move {
            let unavailable = |why: String| warp::reply::with_status(why, warp::http::StatusCode::SERVICE_UNAVAILABLE);
            if let Some(why) = waiting {
                return unavailable(why);
            }
            match db.ping().await {
                Ok(()) => warp::reply::with_status("ready".to_owned(), warp::http::StatusCode::OK),
                Err(_) => unavailable("database unavailable".to_owned()),
            }
        }
    });
    let metrics_route = warp::path!("metrics")
        .and(warp::get())
        .map(move || warp::reply::with_header(metrics.render(), "content-type", olin_telemetry::metrics::CONTENT_TYPE));
    healthz.or(readyz).or(metrics_route).recover(error::recover)
}

/// Runs the control plane until `shutdown` resolves: the admin listener
/// at once; then, where control does not migrate, waits (unready, serving
/// no API) until the schema is at this build's version; then
/// [`Control::start`] and the API.
///
/// # Errors
/// [`ControlError`] if it cannot start.
pub async fn run(
    cfg: &Config,
    listeners: Listeners,
    deps: Deps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControlError> {
    let Listeners { public, admin } = listeners;
    let metrics = Arc::<metrics::Metrics>::default();
    let (gate_tx, gate) = tokio::sync::watch::channel(Some("starting".to_owned()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin =
        olin_serve::spawn_admin(admin, warp::service(admin_routes(deps.db.clone(), metrics.clone(), gate)), stop_rx);
    let stopped = async {
        let _ = stop_tx.send(true);
        olin_telemetry::join("admin listener", admin).await;
    };
    let mut shutdown = Box::pin(shutdown);
    if !cfg.migrate {
        tokio::select! {
            () = &mut shutdown => {
                stopped.await;
                return Ok(());
            }
            () = schema::wait(&deps.db, &gate_tx) => {}
        }
    }
    let control = match Control::start_with(cfg, deps, metrics).await {
        Ok(control) => control,
        Err(err) => {
            stopped.await;
            return Err(err);
        }
    };
    gate_tx.send_replace(None);
    control.serve_public(public, shutdown).await;
    stopped.await;
    info!("control plane stopped");
    Ok(())
}

/// The control plane's two listeners: the public one for the API and the
/// panel, and the admin one for health, readiness and metrics.
pub struct Listeners {
    /// `/v1/...` and the panel.
    pub public: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin: TcpListener,
}
