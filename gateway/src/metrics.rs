//! Prometheus metrics of the gateway, rendered by hand in the text format:
//! requests by function and status, a latency histogram by function, calls
//! in flight, and replies dropped as duplicates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The gateway's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Requests being answered now.
    pub in_flight: AtomicI64,
    /// Replies that found no waiting call (duplicates of redelivered calls, or late).
    pub dropped_replies: AtomicU64,
    /// The public listener's connections.
    pub connections: std::sync::Arc<olin_serve::Stats>,
}

impl Metrics {
    /// Records one answered request. `function` is empty for requests that
    /// named no deployed function (keeps label cardinality bounded).
    pub fn observe(&self, function: &str, status: u16, took: Duration) {
        *self.requests.lock().entry((function.to_owned(), status)).or_default() += 1;
        let secs = took.as_secs_f64();
        let mut latency = self.latency.lock();
        let h = latency.entry(function.to_owned()).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le
                && let Some(c) = h.counts.get_mut(i)
            {
                *c += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP olin_gateway_requests_total HTTP requests answered, by function and status.\n");
        out.push_str("# TYPE olin_gateway_requests_total counter\n");
        for ((f, status), n) in self.requests.lock().iter() {
            let _ = writeln!(out, "olin_gateway_requests_total{{function=\"{f}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP olin_gateway_request_duration_seconds Time to answer, by function.\n");
        out.push_str("# TYPE olin_gateway_request_duration_seconds histogram\n");
        for (f, h) in self.latency.lock().iter() {
            for (le, c) in BUCKETS.iter().zip(&h.counts) {
                let _ =
                    writeln!(out, "olin_gateway_request_duration_seconds_bucket{{function=\"{f}\",le=\"{le}\"}} {c}");
            }
            let _ = writeln!(
                out,
                "olin_gateway_request_duration_seconds_bucket{{function=\"{f}\",le=\"+Inf\"}} {}\n\
                 olin_gateway_request_duration_seconds_sum{{function=\"{f}\"}} {}\n\
                 olin_gateway_request_duration_seconds_count{{function=\"{f}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP olin_gateway_in_flight Requests being answered now.\n# TYPE olin_gateway_in_flight gauge\n\
             olin_gateway_in_flight {}\n\
             # HELP olin_gateway_dropped_replies_total Replies that found no waiting call (duplicates or late).\n\
             # TYPE olin_gateway_dropped_replies_total counter\nolin_gateway_dropped_replies_total {}",
            self.in_flight.load(Ordering::Relaxed),
            self.dropped_replies.load(Ordering::Relaxed)
        );
        out.push_str(&self.connections.render("olin_gateway"));
        out
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
        assert!(text.contains("olin_gateway_request_duration_seconds_bucket{function=\"hello\",le=\"0.005\"} 1\n"));
        assert!(text.contains("olin_gateway_request_duration_seconds_bucket{function=\"hello\",le=\"0.05\"} 2\n"));
        assert!(text.contains("olin_gateway_request_duration_seconds_count{function=\"hello\"} 2\n"));
        assert!(text.contains("olin_gateway_in_flight 0\n"));
    }
}
