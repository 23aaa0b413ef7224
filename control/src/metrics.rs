//! Prometheus metrics of the control plane, in the text format: API
//! requests by route pattern and status, and execution-event ingestion.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// The control plane's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Execution rows stored (events acked).
    pub events_ingested: AtomicU64,
    /// Batches that failed to store and will come again.
    pub ingest_failures: AtomicU64,
    /// The public listener's connections.
    pub connections: std::sync::Arc<olin_serve::Stats>,
}

impl Metrics {
    /// Counts one answered request; `route` is the pattern (bounded labels).
    pub fn request(&self, method: &str, route: &str, status: u16) {
        let mut m = self.requests.lock();
        *m.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP olin_control_requests_total API requests answered.");
        let _ = writeln!(out, "# TYPE olin_control_requests_total counter");
        for ((method, route, status), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "olin_control_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP olin_control_events_ingested_total Execution events stored as rows.");
        let _ = writeln!(out, "# TYPE olin_control_events_ingested_total counter");
        let _ = writeln!(out, "olin_control_events_ingested_total {}", self.events_ingested.load(Ordering::Relaxed));
        let _ =
            writeln!(out, "# HELP olin_control_ingest_failures_total Event batches that failed to store (retried).");
        let _ = writeln!(out, "# TYPE olin_control_ingest_failures_total counter");
        let _ = writeln!(out, "olin_control_ingest_failures_total {}", self.ingest_failures.load(Ordering::Relaxed));
        out.push_str(&self.connections.render("olin_control"));
        out
    }
}
