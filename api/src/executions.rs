//! Execution records, usage over a window, and the quota standing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::invoke::Header;
use crate::list::listing;
use chrono::{DateTime, Utc};

/// What one call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ExecutionUsage {
    /// Wall time, in microseconds.
    pub wall_us: i64,
    /// Fuel burnt.
    pub fuel: i64,
    /// Largest linear memory.
    pub peak_memory_bytes: i64,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Response bytes.
    pub bytes_out: i64,
}

/// One invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Execution {
    /// Its id (UUIDv7: time-ordered).
    pub invocation_id: String,
    /// The function's name.
    pub function: String,
    /// The deployment that served it.
    pub deployment_id: String,
    /// The module that ran.
    pub module_sha256: String,
    /// `OK`, `GUEST_ERROR`, `TIMEOUT`, `FUEL_EXHAUSTED`, ...
    pub outcome: String,
    /// The HTTP status answered.
    pub status: i32,
    /// The guest's exit code.
    pub exit_code: i32,
    /// What it used.
    pub usage: ExecutionUsage,
    /// The response headers the function set.
    pub headers: Vec<Header>,
    /// The end of what the guest wrote to stderr.
    pub stderr_tail: String,
    /// What went wrong, if something did.
    pub error: String,
    /// The worker that ran it.
    pub worker_id: String,
    /// The request's method.
    pub method: String,
    /// The request's path after the function's prefix.
    pub path: String,
    /// Whether it was an async call.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// How many times it ran: 1, or more when delivery ran it again (a
    /// worker lost, a hung worker's call taken over); the record above is
    /// its first run, the answer its caller got.
    #[serde(default = "one")]
    pub attempts: u32,
    /// The runs after the first, oldest first.
    #[serde(default)]
    pub reruns: Vec<Rerun>,
}

fn one() -> u32 {
    1
}

/// A run of a call after its first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rerun {
    /// The worker that ran it.
    pub worker_id: String,
    /// Its outcome.
    pub outcome: String,
    /// The HTTP status it answered (dropped by the gateway: the caller got
    /// the first answer).
    pub status: i32,
    /// What went wrong, if something did.
    pub error: String,
    /// Wall time, in microseconds.
    pub wall_us: i64,
    /// Fuel burnt.
    pub fuel: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

listing!(
    /// Executions, newest first.
    ExecutionList of Execution
);

/// `GET /v1/functions/{name}/executions` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExecutionFilter {
    /// Only this outcome (`OK`, `GUEST_ERROR`, `TIMEOUT`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// RFC 3339 lower bound of `started_at` (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339 upper bound of `started_at` (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Most executions in the page.
    #[serde(default = "crate::list::default_limit")]
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: u64,
    /// The `next` cursor of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `?since=&until=` of usage: RFC 3339 times; a missing end is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// Calls that started at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Calls that started before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// `GET /v1/functions/{name}/usage/series` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Start of the window (default: 24 hours before its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// End of the window (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Number of equal buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500, default = 48)]
    pub buckets: Option<u32>,
}

/// Wall-time percentiles in microseconds; null without calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Percentiles {
    /// The median.
    #[schema(required = true)]
    pub p50: Option<i64>,
    /// The 99th percentile.
    #[schema(required = true)]
    pub p99: Option<i64>,
}

/// Which monthly quota is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaKind {
    /// Calls.
    Calls,
    /// Fuel.
    Fuel,
}

impl QuotaKind {
    /// As written: `calls` or `fuel`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Calls => "calls",
            QuotaKind::Fuel => "fuel",
        }
    }
}

/// This calendar month (UTC) against the caller's quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaStanding {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Calls so far.
    pub calls: i64,
    /// Fuel so far.
    pub fuel: i64,
    /// The calls quota; null: none.
    #[schema(required = true)]
    pub calls_per_month: Option<i64>,
    /// The fuel quota; null: none.
    #[schema(required = true)]
    pub fuel_per_month: Option<i64>,
    /// Which quota is spent (calls are refused until `resets_at`), if one is.
    #[schema(required = true)]
    pub exceeded: Option<QuotaKind>,
    /// When the month ends.
    pub resets_at: DateTime<Utc>,
}

/// Usage over a window, read from per-minute rollups: the window is
/// widened to whole minutes, and wall-time percentiles are within 19%.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// The function, for one function's usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The user, for all of a user's functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The window's start; null: open.
    #[schema(required = true)]
    pub since: Option<DateTime<Utc>>,
    /// The window's end; null: open.
    #[schema(required = true)]
    pub until: Option<DateTime<Utc>>,
    /// Calls.
    pub calls: u64,
    /// Runs of those calls after their first (at-least-once delivery):
    /// recorded, counted in the resources below, never charged to quotas.
    #[serde(default)]
    pub reruns: u64,
    /// Calls that did not end OK.
    pub errors: u64,
    /// Those, by outcome.
    pub errors_by_outcome: BTreeMap<String, u64>,
    /// Wall-time percentiles.
    pub wall_us: Percentiles,
    /// Fuel burnt.
    pub fuel: i64,
    /// Request bytes.
    pub bytes_in: i64,
    /// Response bytes.
    pub bytes_out: i64,
    /// The caller's standing against their quotas (`GET /v1/usage` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStanding>,
}

/// One bucket of a series: the calls that started in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// Calls.
    pub calls: u64,
    /// Runs after a call's first.
    #[serde(default)]
    pub reruns: u64,
    /// Calls that did not end OK.
    pub errors: u64,
    /// Those, by outcome.
    pub errors_by_outcome: BTreeMap<String, u64>,
    /// Wall-time percentiles.
    pub wall_us: Percentiles,
    /// Fuel burnt.
    pub fuel: i64,
}

/// A function's usage over time in equal buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageSeries {
    /// The function.
    pub function: String,
    /// The window's start.
    pub since: DateTime<Utc>,
    /// The window's end.
    pub until: DateTime<Utc>,
    /// Each bucket's length.
    pub step_seconds: f64,
    /// The buckets, oldest first.
    pub points: Vec<SeriesPoint>,
}
