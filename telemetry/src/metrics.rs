//! Metrics, the same way in every service: a `prometheus_client` registry
//! per service, rendered in the OpenMetrics text format at `/metrics` on the
//! admin listener. Values that live elsewhere (atomics a hot path already
//! keeps, snapshots taken at scrape time) are encoded by a
//! [`Collector`](prometheus_client::collector::Collector) with
//! [`counter`] and [`gauge`].

use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `registry` as OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(%err, "encoding metrics failed");
    }
    out
}

/// Encodes one counter whose value is read now (`name` without `_total`,
/// which the format adds).
///
/// # Errors
/// Only if writing the text fails.
pub fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> std::fmt::Result {
    ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// Encodes one gauge whose value is read now.
///
/// # Errors
/// Only if writing the text fails.
pub fn gauge<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: N,
) -> std::fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prometheus_client::collector::Collector;

    #[derive(Debug)]
    struct Two;

    impl Collector for Two {
        fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> std::fmt::Result {
            super::counter(&mut encoder, "calls", "Calls.", 3)?;
            super::gauge(&mut encoder, "open", "Open now.", 2u64)
        }
    }

    #[test]
    fn collected_values_render_with_the_registry_prefix_and_labels() {
        let mut registry = prometheus_client::registry::Registry::with_prefix_and_labels(
            "olin_test",
            [("worker_id".into(), "w1".into())].into_iter(),
        );
        registry.register_collector(Box::new(Two));
        let text = super::render(&registry);
        assert!(text.contains("# TYPE olin_test_calls counter\n"), "{text}");
        assert!(text.contains("olin_test_calls_total{worker_id=\"w1\"} 3\n"), "{text}");
        assert!(text.contains("olin_test_open{worker_id=\"w1\"} 2\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
