//! What every Olincloud binary does the same way (after spin's `telemetry`
//! crate): install the log subscriber, wait for the signal to stop, and
//! join background tasks at drain without losing their panics, and
//! expose metrics ([`metrics`]). Only binaries call [`init`]; libraries
//! never install a subscriber.

pub mod metrics;

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

/// Waits for background task `task` at drain. A task that panicked (or was
/// cancelled) is logged by name: a drain never hides a failure.
pub async fn join<T>(task: &'static str, handle: tokio::task::JoinHandle<T>) -> Option<T> {
    match handle.await {
        Ok(value) => Some(value),
        Err(err) if err.is_panic() => {
            tracing::error!(task, %err, "background task panicked");
            None
        }
        Err(err) => {
            tracing::warn!(task, %err, "background task was cancelled");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panicked_task_is_reported_not_hidden() {
        let ok = tokio::spawn(async { 7 });
        assert_eq!(super::join("ok", ok).await, Some(7));
        #[allow(clippy::panic)]
        let bad = tokio::spawn(async { panic!("boom") });
        assert_eq!(super::join::<()>("bad", bad).await, None);
    }
}
