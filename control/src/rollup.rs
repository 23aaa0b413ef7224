//! Per-minute usage rollups: what `usage_minutes` holds, and how usage is
//! read back from it.
//!
//! Each ingested run adds to one row keyed by (function, minute, outcome,
//! wall-time bucket). Wall times are kept as a histogram of quarter powers
//! of two ([`wall_bucket`]), so the percentiles read back ([`Histogram`])
//! are within 19% of the exact ones, and a chart of a year of calls reads a
//! few rows per minute instead of every execution record.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

use crate::entity::executions;

/// The bucket of a wall time: `floor(4 * log2(wall_us + 1))`.
pub fn wall_bucket(wall_us: i64) -> i32 {
    let x = (wall_us.max(0) as f64) + 1.0;
    (4.0 * x.log2()).floor() as i32
}

/// The wall time a bucket stands for: its geometric middle.
pub fn bucket_wall(bucket: i32) -> i64 {
    (2f64.powf((f64::from(bucket) + 0.5) / 4.0) - 1.0).round() as i64
}

/// The minute a time falls in.
pub fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// The key of one `usage_minutes` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The function's id.
    pub function_id: String,
    /// The minute the runs started in.
    pub minute: DateTime<Utc>,
    /// The runs' outcome (`OK`, `GUEST_ERROR`, ...).
    pub outcome: String,
    /// Their [`wall_bucket`].
    pub wall_bucket: i32,
}

/// What one `usage_minutes` row adds up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    /// The owner of the function.
    pub owner_id: Option<String>,
    /// First runs.
    pub calls: i64,
    /// Later runs of the same calls.
    pub reruns: i64,
    /// Wall time of every run, in µs.
    pub wall_us: i64,
    /// Fuel of every run.
    pub fuel: i64,
    /// Request bytes of every run.
    pub bytes_in: i64,
    /// Response bytes of every run.
    pub bytes_out: i64,
}

/// Adds runs up by row: `first` are calls' first runs, `reruns` later
/// ones. Runs of no known function (a route published by hand) count
/// nowhere.
pub fn add_up<'a>(
    first: impl IntoIterator<Item = &'a executions::Model>,
    reruns: impl IntoIterator<Item = &'a executions::Model>,
) -> BTreeMap<Key, Sums> {
    let mut rows: BTreeMap<Key, Sums> = BTreeMap::new();
    let runs = first.into_iter().map(|r| (r, false)).chain(reruns.into_iter().map(|r| (r, true)));
    for (r, rerun) in runs {
        let Some(function_id) = &r.function_id else { continue };
        let key = Key {
            function_id: function_id.clone(),
            minute: minute(r.started_at),
            outcome: r.outcome.clone(),
            wall_bucket: wall_bucket(r.wall_us),
        };
        let s = rows.entry(key).or_default();
        s.owner_id.clone_from(&r.owner_id);
        if rerun {
            s.reruns += 1;
        } else {
            s.calls += 1;
        }
        s.wall_us = s.wall_us.saturating_add(r.wall_us);
        s.fuel = s.fuel.saturating_add(r.fuel);
        s.bytes_in = s.bytes_in.saturating_add(r.bytes_in);
        s.bytes_out = s.bytes_out.saturating_add(r.bytes_out);
    }
    rows
}

/// Wall times as counts per [`wall_bucket`].
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: BTreeMap<i32, u64>,
}

impl Histogram {
    /// Adds `n` runs in `bucket`.
    pub fn add(&mut self, bucket: i32, n: u64) {
        if n > 0 {
            *self.counts.entry(bucket).or_default() += n;
        }
    }

    /// The `p`th percentile (0..=1), as its bucket's [`bucket_wall`]; none
    /// when empty.
    pub fn percentile(&self, p: f64) -> Option<i64> {
        let total: u64 = self.counts.values().sum();
        let last = total.checked_sub(1)?;
        // The same rank as a sorted list's `round(last * p)`.
        let rank = ((last as f64) * p).round() as u64;
        let mut seen = 0u64;
        for (&bucket, &n) in &self.counts {
            seen += n;
            if seen > rank {
                return Some(bucket_wall(bucket));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_stands_for_its_wall_times_within_19_percent() {
        for wall in [1i64, 2, 7, 100, 999, 12_345, 1_000_000, 30_000_000, 300_000_000] {
            let back = bucket_wall(wall_bucket(wall)) as f64;
            let err = (back - wall as f64).abs() / wall as f64;
            assert!(err < 0.19 || (back - wall as f64).abs() <= 1.0, "{wall} -> {back}");
        }
        assert_eq!(wall_bucket(0), 0);
        assert_eq!(wall_bucket(-5), 0);
        assert!(wall_bucket(i64::MAX) > wall_bucket(300_000_000));
    }

    #[test]
    fn percentiles_read_from_a_histogram() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(0.5), None);
        for wall in (1..=100).map(|i| i * 1000) {
            h.add(wall_bucket(wall), 1);
        }
        let p50 = h.percentile(0.5).unwrap() as f64;
        let p99 = h.percentile(0.99).unwrap() as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.19, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.19, "{p99}");
        h.add(3, 0);
        assert!(!h.counts.contains_key(&3), "no runs, no bucket");
    }

    #[test]
    fn runs_add_up_by_function_minute_outcome_and_bucket() {
        let at = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
        let run = |id: &str, f: Option<&str>, s: i64, outcome: &str, wall: i64| executions::Model {
            invocation_id: id.to_owned(),
            owner_id: Some("u".to_owned()),
            function_id: f.map(str::to_owned),
            function_name: "f".to_owned(),
            deployment_id: String::new(),
            module_sha256: String::new(),
            outcome: outcome.to_owned(),
            status: 200,
            exit_code: 0,
            wall_us: wall,
            fuel: 10,
            peak_memory_bytes: 0,
            bytes_in: 1,
            bytes_out: 2,
            stderr_tail: vec![],
            error: String::new(),
            worker_id: String::new(),
            method: String::new(),
            path: String::new(),
            is_async: false,
            response_headers: String::new(),
            started_at: at(s),
            finished_at: at(s),
            created_at: at(s),
            updated_at: at(s),
        };
        // 1_700_000_000 is 22:13:20: +30 s is the same minute, +50 s the next.
        let first = [
            run("a", Some("f1"), 0, "OK", 100),
            run("b", Some("f1"), 30, "OK", 101),
            run("c", Some("f1"), 50, "OK", 100),
            run("d", Some("f1"), 0, "GUEST_ERROR", 100),
            run("e", None, 0, "OK", 100),
        ];
        let reruns = [run("a", Some("f1"), 1, "OK", 100)];
        let rows = add_up(&first, &reruns);
        assert_eq!(rows.len(), 3, "{rows:#?}");
        let (key, sums) = rows.iter().find(|(k, _)| k.outcome == "OK" && k.minute == minute(at(0))).unwrap();
        assert_eq!(key.wall_bucket, wall_bucket(100));
        assert_eq!((sums.calls, sums.reruns, sums.fuel, sums.wall_us), (2, 1, 30, 301));
    }
}
