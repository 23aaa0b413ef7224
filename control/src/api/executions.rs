//! Execution records and usage: per function with filters and paging, one
//! invocation by id, and usage per function or per user over a window.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::BTreeMap;

use olin_api::{
    Execution, ExecutionFilter, ExecutionList, ExecutionUsage, Percentiles, SeriesPoint, SeriesQuery, Usage,
    UsageSeries, Window,
};
use warp::reply::Response;

use super::{Api, Request, next_cursor, ok, owned_from};
use crate::entity::executions;
use crate::error::ApiError;

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

fn execution_json(e: executions::Model) -> Execution {
    Execution {
        usage: ExecutionUsage {
            wall_us: e.wall_us,
            fuel: e.fuel,
            peak_memory_bytes: e.peak_memory_bytes,
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
        },
        stderr_tail: String::from_utf8_lossy(&e.stderr_tail).into_owned(),
        headers: serde_json::from_str(&e.response_headers).unwrap_or_default(),
        invocation_id: e.invocation_id,
        function: e.function_name,
        deployment_id: e.deployment_id,
        module_sha256: e.module_sha256,
        outcome: e.outcome,
        status: e.status,
        exit_code: e.exit_code,
        error: e.error,
        worker_id: e.worker_id,
        method: e.method,
        path: e.path,
        is_async: e.is_async,
        started_at: e.started_at,
        finished_at: e.finished_at,
    }
}

/// `GET /v1/functions/{name}/executions`: newest first.
#[utoipa::path(get, path = "/v1/functions/{name}/executions",
    summary = "Executions, newest first; filters outcome, since, until; paging limit, after",
    params(ExecutionFilter), responses((status = 200, body = ExecutionList)))]
pub(super) async fn list(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let q: ExecutionFilter = req.query()?;
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
    let next = next_cursor(rows.len(), q.limit, rows.last().map(|e| e.invocation_id.clone()));
    ok(&ExecutionList { items: rows.into_iter().map(execution_json).collect(), next })
}

/// `GET /v1/executions/{id}`: one invocation of the caller's.
#[utoipa::path(get, path = "/v1/executions/{id}", summary = "One invocation by id",
    responses((status = 200, body = Execution)))]
pub(super) async fn show(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let id = params.first().map(String::as_str).unwrap_or_default();
    let row = executions::Entity::find_by_id(id.to_owned())
        .one(&api.db)
        .await?
        .filter(|e| e.owner_id.as_deref() == Some(caller.user.id.as_str()))
        .ok_or_else(|| ApiError::not_found("execution", id))?;
    ok(&execution_json(row))
}

/// Usage of the executions `find` selects: calls, errors by outcome, wall
/// time percentiles, fuel and bytes.
async fn usage(
    api: &Api,
    find: sea_orm::Select<executions::Entity>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Usage, ApiError> {
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
    let mut by_outcome = BTreeMap::<String, u64>::new();
    let mut walls: Vec<i64> = Vec::with_capacity(rows.len());
    let (mut fuel, mut bytes_in, mut bytes_out) = (0i64, 0i64, 0i64);
    for (outcome, wall, f, bin, bout) in &rows {
        if outcome != "OK" {
            *by_outcome.entry(outcome.clone()).or_default() += 1;
        }
        walls.push(*wall);
        fuel = fuel.saturating_add(*f);
        bytes_in = bytes_in.saturating_add(*bin);
        bytes_out = bytes_out.saturating_add(*bout);
    }
    walls.sort_unstable();
    Ok(Usage {
        function: None,
        user: None,
        since,
        until,
        calls: rows.len() as u64,
        errors: by_outcome.values().sum(),
        errors_by_outcome: by_outcome,
        wall_us: percentiles(&walls),
        fuel,
        bytes_in,
        bytes_out,
        quota: None,
    })
}

/// `GET /v1/functions/{name}/usage?since=&until=`.
#[utoipa::path(get, path = "/v1/functions/{name}/usage", summary = "Usage of a function over since..until",
    params(Window), responses((status = 200, body = Usage)))]
pub(super) async fn function_usage(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let w: Window = req.query()?;
    let (since, until) = (instant("since", w.since.as_deref())?, instant("until", w.until.as_deref())?);
    let find = executions::Entity::find().filter(executions::Column::FunctionId.eq(&f.id));
    ok(&Usage { function: Some(f.name), ..usage(api, find, since, until).await? })
}

/// `GET /v1/usage?since=&until=`: all of the caller's functions.
#[utoipa::path(get, path = "/v1/usage", summary = "Usage of all your functions over since..until",
    params(Window), responses((status = 200, body = Usage)))]
pub(super) async fn user_usage(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let w: Window = req.query()?;
    let (since, until) = (instant("since", w.since.as_deref())?, instant("until", w.until.as_deref())?);
    let find = executions::Entity::find().filter(executions::Column::OwnerId.eq(&caller.user.id));
    let quota = crate::quota::standing(&api.db, &caller.user).await?.shown();
    ok(&Usage { user: Some(caller.user.username.clone()), quota: Some(quota), ..usage(api, find, since, until).await? })
}

/// One bucket of a series: `[start, end)` with the usage of its calls.
#[derive(Default, Clone)]
struct Bucket {
    calls: u64,
    errors: u64,
    by_outcome: BTreeMap<String, u64>,
    walls: Vec<i64>,
    fuel: i64,
}

/// The `p`th percentile of sorted `walls`.
fn percentile(walls: &[i64], p: f64) -> Option<i64> {
    let last = walls.len().checked_sub(1)?;
    walls.get(((last as f64) * p).round() as usize).copied()
}

/// The median and 99th percentile of sorted `walls`.
fn percentiles(walls: &[i64]) -> Percentiles {
    Percentiles { p50: percentile(walls, 0.5), p99: percentile(walls, 0.99) }
}

/// `GET /v1/functions/{name}/usage/series?since=&until=&buckets=`: usage over
/// time in equal buckets (default: the last 24 hours in 48), for charts.
#[utoipa::path(get, path = "/v1/functions/{name}/usage/series",
    summary = "Usage of a function over time in equal buckets (since, until: default the last 24 hours; buckets: default 48)",
    params(SeriesQuery), responses((status = 200, body = UsageSeries)))]
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
        return ok(&UsageSeries { function: f.name, since, until, step_seconds: 0.0, points: Vec::new() });
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
    let points = buckets
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            b.walls.sort_unstable();
            SeriesPoint {
                start: since + chrono::Duration::milliseconds(step_ms * i as i64),
                calls: b.calls,
                errors: b.errors,
                errors_by_outcome: b.by_outcome,
                wall_us: percentiles(&b.walls),
                fuel: b.fuel,
            }
        })
        .collect();
    ok(&UsageSeries { function: f.name, since, until, step_seconds: step_ms as f64 / 1000.0, points })
}
