//! What every Olincloud binary does the same way (after spin's `telemetry`
//! crate): install the log subscriber, and wait for the signal to stop.
//! Only binaries call these; libraries never install a subscriber.

/// Logs to stderr, filtered by `RUST_LOG` (else `default_level`), as text or,
/// with `format == "json"`, one JSON object per line (for Kubernetes).
pub fn init(format: &str, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
