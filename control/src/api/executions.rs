//! Execution records and usage: per function with filters and paging, one
//! invocation by id (each with its reruns), and usage per function or per
//! user over a window, read from the per-minute rollups (`crate::rollup`),
//! which outlive the records.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use olin_api::{
    Execution, ExecutionFilter, ExecutionList, ExecutionUsage, Percentiles, Rerun, SeriesPoint, SeriesQuery, Usage,
    UsageSeries, Window,
};
use warp::reply::Response;

use super::{Api, Request, next_cursor, ok, owned_from};
use crate::entity::{execution_attempts, executions, usage_minutes};
use crate::error::ApiError;
use crate::rollup::{self, Histogram};

pub(super) fn instant(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::bad_request(format!("{name} must be an RFC 3339 time ({e})")))
    })
    .transpose()
}

/// `find` narrowed to calls that started in `[since, until)`; a missing end
/// is open.
fn started_within(
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

fn execution_json(e: executions::Model, mut reruns: Vec<Rerun>) -> Execution {
    reruns.sort_by_key(|r| r.started_at);
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
        attempts: u32::try_from(reruns.len()).unwrap_or(u32::MAX).saturating_add(1),
        reruns,
    }
}

/// `rows` as the API shows them, each with its reruns (one query).
async fn executions_json(api: &Api, rows: Vec<executions::Model>) -> Result<Vec<Execution>, ApiError> {
    let ids: Vec<&str> = rows.iter().map(|e| e.invocation_id.as_str()).collect();
    let mut reruns: HashMap<String, Vec<Rerun>> = HashMap::new();
    if !ids.is_empty() {
        let attempts = execution_attempts::Entity::find()
            .filter(execution_attempts::Column::InvocationId.is_in(ids))
            .all(&api.db)
            .await?;
        for a in attempts {
            reruns.entry(a.invocation_id).or_default().push(Rerun {
                worker_id: a.worker_id,
                outcome: a.outcome,
                status: a.status,
                error: a.error,
                wall_us: a.wall_us,
                fuel: a.fuel,
                started_at: a.started_at,
                finished_at: a.finished_at,
            });
        }
    }
    Ok(rows
        .into_iter()
        .map(|e| {
            let r = reruns.remove(&e.invocation_id).unwrap_or_default();
            execution_json(e, r)
        })
        .collect())
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
    ok(&ExecutionList { items: executions_json(api, rows).await?, next })
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
    let shown = executions_json(api, vec![row]).await?.pop();
    ok(&shown.ok_or_else(|| ApiError::not_found("execution", id))?)
}

/// Whose rollups a usage query reads.
pub(super) enum Of<'a> {
    /// One function, by id.
    Function(&'a str),
    /// Every function of one user, by id.
    Owner(&'a str),
}

/// The rollup rows of `of` whose minute is in `[since, until)`, the window
/// widened to whole minutes; an open end is open.
pub(super) fn minutes_within(
    of: Of<'_>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> sea_orm::Select<usage_minutes::Entity> {
    let find = match of {
        Of::Function(id) => usage_minutes::Entity::find().filter(usage_minutes::Column::FunctionId.eq(id)),
        Of::Owner(id) => usage_minutes::Entity::find().filter(usage_minutes::Column::OwnerId.eq(id)),
    };
    let find = match since {
        Some(t) => find.filter(usage_minutes::Column::Minute.gte(rollup::minute(t))),
        None => find,
    };
    match until {
        Some(t) => find.filter(usage_minutes::Column::Minute.lt(t)),
        None => find,
    }
}

/// A sum that is a BIGINT on both databases (Postgres sums BIGINTs into
/// NUMERIC).
pub(super) fn sum(column: usage_minutes::Column) -> SimpleExpr {
    ExprTrait::cast_as(Expr::expr(Func::sum(Expr::col(column))), "BIGINT")
}

/// What rollup rows add up to.
#[derive(Default, Clone)]
struct Totals {
    calls: u64,
    reruns: u64,
    errors: u64,
    by_outcome: BTreeMap<String, u64>,
    walls: Histogram,
    fuel: i64,
    bytes_in: i64,
    bytes_out: i64,
}

impl Totals {
    fn add(&mut self, outcome: String, bucket: i32, calls: i64, reruns: i64, fuel: i64, bytes: (i64, i64)) {
        let (calls, reruns) = (u64::try_from(calls).unwrap_or(0), u64::try_from(reruns).unwrap_or(0));
        self.calls += calls;
        self.reruns += reruns;
        if outcome != "OK" && calls > 0 {
            self.errors += calls;
            *self.by_outcome.entry(outcome).or_default() += calls;
        }
        self.walls.add(bucket, calls + reruns);
        self.fuel = self.fuel.saturating_add(fuel);
        self.bytes_in = self.bytes_in.saturating_add(bytes.0);
        self.bytes_out = self.bytes_out.saturating_add(bytes.1);
    }

    fn percentiles(&self) -> Percentiles {
        Percentiles { p50: self.walls.percentile(0.5), p99: self.walls.percentile(0.99) }
    }
}

/// Usage of `of` over a window, from the rollups: one grouped query.
async fn usage(
    api: &Api,
    of: Of<'_>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Usage, ApiError> {
    use usage_minutes::Column as C;
    let rows: Vec<(String, i32, i64, i64, i64, i64, i64)> = minutes_within(of, since, until)
        .select_only()
        .column(C::Outcome)
        .column(C::WallBucket)
        .column_as(sum(C::Calls), "calls")
        .column_as(sum(C::Reruns), "reruns")
        .column_as(sum(C::Fuel), "fuel")
        .column_as(sum(C::BytesIn), "bytes_in")
        .column_as(sum(C::BytesOut), "bytes_out")
        .group_by(C::Outcome)
        .group_by(C::WallBucket)
        .into_tuple()
        .all(&api.db)
        .await?;
    let mut t = Totals::default();
    for (outcome, bucket, calls, reruns, fuel, bytes_in, bytes_out) in rows {
        t.add(outcome, bucket, calls, reruns, fuel, (bytes_in, bytes_out));
    }
    Ok(Usage {
        function: None,
        user: None,
        since,
        until,
        calls: t.calls,
        reruns: t.reruns,
        errors: t.errors,
        wall_us: t.percentiles(),
        errors_by_outcome: t.by_outcome,
        fuel: t.fuel,
        bytes_in: t.bytes_in,
        bytes_out: t.bytes_out,
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
    ok(&Usage { function: Some(f.name.clone()), ..usage(api, Of::Function(&f.id), since, until).await? })
}

/// `GET /v1/usage?since=&until=`: all of the caller's functions.
#[utoipa::path(get, path = "/v1/usage", summary = "Usage of all your functions over since..until",
    params(Window), responses((status = 200, body = Usage)))]
pub(super) async fn user_usage(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let w: Window = req.query()?;
    let (since, until) = (instant("since", w.since.as_deref())?, instant("until", w.until.as_deref())?);
    let quota = crate::quota::standing(&api.db, &caller.user).await?.shown();
    let used = usage(api, Of::Owner(&caller.user.id), since, until).await?;
    ok(&Usage { user: Some(caller.user.username.clone()), quota: Some(quota), ..used })
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
    use usage_minutes::Column as C;
    let rows: Vec<(DateTime<Utc>, String, i32, i64, i64, i64)> =
        minutes_within(Of::Function(&f.id), Some(since), Some(until))
            .select_only()
            .column(C::Minute)
            .column(C::Outcome)
            .column(C::WallBucket)
            .column(C::Calls)
            .column(C::Reruns)
            .column(C::Fuel)
            .into_tuple()
            .all(&api.db)
            .await?;
    let step_ms = Ord::max(span_ms / i64::from(n), 1);
    let mut buckets = vec![Totals::default(); n as usize];
    // Each minute counts in the bucket its start falls in (the first one
    // if it started before the window).
    for (minute, outcome, bucket, calls, reruns, fuel) in rows {
        let i = ((minute - since).num_milliseconds() / step_ms).clamp(0, i64::from(n) - 1) as usize;
        let Some(b) = buckets.get_mut(i) else { continue };
        b.add(outcome, bucket, calls, reruns, fuel, (0, 0));
    }
    let points = buckets
        .into_iter()
        .enumerate()
        .map(|(i, b)| SeriesPoint {
            start: since + chrono::Duration::milliseconds(step_ms * i as i64),
            calls: b.calls,
            reruns: b.reruns,
            errors: b.errors,
            wall_us: b.percentiles(),
            errors_by_outcome: b.by_outcome,
            fuel: b.fuel,
        })
        .collect();
    ok(&UsageSeries { function: f.name, since, until, step_seconds: step_ms as f64 / 1000.0, points })
}
