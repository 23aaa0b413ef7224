//! Waiting for something to happen, never for a fixed time: a test that
//! waits for an event states the event, returns as soon as it holds, and
//! fails naming it when it does not hold in time.

use std::future::Future;
use std::time::Duration;

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it gives `Some`, and returns that.
///
/// # Panics
/// If `check` still gives `None` after `within`; the message says `what`
/// was awaited.
pub async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("waited {within:?} for: {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// As [`until`], for a condition that is true or false.
///
/// # Panics
/// If `check` is still false after `within`.
pub async fn until_true<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until(what, within, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await;
}

/// Waits until `url` answers a plain GET with 200 (a service's `/readyz`).
///
/// # Panics
/// After 5 s.
pub(crate) async fn ready(url: &str) {
    until_true(&format!("{url} answers 200"), Duration::from_secs(5), || async { http_status(url).await == Some(200) })
        .await;
}

/// The status of a plain GET, or `None` if the connection failed.
async fn http_status(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

/// The sum of the series of `name` in the metrics at `url` (Prometheus
/// text) whose labels contain each of `labels` (`function="slow"`); 0 if
/// there are none, `None` if the metrics could not be read.
pub async fn metric(url: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    Some(sum_of(&text, name, labels))
}

fn sum_of(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name && labels.iter().all(|want| rest.contains(want))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_series() {
        let text = "# HELP x y\nreq_total{function=\"a\",status=\"200\"} 2\nreq_total{function=\"b\",status=\"503\"} 3\nopen 4\n";
        assert_eq!(super::sum_of(text, "req_total", &[]), 5.0);
        assert_eq!(super::sum_of(text, "req_total", &["function=\"b\""]), 3.0);
        assert_eq!(super::sum_of(text, "open", &[]), 4.0);
        assert_eq!(super::sum_of(text, "req", &[]), 0.0);
    }
}
