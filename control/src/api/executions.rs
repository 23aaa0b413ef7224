//! Execution records and usage: per function with filters and paging, one
//! invocation by id, and usage per function or per user over a window.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Reply as _;
use warp::reply::Response;

use super::functions::owned_from;
use super::{Api, Request};
use crate::entity::executions;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    /// `OK`, `GUEST_ERROR`, `TIMEOUT`, ...
    outcome: Option<String>,
    /// RFC 3339 lower bound of `started_at` (inclusive).
    since: Option<String>,
    /// RFC 3339 upper bound of `started_at` (exclusive).
    until: Option<String>,
    #[serde(default = "default_limit")]
    limit: u64,
    /// Cursor: the last invocation id of the previous page.
    after: Option<String>,
}

fn default_limit() -> u64 {
    50
}

fn instant(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::bad_request(format!("{name} must be an RFC 3339 time ({e})")))
    })
    .transpose()
}

/// `find` narrowed to calls that started in `[since, until)`; a missing end
/// is open.
pub(super) fn started_within(
    find: sea_orm::Select<executions::Entity>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> sea_orm::Select<executions::Entity> {
    let find = match since {
        Some(t) => find.filter(executions::Column::StartedAt.gte(t)),
        None => find,
    };
    match until {
        Some(t) => find.filter(executions::Column::StartedAt.lt(t)),
        None => find,
    }
}

fn execution_json(e: &executions::Model) -> Value {
    json!({
        "invocation_id": e.invocation_id, "function": e.function_name, "deployment_id": e.deployment_id,
        "module_sha256": e.module_sha256, "outcome": e.outcome, "status": e.status, "exit_code": e.exit_code,
        "usage": {"wall_us": e.wall_us, "fuel": e.fuel, "peak_memory_bytes": e.peak_memory_bytes,
            "bytes_in": e.bytes_in, "bytes_out": e.bytes_out},
        "stderr_tail": String::from_utf8_lossy(&e.stderr_tail), "error": e.error, "worker_id": e.worker_id,
        "method": e.method, "path": e.path, "async": e.is_async,
        "headers": serde_json::from_str::<Value>(&e.response_headers).unwrap_or_else(|_| json!([])),
        "started_at": e.started_at, "finished_at": e.finished_at,
    })
}

/// `GET /v1/functions/{name}/executions`: newest first.
pub(super) async fn list(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let q: Filter = req.query()?;
    if !(1..=500).contains(&q.limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let mut find = executions::Entity::find()
        .filter(executions::Column::FunctionId.eq(&f.id))
        .order_by_desc(executions::Column::InvocationId);
    if let Some(o) = &q.outcome {
        find = find.filter(executions::Column::Outcome.eq(o.to_ascii_uppercase()));
    }
    find = started_within(find, instant("since", q.since.as_deref())?, instant("until", q.until.as_deref())?);
    if let Some(after) = &q.after {
        find = find.filter(executions::Column::InvocationId.lt(after));
    }
    let rows = find.limit(q.limit).all(&api.db).await?;
    let next = (rows.len() as u64 == q.limit).then(|| rows.last().map(|e| e.invocation_id.clone())).flatten();
    let items: Vec<_> = rows.iter().map(execution_json).collect();
    Ok(warp::reply::json(&json!({"items": items, "next": next})).into_response())
}

/// `GET /v1/executions/{id}`: one invocation of the caller's.
pub(super) async fn show(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let id = params.first().map(String::as_str).unwrap_or_default();
    let row = executions::Entity::find_by_id(id.to_owned())
        .one(&api.db)
        .await?
        .filter(|e| e.owner_id.as_deref() == Some(caller.user.id.as_str()))
        .ok_or_else(|| ApiError::not_found("execution", id))?;
    Ok(warp::reply::json(&execution_json(&row)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    since: Option<String>,
    until: Option<String>,
}

/// Usage of the executions `find` selects: calls, errors by outcome, wall
/// time percentiles, fuel and bytes.
async fn usage(
    api: &Api,
    find: sea_orm::Select<executions::Entity>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Value, ApiError> {
    let rows: Vec<(String, i64, i64, i64, i64)> = started_within(find, since, until)
        .select_only()
        .column(executions::Column::Outcome)
        .column(executions::Column::WallUs)
        .column(executions::Column::Fuel)
        .column(executions::Column::BytesIn)
        .column(executions::Column::BytesOut)
        .into_tuple()
        .all(&api.db)
        .await?;
    let mut by_outcome = serde_json::Map::new();
    let mut walls: Vec<i64> = Vec::with_capacity(rows.len());
    let (mut fuel, mut bytes_in, mut bytes_out) = (0i64, 0i64, 0i64);
    for (outcome, wall, f, bin, bout) in &rows {
        if outcome != "OK" {
            let n = by_outcome.get(outcome).and_then(Value::as_u64).unwrap_or(0);
            by_outcome.insert(outcome.clone(), json!(n + 1));
        }
        walls.push(*wall);
        fuel = fuel.saturating_add(*f);
        bytes_in = bytes_in.saturating_add(*bin);
        bytes_out = bytes_out.saturating_add(*bout);
    }
    walls.sort_unstable();
    let pct = |p: f64| percentile(&walls, p);
    let errors: u64 = by_outcome.values().filter_map(Value::as_u64).sum();
    Ok(json!({
        "since": since, "until": until, "calls": rows.len(), "errors": errors, "errors_by_outcome": by_outcome,
        "wall_us": {"p50": pct(0.5), "p99": pct(0.99)}, "fuel": fuel, "bytes_in": bytes_in, "bytes_out": bytes_out,
    }))
}

/// `GET /v1/functions/{name}/usage?since=&until=`.
pub(super) async fn function_usage(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let w: Window = req.query()?;
    let (since, until) = (instant("since", w.since.as_deref())?, instant("until", w.until.as_deref())?);
    let find = executions::Entity::find().filter(executions::Column::FunctionId.eq(&f.id));
    let mut body = usage(api, find, since, until).await?;
    body["function"] = json!(f.name);
    Ok(warp::reply::json(&body).into_response())
}

/// `GET /v1/usage?since=&until=`: all of the caller's functions.
pub(super) async fn user_usage(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let w: Window = req.query()?;
    let (since, until) = (instant("since", w.since.as_deref())?, instant("until", w.until.as_deref())?);
    let find = executions::Entity::find().filter(executions::Column::OwnerId.eq(&caller.user.id));
    let mut body = usage(api, find, since, until).await?;
    body["user"] = json!(caller.user.username);
    body["quota"] = crate::quota::standing(&api.db, &caller.user).await?.json();
    Ok(warp::reply::json(&body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    since: Option<String>,
    until: Option<String>,
    /// Number of equal time buckets (default 48, at most 500).
    buckets: Option<u32>,
}

/// One bucket of a series: `[start, end)` with the usage of its calls.
#[derive(Default, Clone)]
struct Bucket {
    calls: u64,
    errors: u64,
    by_outcome: std::collections::BTreeMap<String, u64>,
    walls: Vec<i64>,
    fuel: i64,
}

/// The `p`th percentile of sorted `walls`.
fn percentile(walls: &[i64], p: f64) -> Option<i64> {
    let last = walls.len().checked_sub(1)?;
    walls.get(((last as f64) * p).round() as usize).copied()
}

/// `GET /v1/functions/{name}/usage/series?since=&until=&buckets=`: usage over
/// time in equal buckets (default: the last 24 hours in 48), for charts.
pub(super) async fn function_series(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let q: SeriesQuery = req.query()?;
    let until = instant("until", q.until.as_deref())?.unwrap_or_else(Utc::now);
    let since = instant("since", q.since.as_deref())?.unwrap_or(until - chrono::Duration::hours(24));
    let n = q.buckets.unwrap_or(48);
    if !(1..=500).contains(&n) {
        return Err(ApiError::bad_request("buckets must be between 1 and 500"));
    }
    let span_ms = (until - since).num_milliseconds();
    if span_ms <= 0 {
        // An empty window holds no calls.
        return Ok(warp::reply::json(&json!({
            "function": f.name, "since": since, "until": until, "step_seconds": 0.0, "points": [],
        }))
        .into_response());
    }
    let find = executions::Entity::find().filter(executions::Column::FunctionId.eq(&f.id));
    let rows: Vec<(String, i64, i64, DateTime<Utc>)> = started_within(find, Some(since), Some(until))
        .select_only()
        .column(executions::Column::Outcome)
        .column(executions::Column::WallUs)
        .column(executions::Column::Fuel)
        .column(executions::Column::StartedAt)
        .into_tuple()
        .all(&api.db)
        .await?;
    let step_ms = (span_ms / i64::from(n)).max(1);
    let mut buckets = vec![Bucket::default(); n as usize];
    for (outcome, wall, fuel, started) in rows {
        let i = ((started - since).num_milliseconds() / step_ms).clamp(0, i64::from(n) - 1) as usize;
        let Some(b) = buckets.get_mut(i) else { continue };
        b.calls += 1;
        if outcome != "OK" {
            b.errors += 1;
            *b.by_outcome.entry(outcome).or_default() += 1;
        }
        b.walls.push(wall);
        b.fuel = b.fuel.saturating_add(fuel);
    }
    let points: Vec<Value> = buckets
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            b.walls.sort_unstable();
            let start = since + chrono::Duration::milliseconds(step_ms * i as i64);
            json!({
                "start": start, "calls": b.calls, "errors": b.errors, "errors_by_outcome": b.by_outcome,
                "wall_us": {"p50": percentile(&b.walls, 0.5), "p99": percentile(&b.walls, 0.99)}, "fuel": b.fuel,
            })
        })
        .collect();
    Ok(warp::reply::json(&json!({
        "function": f.name, "since": since, "until": until, "step_seconds": step_ms as f64 / 1000.0, "points": points,
    }))
    .into_response())
}
