//! `/healthz` (the process is up), `/readyz` (NATS is connected) and
//! `/metrics` (Prometheus text) of a worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::connection::State;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warp::Filter;

use crate::Ctx;

pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let healthz = warp::path!("healthz").map(|| "ok".to_owned());
    let ready_ctx = ctx.clone();
    let readyz = warp::path!("readyz").map(move || {
        let connected = ready_ctx.nats.connection_state() == State::Connected;
        let status = if connected { warp::http::StatusCode::OK } else { warp::http::StatusCode::SERVICE_UNAVAILABLE };
        let body = if connected { "ready" } else { "nats disconnected" };
        warp::reply::with_status(body.to_owned(), status)
    });
    // Built once: the collector reads the counters at each scrape.
    let registry = Arc::new(registry(ctx));
    let metrics = warp::path!("metrics").map(move || {
        let text = olin_telemetry::metrics::render(&registry);
        warp::reply::with_header(text, "content-type", olin_telemetry::metrics::CONTENT_TYPE)
    });
    let routes = warp::get().and(healthz.or(readyz).or(metrics));
    warp::serve(routes)
        .incoming(listener)
        .graceful(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run()
        .await;
}

/// The worker's metrics, read at scrape time from the counters its hot
/// paths keep, under `olin_worker_` with its `worker_id` on every series.
fn registry(ctx: Arc<Ctx>) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::with_prefix_and_labels(
        "olin_worker",
        [(std::borrow::Cow::Borrowed("worker_id"), std::borrow::Cow::Owned(ctx.worker_id.clone()))].into_iter(),
    );
    registry.register_collector(Box::new(Scrape(ctx)));
    registry
}

/// Reads a worker's counters when scraped.
struct Scrape(Arc<Ctx>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").field("worker_id", &self.0.worker_id).finish()
    }
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> std::fmt::Result {
        use olin_telemetry::metrics::{counter, gauge};
        let ctx = &self.0;
        let s = &ctx.stats;
        let e = &mut encoder;
        gauge(e, "in_flight", "Calls running now.", s.in_flight.load(Ordering::Relaxed))?;
        gauge(
            e,
            "events_unconfirmed",
            "Execution events of direct calls waiting for JetStream to store them (bounded by WORKER_MAX_UNCONFIRMED_EVENTS).",
            s.events_unconfirmed.load(Ordering::Relaxed),
        )?;
        if s.backlog_known.load(Ordering::Relaxed) {
            gauge(
                e,
                "consumer_pending",
                "Calls waiting in the shared consumer `workers` (the queue backlog, the same on every worker).",
                s.consumer_pending.load(Ordering::Relaxed),
            )?;
            gauge(
                e,
                "consumer_ack_pending",
                "Calls delivered to a worker and not yet acked, across all workers.",
                s.consumer_ack_pending.load(Ordering::Relaxed),
            )?;
        }
        let c = ctx.modules.counters();
        for (name, help, v) in [
            ("executions", "Calls answered, any outcome.", &s.executions),
            ("dead_lettered", "Messages moved to OLIN_DEAD.", &s.dead_lettered),
            (
                "requeued",
                "Synchronous calls queued again once after their deliveries ran out while the caller waited.",
                &s.requeued,
            ),
            (
                "direct_not_taken",
                "Direct calls handed back to their gateway to be queued (no free slot, memory or module now).",
                &s.direct_not_taken,
            ),
            (
                "replies_resent",
                "Replies sent again because no gateway was subscribed to them (a gateway reconnecting).",
                &s.replies_resent,
            ),
            (
                "replies_undelivered",
                "Replies that reached no gateway before their caller's deadline.",
                &s.replies_undelivered,
            ),
            (
                "replies_replayed",
                "Replies sent again after a reconnect of this worker or of their gateway.",
                &s.replies_replayed,
            ),
            ("events_lost", "Execution events JetStream did not store within 30 s of retries.", &s.events_lost),
            ("module_memory_hits", "Module lookups served from memory.", &c.memory_hits),
            ("module_disk_loads", "Modules loaded from a disk artifact.", &c.disk_loads),
            ("modules_compiled", "Modules compiled from the module store.", &c.compiles),
            ("module_fetches", "Module fetches from the module store.", &c.fetches),
            (
                "module_failures_remembered",
                "Calls answered from a remembered compile failure, without fetching or compiling.",
                &c.failures_remembered,
            ),
            (
                "module_disk_rejected",
                "Disk artifacts found corrupt, unauthenticated or stale and deleted.",
                &c.disk_rejected,
            ),
            (
                "module_shared_loads",
                "Modules loaded from an artifact shared through the module store.",
                &c.shared_loads,
            ),
            (
                "module_shared_rejected",
                "Shared artifacts too large, unauthenticated or not deserializing (never run).",
                &c.shared_rejected,
            ),
            ("module_shared_stores", "Compiled artifacts written to the module store for the fleet.", &c.shared_stores),
            ("module_evictions", "Modules evicted from memory.", &c.evictions),
            ("module_disk_evictions", "Artifacts evicted from disk.", &c.disk_evictions),
        ]
        .into_iter()
        .chain(ctx.runtime.pool_stats().into_iter().flat_map(|pool| {
            [
                ("memory_pool_reserved", "Linear-memory regions reserved (mmap) for the pool.", &pool.reserved),
                ("memory_pool_reused", "Calls whose linear memory was a pooled region.", &pool.reused),
                ("memory_pool_zeroed", "Pooled memories cleaned by zeroing their touched pages.", &pool.zeroed),
                (
                    "memory_pool_discarded",
                    "Pooled memories cleaned by handing their pages back to the kernel (above WORKER_MEMORY_POOL_RESIDENT_KIB).",
                    &pool.discarded,
                ),
            ]
        })) {
            counter(e, name, help, v.load(Ordering::Relaxed))?;
        }
        gauge(e, "module_disk_bytes", "Bytes of compiled artifacts on disk.", ctx.modules.disk_bytes())?;
        let (budget, reserved, peak, waiting) = ctx.admission.snapshot();
        for (name, help, v) in [
            ("memory_budget_bytes", "Memory all running calls may reserve together.", budget),
            ("memory_reserved_bytes", "Memory reserved by the calls running now.", reserved),
            ("memory_reserved_peak_bytes", "The most memory ever reserved at once.", peak),
            ("memory_waiting", "Calls waiting for memory before they run.", waiting as u64),
        ] {
            gauge(e, name, help, v)?;
        }
        Ok(())
    }
}
