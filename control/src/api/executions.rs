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

fn execution_json(e: &executions::Model) -> Value {
    json!({
        "invocation_id": e.invocation_id, "function": e.function_name, "deployment_id": e.deployment_id,
        "module_sha256": e.module_sha256, "outcome": e.outcome, "status": e.status, "exit_code": e.exit_code,
        "usage": {"wall_us": e.wall_us, "fuel": e.fuel, "peak_memory_bytes": e.peak_memory_bytes,
            "bytes_in": e.bytes_in, "bytes_out": e.bytes_out},
        "stderr_tail": String::from_utf8_lossy(&e.stderr_tail), "error": e.error, "worker_id": e.worker_id,
        "method": e.method, "path": e.path, "async": e.is_async,
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
    if let Some(t) = instant("since", q.since.as_deref())? {
        find = find.filter(executions::Column::StartedAt.gte(t));
    }
    if let Some(t) = instant("until", q.until.as_deref())? {
        find = find.filter(executions::Column::StartedAt.lt(t));
    }
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
    let mut find = find;
    if let Some(t) = since {
        find = find.filter(executions::Column::StartedAt.gte(t));
    }
    if let Some(t) = until {
        find = find.filter(executions::Column::StartedAt.lt(t));
    }
    let rows: Vec<(String, i64, i64, i64, i64)> = find
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
    let pct = |p: f64| -> Option<i64> {
        let last = walls.len().checked_sub(1)?;
        walls.get(((last as f64) * p).round() as usize).copied()
    };
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
    Ok(warp::reply::json(&body).into_response())
}
