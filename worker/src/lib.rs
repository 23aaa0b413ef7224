//! The Olincloud worker: pulls invocations from the shared JetStream consumer
//! `workers`, runs each in the sandbox (crate `olin`) and replies.
//!
//! # Layout
//! - [`config`]: [`Config`], flags with environment twins.
//! - `consumer`: the pull loop, one pull per free slot, and the execution
//!   slots (a thread each): run, reply, event, ack.
//! - `call`: what every path that finishes a call needs: its deadline, its
//!   lease given back, its execution event.
//! - [`module_cache`]: compiled modules by sha256, compiled once.
//! - [`admission`]: the worker's memory budget, reserved by each call.
//! - `health`: `/healthz`, `/readyz`, `/metrics`.

pub mod admission;
mod async_call;
mod call;
pub mod config;
mod consumer;
mod dead_letter;
mod egress;
pub use egress::{BadHostsLine, EgressSetupError};
mod health;
pub mod module_cache;
mod reply;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use olin::{Limits, Runtime};
use olin_nats::topology::{self, TopologyConfig, TopologyError};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use config::Config;
pub use module_cache::ModuleCache;

/// How often a worker refreshes its heartbeat (the bucket's TTL is longer).
const HEARTBEAT: Duration = Duration::from_secs(2);

/// The worker could not start.
#[derive(Debug, Error)]
pub enum WorkerError {
    /// The JetStream topology could not be created.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// Outbound HTTP for guests could not be set up as configured.
    #[error("outbound HTTP: {0}")]
    Egress(#[from] egress::EgressSetupError),
    /// The memory budget cannot hold a single call.
    #[error("the worker's memory budget of {budget} bytes cannot hold one call (at least {needed} bytes)")]
    MemoryBudget {
        /// The budget.
        budget: u64,
        /// What the smallest useful call needs.
        needed: u64,
    },
    /// The artifact cache key is unusable.
    #[error("WORKER_CACHE_KEY: {0}")]
    CacheKey(#[from] module_cache::ShortKey),
    /// The secrets keys are unusable.
    #[error("OLIN_SECRETS_KEYS: {0}")]
    SecretsKeys(#[source] olin_proto::sealed::SealError),
    /// NATS refused a subscription the worker needs.
    #[error("subscribing to {subject}: {source}")]
    Subscribe { subject: String, source: async_nats::SubscribeError },
}

/// The memory budget of calls, and the default and maximum limits within
/// it: if the largest call allowed would not fit in the budget alone, the
/// maximum memory cap is lowered until it does (and said so).
fn memory_limits(cfg: &Config) -> Result<(u64, Limits, Limits), WorkerError> {
    let budget = cfg.memory_budget();
    let (mut defaults, mut maxima) = (cfg.defaults(), cfg.maxima());
    if maxima.reservation_bytes() > budget {
        let fixed = maxima.host_budget_bytes + maxima.max_output_bytes;
        let memory = budget.saturating_sub(fixed) / olin::limits::PAGE * olin::limits::PAGE;
        if memory == 0 {
            return Err(WorkerError::MemoryBudget { budget, needed: fixed + olin::limits::PAGE });
        }
        warn!(
            budget_mib = budget >> 20,
            max_memory_mib = memory >> 20,
            "the largest call allowed would not fit in the memory budget; the maximum memory per call is lowered"
        );
        maxima.memory_bytes = memory;
        defaults.memory_bytes = defaults.memory_bytes.min(memory);
    }
    Ok((budget, defaults, maxima))
}

/// The disk tier of the module cache, as configured: none without a cache
/// directory; a random key (artifacts not reused after a restart) without
/// `WORKER_CACHE_KEY`.
fn disk_options(cfg: &Config) -> Result<Option<module_cache::DiskOptions>, WorkerError> {
    let Some(dir) = cfg.cache_dir.clone() else { return Ok(None) };
    let key = match &cfg.cache_key {
        Some(key) => module_cache::ArtifactKey::new(key.as_bytes()),
        None => {
            warn!(
                "WORKER_CACHE_KEY is not set: compiled artifacts are authenticated with a key of this process only and are not reused after a restart"
            );
            module_cache::ArtifactKey::random()
        }
    }?;
    Ok(Some(module_cache::DiskOptions { dir, budget: config::mib(cfg.cache_disk_mib), key }))
}

/// The shared tier of the module cache, as configured: only with
/// `WORKER_CACHE_KEY` (a key of this process alone would seal artifacts no
/// other worker can use).
fn shared_options(cfg: &Config) -> Result<Option<module_cache::SharedOptions>, WorkerError> {
    match (&cfg.cache_key, cfg.shared_artifacts) {
        (Some(key), true) => Ok(Some(module_cache::SharedOptions {
            key: module_cache::ArtifactKey::new(key.as_bytes())?,
            max_bytes: config::mib(cfg.shared_artifact_max_mib),
        })),
        (None, true) => {
            info!("WORKER_CACHE_KEY is not set: compiled artifacts are not shared with other workers");
            Ok(None)
        }
        (_, false) => Ok(None),
    }
}

/// Counters a worker keeps; exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Calls answered (any outcome).
    pub executions: AtomicU64,
    /// Calls running now.
    pub in_flight: AtomicU64,
    /// Messages moved to `OLIN_DEAD`.
    pub dead_lettered: AtomicU64,
    /// Synchronous calls queued again once after their deliveries ran out
    /// while the caller still waited (see `dead_letter`).
    pub requeued: AtomicU64,
    /// Direct calls handed back to their gateway (no free slot, memory or
    /// module now), which queued them.
    pub direct_not_taken: AtomicU64,
    /// Calls waiting in the shared consumer `workers`, not yet delivered
    /// (the queue backlog every worker sees; autoscalers read it).
    pub consumer_pending: AtomicU64,
    /// Calls delivered to some worker and not yet acked (running everywhere).
    pub consumer_ack_pending: AtomicU64,
    /// Whether the two above are fresh (the last consumer info succeeded).
    pub backlog_known: std::sync::atomic::AtomicBool,
    /// Replies sent again because they reached no subscriber (a gateway
    /// reconnecting).
    pub replies_resent: AtomicU64,
    /// Replies given up on: still unheard when their caller's deadline passed.
    pub replies_undelivered: AtomicU64,
    /// Replies sent again after a reconnect, this worker's or their
    /// gateway's, since they may have been lost with a server.
    pub replies_replayed: AtomicU64,
    /// Execution events JetStream did not store within their retry time.
    pub events_lost: AtomicU64,
    /// Execution events of direct calls waiting for JetStream's
    /// confirmation now (at most `WORKER_MAX_UNCONFIRMED_EVENTS`).
    pub events_unconfirmed: AtomicU64,
}

/// What every task of a worker shares.
pub(crate) struct Ctx {
    pub(crate) worker_id: String,
    pub(crate) nats: async_nats::Client,
    pub(crate) js: async_nats::jetstream::Context,
    pub(crate) runtime: Runtime,
    pub(crate) modules: ModuleCache,
    pub(crate) defaults: Limits,
    pub(crate) maxima: Limits,
    pub(crate) ack_wait: Duration,
    pub(crate) max_deliver: i64,
    pub(crate) stats: Arc<Stats>,
    pub(crate) egress: Option<Arc<egress::HttpEgress>>,
    /// Opens functions' secret values, if keys are configured.
    pub(crate) secrets: Option<olin_proto::sealed::Keyring>,
    pub(crate) results: async_nats::jetstream::kv::Store,
    /// `OLIN_LIMITS`: concurrency leases are given back here.
    pub(crate) limits: olin_nats::admission::Limits,
    pub(crate) outbox: Arc<reply::Outbox>,
    /// The worker's memory budget, reserved by each call before it runs.
    pub(crate) admission: Arc<admission::Admission>,
    /// Work that outlives its call (callback deliveries): drain waits for
    /// it, up to [`DRAIN_BACKGROUND`].
    pub(crate) background: tokio_util::task::TaskTracker,
    /// Room for direct calls' events not yet confirmed stored
    /// (`call::confirm_in_background`).
    pub(crate) unconfirmed_events: Arc<tokio::sync::Semaphore>,
}

/// The longest drain waits for callback deliveries and reply resends.
const DRAIN_BACKGROUND: Duration = Duration::from_secs(15);

/// External clients a worker runs with.
pub struct Deps {
    /// A connected NATS client.
    pub nats: async_nats::Client,
    /// The module store.
    pub store: Arc<dyn ObjectStore>,
    /// JetStream settings (tests shrink them).
    pub topology: TopologyConfig,
}

/// A started worker, not yet serving.
pub struct Worker {
    ctx: Arc<Ctx>,
    invocations: async_nats::jetstream::stream::Stream,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    workers_kv: async_nats::jetstream::kv::Store,
    concurrency: usize,
    backlog_interval: Duration,
    sweep_interval: Duration,
    /// No-responders statuses of this worker's replies.
    statuses: async_nats::Subscriber,
    /// Gateways' requests for their replies again, after they reconnected.
    replays: async_nats::Subscriber,
}

impl Worker {
    /// Creates the topology (idempotently) and the worker's engine.
    ///
    /// # Errors
    /// [`WorkerError`] if JetStream is unreachable or refuses the topology.
    pub async fn start(cfg: &Config, deps: Deps) -> Result<Worker, WorkerError> {
        let js = async_nats::jetstream::new(deps.nats.clone());
        let topo = topology::worker(&js, &deps.topology).await?;
        let (budget, defaults, maxima) = memory_limits(cfg)?;
        info!(budget_mib = budget >> 20, max_call_mib = maxima.reservation_bytes() >> 20, "memory budget of calls");
        use egress::EgressSetupError as Setup;
        let extra_roots = match &cfg.egress_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| Setup::Read { path: path.clone(), source })?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|source| Setup::Certificates { path: path.clone(), source })?
            }
            None => Vec::new(),
        };
        // An engine generation holds what the module cache may hold.
        let policy: olin_proto::net_policy::AddressPolicy = cfg.egress_allow_cidrs.parse().map_err(Setup::Cidrs)?;
        let endpoints = [Some(cfg.nats.url.as_str()), cfg.store.s3_endpoint.as_deref()];
        egress::warn_if_opened(&policy, &endpoints.into_iter().flatten().collect::<Vec<_>>()).await;
        let hosts = match &cfg.egress_hosts {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| Setup::Read { path: path.clone(), source })?;
                egress::parse_hosts(&text).map_err(|source| Setup::Hosts { path: path.clone(), source })?
            }
            None => Default::default(),
        };
        let pool = olin::PoolConfig {
            max_free: cfg.concurrency(),
            keep_resident_bytes: usize::try_from(cfg.memory_pool_resident_kib.saturating_mul(1024))
                .unwrap_or(usize::MAX),
        };
        let runtime = Runtime::with_pool(maxima.memory_pages(), Some(pool))
            .with_generation_bytes(config::mib(cfg.cache_memory_mib));
        let worker_id = cfg.worker_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let stats = Arc::<Stats>::default();
        let outbox = Arc::new(reply::Outbox::new(deps.nats.clone(), stats.clone()));
        // Subscribed before the first reply, so no status is missed.
        let statuses_subject = outbox.statuses();
        let statuses = deps
            .nats
            .subscribe(statuses_subject.clone())
            .await
            .map_err(|source| WorkerError::Subscribe { subject: statuses_subject, source })?;
        let replays_subject = olin_proto::subject::replay_requests();
        let replays = deps
            .nats
            .subscribe(replays_subject.clone())
            .await
            .map_err(|source| WorkerError::Subscribe { subject: replays_subject, source })?;
        let ctx = Ctx {
            worker_id,
            nats: deps.nats,
            js,
            modules: {
                let cache = ModuleCache::new(
                    runtime.clone(),
                    deps.store,
                    disk_options(cfg)?,
                    config::mib(cfg.cache_memory_mib),
                );
                match shared_options(cfg)? {
                    Some(shared) => cache.with_shared(shared),
                    None => cache,
                }
            },
            runtime,
            defaults,
            maxima,
            admission: Arc::new(admission::Admission::new(budget)),
            background: tokio_util::task::TaskTracker::new(),
            unconfirmed_events: Arc::new(tokio::sync::Semaphore::new(cfg.max_unconfirmed_events.max(1))),
            ack_wait: deps.topology.ack_wait,
            max_deliver: deps.topology.max_deliver,
            stats,
            results: topo.results.clone(),
            limits: olin_nats::admission::Limits::new(topo.limits.clone()),
            outbox,
            secrets: match &cfg.secrets_keys {
                Some(spec) => Some(spec.parse().map_err(WorkerError::SecretsKeys)?),
                None => None,
            },
            egress: match egress::HttpEgress::new(tokio::runtime::Handle::current(), extra_roots, policy, hosts) {
                Ok(e) => Some(Arc::new(e)),
                Err(err) if cfg.egress_ca_file.is_some() => return Err(Setup::Client(err).into()),
                Err(err) => {
                    warn!(%err, "outbound HTTP unavailable; guests' http resources will fail");
                    None
                }
            },
        };
        let worker = Worker {
            ctx: Arc::new(ctx),
            invocations: topo.invocations,
            consumer: topo.consumer,
            workers_kv: topo.workers,
            concurrency: cfg.concurrency(),
            backlog_interval: Duration::from_millis(cfg.backlog_interval_ms.max(100)),
            sweep_interval: Duration::from_millis(cfg.sweep_interval_ms.max(100)),
            statuses,
            replays,
        };
        // Visible to gateways before the first pull.
        beat(&worker.ctx, &worker.workers_kv, worker.concurrency).await;
        Ok(worker)
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.ctx.worker_id
    }

    /// Where modules came from (memory, disk, compile).
    pub fn cache_counters(&self) -> Arc<module_cache::CacheCounters> {
        self.ctx.modules.counters()
    }

    /// The worker's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.ctx.stats.clone()
    }

    /// Serves until `shutdown` resolves, then drains: stops pulling, finishes
    /// the calls in flight, and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let puller =
            tokio::spawn(consumer::pull(self.ctx.clone(), self.consumer.clone(), self.concurrency, stop_rx.clone()));
        let heartbeat =
            tokio::spawn(heartbeat(self.ctx.clone(), self.workers_kv.clone(), self.concurrency, stop_rx.clone()));
        let health = tokio::spawn(health::serve(listener, self.ctx.clone(), stop_rx.clone()));
        let advisories =
            tokio::spawn(dead_letter::follow_advisories(self.ctx.clone(), self.invocations.clone(), stop_rx.clone()));
        // Stuck: still queued after its deadline, every delivery's ack wait and one more.
        let max_deliver = u32::try_from(self.ctx.max_deliver).unwrap_or(1);
        let stuck_after = self.ctx.ack_wait * max_deliver.saturating_add(1);
        let sweeper = tokio::spawn(dead_letter::sweep(
            self.ctx.clone(),
            self.invocations.clone(),
            self.sweep_interval,
            stuck_after,
            stop_rx.clone(),
        ));
        let prewarms = tokio::spawn(prewarm(self.ctx.clone(), stop_rx.clone()));
        let backlog = tokio::spawn(watch_backlog(
            self.ctx.clone(),
            self.consumer.clone(),
            self.backlog_interval,
            stop_rx.clone(),
        ));
        // Stopped only once the calls in flight have answered.
        let (replied_tx, replied_rx) = watch::channel(false);
        let resends = tokio::spawn(self.ctx.outbox.clone().follow(self.statuses, self.replays, replied_rx));
        info!(worker_id = %self.ctx.worker_id, concurrency = self.concurrency, "worker serving");
        shutdown.await;
        info!("draining: no new pulls, finishing calls in flight");
        let _ = stop_tx.send(true);
        olin_telemetry::join("puller", puller).await;
        // Answers just sent may still come back unheard (a gateway that is
        // reconnecting): go on resending them until none is left, for a while.
        let settle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if self.ctx.outbox.resending() == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_BACKGROUND, settle).await;
        let _ = replied_tx.send(true);
        for (name, task) in [
            ("heartbeat", heartbeat),
            ("advisories", advisories),
            ("sweeper", sweeper),
            ("prewarms", prewarms),
            ("backlog", backlog),
            ("resends", resends),
        ] {
            olin_telemetry::join(name, task).await;
        }
        // Callback deliveries of async calls already answered, and events of
        // direct calls not yet confirmed stored.
        self.ctx.background.close();
        if tokio::time::timeout(DRAIN_BACKGROUND, self.ctx.background.wait()).await.is_err() {
            warn!(left = self.ctx.background.len(), "callback deliveries still running at exit are abandoned");
        }
        // Bounded: with NATS gone these would wait for its return.
        let goodbye = async {
            if let Err(err) = self.workers_kv.delete(&self.ctx.worker_id).await {
                warn!(%err, "could not remove the worker heartbeat");
            }
            let _ = self.ctx.nats.flush().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), goodbye).await;
        olin_telemetry::join("admin listener", health).await;
        info!("worker stopped");
    }
}

/// Writes one heartbeat of this worker to `OLIN_WORKERS`.
async fn beat(ctx: &Ctx, kv: &async_nats::jetstream::kv::Store, concurrency: usize) {
    let beat = serde_json::json!({
        "worker_id": ctx.worker_id,
        "concurrency": concurrency,
        "in_flight": ctx.stats.in_flight.load(std::sync::atomic::Ordering::Relaxed),
        "executions": ctx.stats.executions.load(std::sync::atomic::Ordering::Relaxed),
    });
    if let Err(err) = kv.put(&ctx.worker_id, beat.to_string().into()).await {
        warn!(%err, "heartbeat failed");
    }
}

/// Publishes this worker's presence to `OLIN_WORKERS` until stopped.
async fn heartbeat(
    ctx: Arc<Ctx>,
    kv: async_nats::jetstream::kv::Store,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => beat(&ctx, &kv, concurrency).await,
            _ = stop.changed() => return,
        }
    }
}

/// Loads the modules control announces on `olin.ctl.prewarm` (a deploy), so
/// the first call does not wait for a fetch and compile. Each worker loads
/// every announced module: any of them may take the call.
/// Reads the shared consumer's backlog every few seconds for `/metrics`.
/// The JetStream API answers from the consumer's leader, so the counts are
/// current (unlike reading a follower's monitoring endpoint).
async fn watch_backlog(
    ctx: Arc<Ctx>,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match tokio::time::timeout(Duration::from_secs(2), consumer.get_info()).await {
            Ok(Ok(info)) => {
                ctx.stats.consumer_pending.store(info.num_pending, Ordering::Relaxed);
                ctx.stats.consumer_ack_pending.store(info.num_ack_pending as u64, Ordering::Relaxed);
                ctx.stats.backlog_known.store(true, Ordering::Relaxed);
            }
            Ok(Err(err)) => {
                debug!(%err, "consumer info failed");
                ctx.stats.backlog_known.store(false, Ordering::Relaxed);
            }
            Err(_) => ctx.stats.backlog_known.store(false, Ordering::Relaxed),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn prewarm(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    use futures::StreamExt as _;
    let mut sub = match ctx.nats.subscribe(olin_proto::subject::ctl_prewarm()).await {
        Ok(s) => s,
        Err(err) => {
            warn!(%err, "cannot follow prewarm broadcasts; modules load on first call");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = stop.changed() => return,
        };
        let Some(msg) = msg else { return };
        let Ok(sha256) = std::str::from_utf8(&msg.payload).map(str::to_owned) else { continue };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let answer = match ctx.modules.prewarm(&sha256).await {
                Ok(()) => {
                    info!(module = %sha256, "prewarmed");
                    "ok".to_owned()
                }
                Err(err) => {
                    warn!(%err, module = %sha256, "prewarm failed; the first call will retry");
                    format!("error: {err}")
                }
            };
            // Control waits for the first worker to have it ready before it
            // points the route at it.
            if let Some(reply) = msg.reply
                && let Err(err) = ctx.nats.publish(reply, answer.into()).await
            {
                debug!(%err, "prewarm answer not sent");
            }
        });
    }
}

/// Runs a worker until `shutdown` resolves: [`Worker::start`] then [`Worker::serve`].
///
/// # Errors
/// [`WorkerError`] if the worker cannot start.
pub async fn run(
    cfg: &Config,
    listener: TcpListener,
    deps: Deps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    Worker::start(cfg, deps).await?.serve(listener, shutdown).await;
    Ok(())
}
