//! Metrics of the control plane (`prometheus_client`): API requests by
//! route pattern and status, execution-event ingestion, and the public
//! listener's connections.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// One answered API request; `route` is the pattern (bounded labels).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    method: String,
    route: String,
    status: u16,
}

/// The control plane's metrics.
pub struct Metrics {
    requests: Family<Answered, Counter>,
    /// Execution rows stored (events acked).
    pub events_ingested: Counter,
    /// Batches that failed to store and will come again.
    pub ingest_failures: Counter,
    /// Execution records deleted by retention.
    pub executions_pruned: Counter,
    /// Usage rollup rows deleted by retention.
    pub usage_rows_pruned: Counter,
    /// Execution events stored in `OLIN_EVENTS` and not yet delivered to
    /// the ingester, as of the last one delivered: the ingestion lag.
    pub events_pending: Gauge,
    /// Users whose monthly quota is spent (their functions answer 429), as
    /// of the last quota check.
    pub users_over_quota: Gauge,

    /// The public listener's connections.
    pub connections: Arc<olin_serve::Stats>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<Answered, Counter>::default();
        let events_ingested = Counter::default();
        let ingest_failures = Counter::default();
        let executions_pruned = Counter::default();
        let usage_rows_pruned = Counter::default();
        let events_pending = Gauge::default();
        let users_over_quota = Gauge::default();
        let connections = Arc::<olin_serve::Stats>::default();
        let mut registry = Registry::with_prefix("olin_control");
        registry.register("requests", "API requests answered.", requests.clone());
        registry.register("events_ingested", "Execution events stored as rows.", events_ingested.clone());
        registry.register("ingest_failures", "Event batches that failed to store (retried).", ingest_failures.clone());
        registry.register("executions_pruned", "Execution records deleted by retention.", executions_pruned.clone());
        registry.register(
            "usage_rows_pruned",
            "Per-minute usage rows deleted by retention.",
            usage_rows_pruned.clone(),
        );
        registry.register(
            "events_pending",
            "Execution events waiting in OLIN_EVENTS for the ingester, as of the last one delivered.",
            events_pending.clone(),
        );
        registry.register(
            "users_over_quota",
            "Users whose monthly quota is spent, as of the last quota check.",
            users_over_quota.clone(),
        );
        registry.register_collector(Box::new(connections.clone()));
        Metrics {
            requests,
            events_ingested,
            ingest_failures,
            executions_pruned,
            usage_rows_pruned,
            events_pending,
            users_over_quota,
            connections,
            registry,
        }
    }
}

impl Metrics {
    /// Counts one answered request; `route` is the pattern (bounded labels).
    pub fn request(&self, method: &str, route: &str, status: u16) {
        self.requests.get_or_create(&Answered { method: method.to_owned(), route: route.to_owned(), status }).inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        olin_telemetry::metrics::render(&self.registry)
    }
}
