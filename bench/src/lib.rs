//! Shared pieces of the benchmark drivers: timing statistics, machine
//! description, and writing `bench/results/<name>.{md,json}`; and
//! [`smith`], the generated-module robustness run of the sandbox.

pub mod smith;

use std::path::PathBuf;
use std::time::Duration;

/// Summary of many timed samples.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Mean, microseconds.
    pub mean_us: f64,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
}

impl Stats {
    /// Summarises `samples` (sorted in place).
    pub fn of(samples: &mut [Duration]) -> Stats {
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).copied().map_or(0.0, us)
        };
        let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len().max(1) as f64;
        Stats { mean_us: mean, p50_us: at(0.5), p99_us: at(0.99) }
    }
}

/// One line describing this machine: cores and CPU model.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {cpu}")
}

/// Today's date (UTC) from the system clock, `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes `bench/results/<name>.md` and the flat `<name>.json`.
///
/// # Errors
/// If the files cannot be written.
pub fn record(name: &str, markdown: &str, metrics: &serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.md")), markdown)?;
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(metrics)? + "\n")?;
    println!("recorded bench/results/{name}.md and {name}.json");
    Ok(())
}
