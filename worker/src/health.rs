//! `/healthz` (the process is up), `/readyz` (NATS is connected) and
//! `/metrics` (Prometheus text) of a worker.

use std::fmt::Write as _;
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
    let metrics = warp::path!("metrics").map(move || render(&ctx));
    let routes = warp::get().and(healthz.or(readyz).or(metrics));
    warp::serve(routes)
        .incoming(listener)
        .graceful(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run()
        .await;
}

fn render(ctx: &Ctx) -> String {
    let s = &ctx.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{worker_id=\"{}\"}} {value}",
            ctx.worker_id
        );
    };
    metric("olin_worker_in_flight", "gauge", "Calls running now.", s.in_flight.load(Ordering::Relaxed));
    if s.backlog_known.load(Ordering::Relaxed) {
        metric(
            "olin_worker_consumer_pending",
            "gauge",
            "Calls waiting in the shared consumer `workers` (the queue backlog, the same on every worker).",
            s.consumer_pending.load(Ordering::Relaxed),
        );
        metric(
            "olin_worker_consumer_ack_pending",
            "gauge",
            "Calls delivered to a worker and not yet acked, across all workers.",
            s.consumer_ack_pending.load(Ordering::Relaxed),
        );
    }
    let c = ctx.modules.counters();
    for (name, help, v) in [
        ("olin_worker_executions_total", "Calls answered, any outcome.", &s.executions),
        ("olin_worker_dead_lettered_total", "Messages moved to OLIN_DEAD.", &s.dead_lettered),
        (
            "olin_worker_replies_resent_total",
            "Replies sent again because no gateway was subscribed to them (a gateway reconnecting).",
            &s.replies_resent,
        ),
        (
            "olin_worker_replies_undelivered_total",
            "Replies that reached no gateway before their caller's deadline.",
            &s.replies_undelivered,
        ),
        ("olin_worker_module_memory_hits_total", "Module lookups served from memory.", &c.memory_hits),
        ("olin_worker_module_disk_loads_total", "Modules loaded from a disk artifact.", &c.disk_loads),
        ("olin_worker_modules_compiled_total", "Modules compiled from the module store.", &c.compiles),
        ("olin_worker_module_fetches_total", "Module fetches from the module store.", &c.fetches),
        (
            "olin_worker_module_failures_remembered_total",
            "Calls answered from a remembered compile failure, without fetching or compiling.",
            &c.failures_remembered,
        ),
        (
            "olin_worker_module_disk_rejected_total",
            "Disk artifacts found corrupt, unauthenticated or stale and deleted.",
            &c.disk_rejected,
        ),
        ("olin_worker_module_evictions_total", "Modules evicted from memory.", &c.evictions),
        ("olin_worker_module_disk_evictions_total", "Artifacts evicted from disk.", &c.disk_evictions),
    ] {
        metric(name, "counter", help, v.load(Ordering::Relaxed));
    }
    metric("olin_worker_module_disk_bytes", "gauge", "Bytes of compiled artifacts on disk.", ctx.modules.disk_bytes());
    let (budget, reserved, peak, waiting) = ctx.admission.snapshot();
    for (name, help, v) in [
        ("olin_worker_memory_budget_bytes", "Memory all running calls may reserve together.", budget),
        ("olin_worker_memory_reserved_bytes", "Memory reserved by the calls running now.", reserved),
        ("olin_worker_memory_reserved_peak_bytes", "The most memory ever reserved at once.", peak),
        ("olin_worker_memory_waiting", "Calls waiting for memory before they run.", waiting as u64),
    ] {
        metric(name, "gauge", help, v);
    }
    out
}
