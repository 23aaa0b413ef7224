//! Metrics of the gateway (`prometheus_client`): requests by function and
//! status, a latency histogram by function, calls in flight, replies dropped
//! as duplicates, and the public listener's connections.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// A request answered: its function (empty when it named none that is
/// deployed, which keeps the labels bounded) and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    function: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Of {
    function: String,
}

/// Why a direct call was queued instead (`olin_gateway_direct_queued_total`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Queued {
    reason: &'static str,
}

/// The gateway's metrics.
pub struct Metrics {
    requests: Family<Answered, Counter>,
    latency: Family<Of, Histogram, fn() -> Histogram>,
    /// Requests being answered now.
    pub in_flight: Gauge,
    /// Replies that found no waiting call (duplicates of redelivered calls, or late).
    pub dropped_replies: Counter,
    /// Calls published again because JetStream did not confirm them.
    pub publish_retries: Counter,
    /// Reconnects after which the workers were asked for replies again.
    pub replay_requests: Counter,
    /// Synchronous calls sent directly to a worker.
    pub direct_calls: Counter,
    direct_queued: Family<Queued, Counter>,
    /// Direct calls sent directly a second time after their worker went quiet.
    pub direct_resent: Counter,
    /// The public listener's connections.
    pub connections: Arc<olin_serve::Stats>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<Answered, Counter>::default();
        let latency = Family::<Of, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let dropped_replies = Counter::default();
        let publish_retries = Counter::default();
        let replay_requests = Counter::default();
        let direct_calls = Counter::default();
        let direct_queued = Family::<Queued, Counter>::default();
        let direct_resent = Counter::default();
        let connections = Arc::<olin_serve::Stats>::default();
        let mut registry = Registry::with_prefix("olin_gateway");
        registry.register("requests", "HTTP requests answered, by function and status.", requests.clone());
        registry.register("request_duration_seconds", "Time to answer, by function.", latency.clone());
        registry.register("in_flight", "Requests being answered now.", in_flight.clone());
        registry.register(
            "dropped_replies",
            "Replies that found no waiting call (duplicates or late).",
            dropped_replies.clone(),
        );
        registry.register_collector(Box::new(connections.clone()));
        registry.register(
            "publish_retries",
            "Calls published again (same message id) because JetStream did not confirm them.",
            publish_retries.clone(),
        );
        registry.register(
            "replay_requests",
            "Reconnects to NATS after which the workers were asked to send this gateway's recent replies again.",
            replay_requests.clone(),
        );
        registry.register("direct_calls", "Synchronous calls sent directly to a worker.", direct_calls.clone());
        registry.register(
            "direct_queued",
            "Direct calls queued in JetStream instead, by reason: not_taken (the worker had no free slot), \
             no_workers (none listened), silent (the worker went quiet), function_share (the function had \
             its share in flight), unsent.",
            direct_queued.clone(),
        );
        registry.register(
            "direct_resent",
            "Direct calls sent directly once more because their worker went quiet.",
            direct_resent.clone(),
        );
        Metrics {
            requests,
            latency,
            in_flight,
            dropped_replies,
            publish_retries,
            replay_requests,
            direct_calls,
            direct_queued,
            direct_resent,
            connections,
            registry,
        }
    }
}

impl Metrics {
    /// Counts a direct call queued instead, for `reason`.
    pub fn direct_queued(&self, reason: &'static str) {
        self.direct_queued.get_or_create(&Queued { reason }).inc();
    }

    /// Records one answered request. `function` is empty for requests that
    /// named no deployed function (keeps label cardinality bounded).
    pub fn observe(&self, function: &str, status: u16, took: Duration) {
        self.requests.get_or_create(&Answered { function: function.to_owned(), status }).inc();
        self.latency.get_or_create(&Of { function: function.to_owned() }).observe(took.as_secs_f64());
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        olin_telemetry::metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe("hello", 200, Duration::from_millis(3));
        m.observe("hello", 200, Duration::from_millis(30));
        m.observe("", 404, Duration::from_micros(100));
        let text = m.render();
        assert!(text.contains("olin_gateway_requests_total{function=\"hello\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("olin_gateway_requests_total{function=\"\",status=\"404\"} 1\n"), "{text}");
        assert!(text.contains("olin_gateway_request_duration_seconds_bucket{le=\"0.005\",function=\"hello\"} 1\n"));
        assert!(text.contains("olin_gateway_request_duration_seconds_bucket{le=\"0.05\",function=\"hello\"} 2\n"));
        assert!(text.contains("olin_gateway_request_duration_seconds_count{function=\"hello\"} 2\n"));
        assert!(text.contains("olin_gateway_in_flight 0\n"));
        assert!(text.contains("olin_gateway_connections_refused_total 0\n"), "{text}");
    }
}
