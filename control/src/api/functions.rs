//! Functions: a DNS-label name (it becomes a host name in gateway host
//! routing), an owner, a visibility. Another user's function is a 404.

use olin_api::{ActiveDeployment, Function, FunctionList, FunctionPatch, LastHour, Limits, NewFunction};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, ModelTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;
use warp::reply::Response;

use std::collections::HashMap;

use super::{Api, Request, audit, audit_fn, created, new_id, next_cursor, no_content, ok, owned_from};
use crate::entity::{deployments, functions, usage_minutes, versions};
use crate::error::ApiError;

/// The active deployment of each of `fs` (two queries whatever their number),
/// by function id.
async fn active_deployments(api: &Api, fs: &[functions::Model]) -> Result<HashMap<String, ActiveDeployment>, ApiError> {
    let ids: Vec<&str> = fs.iter().map(|f| f.id.as_str()).collect();
    let active = deployments::Entity::find()
        .filter(deployments::Column::FunctionId.is_in(ids.clone()))
        .filter(deployments::Column::Active.eq(true))
        .all(&api.db)
        .await?;
    let numbers: HashMap<String, i32> = versions::Entity::find()
        .filter(versions::Column::FunctionId.is_in(ids))
        .all(&api.db)
        .await?
        .into_iter()
        .map(|v| (v.id, v.number))
        .collect();
    Ok(active
        .into_iter()
        .map(|d| {
            let canary = d.canary_version_id.as_ref().and_then(|c| numbers.get(c)).copied();
            let body = ActiveDeployment {
                version: numbers.get(&d.version_id).copied().unwrap_or(0),
                canary_version: canary,
                canary_percent: canary.map(|_| d.canary_percent),
                id: d.id,
            };
            (d.function_id, body)
        })
        .collect())
}

/// The window of a function's call rate.
const RATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Calls and failed calls of each of `fs` in the last [`RATE_WINDOW`] (in
/// whole minutes), by function id: one grouped query over the rollups.
async fn recent_calls(api: &Api, fs: &[functions::Model]) -> Result<HashMap<String, (i64, i64)>, ApiError> {
    use usage_minutes::Column as C;
    let ids: Vec<&str> = fs.iter().map(|f| f.id.as_str()).collect();
    let failed = Expr::case(C::Outcome.ne("OK"), Expr::col(C::Calls)).finally(0);
    let rows: Vec<(String, i64, i64)> = usage_minutes::Entity::find()
        .filter(C::FunctionId.is_in(ids))
        .filter(C::Minute.gte(crate::rollup::minute(chrono::Utc::now() - RATE_WINDOW)))
        .select_only()
        .column(C::FunctionId)
        .column_as(super::executions::sum(C::Calls), "calls")
        .column_as(Expr::expr(Func::sum(failed)).cast_as("BIGINT"), "errors")
        .group_by(C::FunctionId)
        .into_tuple()
        .all(&api.db)
        .await?;
    Ok(rows.into_iter().map(|(id, calls, errors)| (id, (calls, errors))).collect())
}

/// `fs` as the API shows them, each with its active deployment (or null)
/// and its calls in the last hour.
pub(super) async fn functions_json(api: &Api, fs: &[functions::Model]) -> Result<Vec<Function>, ApiError> {
    let mut active = active_deployments(api, fs).await?;
    let recent = recent_calls(api, fs).await?;
    Ok(fs
        .iter()
        .map(|f| {
            let (calls, errors) = recent.get(&f.id).copied().unwrap_or_default();
            function(api, f, active.remove(&f.id), LastHour { calls, errors })
        })
        .collect())
}

/// One function as the API shows it, with its active deployment.
async fn one_function(api: &Api, f: &functions::Model) -> Result<Function, ApiError> {
    functions_json(api, std::slice::from_ref(f))
        .await?
        .pop()
        .ok_or_else(|| ApiError::new(crate::error::Code::Internal, "a function vanished while it was shown"))
}

fn function(api: &Api, f: &functions::Model, deployment: Option<ActiveDeployment>, last_hour: LastHour) -> Function {
    Function {
        id: f.id.clone(),
        name: f.name.clone(),
        visibility: olin_api::Visibility::from_stored(&f.visibility),
        url: format!("{}/f/{}", api.gateway_url.trim_end_matches('/'), f.name),
        limits: Limits {
            fuel: f.fuel,
            memory_bytes: f.memory_bytes,
            wall_ms: f.wall_ms,
            max_output_bytes: f.max_output_bytes,
            host_budget_bytes: f.host_budget_bytes,
        },
        egress_allow: serde_json::from_str(&f.egress_allow).unwrap_or_default(),
        async_max_attempts: f.async_max_attempts,
        rate_limit: api.call_limits.rate(f).map(|r| olin_api::RateLimit { per_second: r.per_second, burst: r.burst }),
        max_concurrency: Some(api.call_limits.concurrency(f)).filter(|n| *n > 0),
        deployment,
        last_hour,
        created_at: f.created_at,
        updated_at: f.updated_at,
    }
}

/// `POST /v1/functions`.
#[utoipa::path(post, path = "/v1/functions", summary = "Create a function",
    request_body = NewFunction, responses((status = 201, body = Function)))]
pub(super) async fn create(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let new: NewFunction = req.json()?;
    if !olin_proto::subject::is_valid_function_name(&new.name) {
        return Err(ApiError::unprocessable(format!(
            "invalid function name {:?}: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-' (it becomes a host name)",
            new.name
        )));
    }
    let row = functions::ActiveModel {
        id: Set(new_id()),
        owner_id: Set(caller.user.id.clone()),
        name: Set(new.name.clone()),
        visibility: Set(new.visibility.as_str().to_owned()),
        egress_allow: Set("[]".to_owned()),
        ..Default::default()
    };
    let f = row.insert(&api.db).await.map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::conflict(format!("the name {:?} is taken; choose another", new.name))
        }
        _ => e.into(),
    })?;
    audit_fn(api, &req, &caller, &f, "function_created", json!({})).await;
    created(&one_function(api, &f).await?)
}

/// `GET /v1/functions`: the caller's functions by name, paginated.
#[utoipa::path(get, path = "/v1/functions", summary = "List your functions, paginated by name",
    params(olin_api::Page), responses((status = 200, body = FunctionList)))]
pub(super) async fn list(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let page = super::checked(req.query()?)?;
    let mut q = functions::Entity::find()
        .filter(functions::Column::OwnerId.eq(&caller.user.id))
        .order_by_asc(functions::Column::Name);
    if let Some(after) = &page.after {
        q = q.filter(functions::Column::Name.gt(after));
    }
    let rows = q.limit(page.limit).all(&api.db).await?;
    let next = next_cursor(rows.len(), page.limit, rows.last().map(|f| f.name.clone()));
    ok(&FunctionList { items: functions_json(api, &rows).await?, next })
}

/// `GET /v1/functions/{name}`.
#[utoipa::path(get, path = "/v1/functions/{name}", summary = "Show a function",
    responses((status = 200, body = Function)))]
pub(super) async fn show(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    ok(&one_function(api, &f).await?)
}

/// `DELETE /v1/functions/{name}`: the route goes first (no new calls), then
/// the rows; modules stay in the store (another function may use them).
#[utoipa::path(delete, path = "/v1/functions/{name}", summary = "Delete a function and its route (modules are kept)",
    responses((status = 204)))]
pub(super) async fn delete(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    api.routes.delete(&f.name).await.map_err(|e| ApiError::unavailable("the route table (NATS)", &e))?;
    let (name, owner) = (f.name.clone(), f.owner_id.clone());
    f.delete(&api.db).await?;
    audit(api, &req, Some(&caller.user), Some(&owner), "function_deleted", &name, json!({})).await;
    no_content()
}

/// A call limit within `0..=cap` (0 clears it: the operator's maximum, if
/// any, applies), as a column value.
fn call_limit(name: &str, v: u32, cap: u32) -> Result<Option<i32>, ApiError> {
    if v > cap {
        return Err(ApiError::unprocessable(format!("{name} {v} is above the server maximum {cap}")));
    }
    Ok(i32::try_from(v).ok().filter(|n| *n > 0))
}

/// A limit within `1..=max`, as a column value (`0` clears it: server default).
fn limit(name: &str, v: Option<u64>, max: u64, current: Option<i64>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(current),
        Some(0) => Ok(None),
        Some(n) if n <= max => Ok(Some(i64::try_from(n).unwrap_or(i64::MAX))),
        Some(n) => Err(ApiError::unprocessable(format!("limits.{name} {n} is above the server maximum {max}"))),
    }
}

/// `PATCH /v1/functions/{name}`: visibility, limits (within the server
/// maxima; 0 = server default), egress allow-list, async attempts, rate
/// and concurrency limits (0 clears them). The
/// route is republished, so the next call runs with the new settings.
#[utoipa::path(patch, path = "/v1/functions/{name}",
    summary = "Change visibility, limits, egress allow-list, async attempts, rate or concurrency limit",
    request_body = FunctionPatch, responses((status = 200, body = Function)))]
pub(super) async fn update(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let patch: FunctionPatch = req.json()?;
    let max = olin::Limits::MAXIMUM;
    let mut row: functions::ActiveModel = f.clone().into();
    if let Some(v) = patch.visibility {
        row.visibility = Set(v.as_str().to_owned());
    }
    if let Some(l) = patch.limits {
        let max_memory = u64::from(api.max_memory_pages) * olin::limits::PAGE;
        row.fuel = Set(limit("fuel", l.fuel, max.fuel, f.fuel)?);
        row.memory_bytes = Set(limit("memory_bytes", l.memory_bytes, max_memory, f.memory_bytes)?);
        row.wall_ms = Set(limit("wall_ms", l.wall_ms, max.wall.as_millis() as u64, f.wall_ms)?);
        row.max_output_bytes =
            Set(limit("max_output_bytes", l.max_output_bytes, max.max_output_bytes, f.max_output_bytes)?);
        row.host_budget_bytes =
            Set(limit("host_budget_bytes", l.host_budget_bytes, max.host_budget_bytes, f.host_budget_bytes)?);
    }
    if let Some(hosts) = patch.egress_allow {
        if hosts.len() > 100 {
            return Err(ApiError::unprocessable("egress_allow takes up to 100 entries"));
        }
        for h in &hosts {
            check_egress_entry(h, api.egress_allow_literals).map_err(ApiError::unprocessable)?;
        }
        row.egress_allow = Set(serde_json::to_string(&hosts).unwrap_or_else(|_| "[]".to_owned()));
    }
    if let Some(n) = patch.async_max_attempts {
        if !(1..=10).contains(&n) {
            return Err(ApiError::unprocessable("async_max_attempts must be between 1 and 10"));
        }
        row.async_max_attempts = Set(Some(n as i32));
    }
    if let Some(rate) = patch.rate_limit {
        let cap = api.call_limits.rate_cap();
        if rate.burst.is_some_and(|b| b == 0 || b > cap) {
            return Err(ApiError::unprocessable(format!("rate_limit.burst must be 1 to {cap}")));
        }
        row.rate_per_second = Set(call_limit("rate_limit.per_second", rate.per_second, cap)?);
        let burst = if rate.per_second == 0 { 0 } else { rate.burst.unwrap_or(rate.per_second) };
        row.rate_burst = Set(call_limit("rate_limit.burst", burst, cap)?);
    }
    if let Some(n) = patch.max_concurrency {
        row.max_concurrency = Set(call_limit("max_concurrency", n, api.call_limits.concurrency_cap())?);
    }
    let f = row.update(&api.db).await?;
    super::deployments::publish_route(api, &f).await?;
    audit_fn(api, &req, &caller, &f, "function_updated", json!({})).await;
    ok(&one_function(api, &f).await?)
}

/// Checks one egress allow-list entry: a host name or `*.domain`, with an
/// optional `:port`. `*` (every host) and IP literals are the operator's to
/// allow (`CONTROL_EGRESS_ALLOW_LITERALS`): a tenant cannot point a function
/// at an address by number, and whatever a name resolves to is vetted by
/// the workers either way.
fn check_egress_entry(entry: &str, literals_allowed: bool) -> Result<(), String> {
    let bad = |why: &str| format!("egress_allow entry {entry:?}: {why}");
    // A bare IPv6 address is no authority (its colons read as ports).
    let host = if entry.parse::<std::net::IpAddr>().is_ok() {
        entry
    } else {
        olin_proto::authority::host_port(entry).map_err(|e| bad(&e.to_string()))?.0
    };
    let literal = host == "*" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok();
    if literal {
        return if literals_allowed {
            Ok(())
        } else {
            Err(bad("`*` and IP addresses are not allowed here (an operator may enable them); name hosts"))
        };
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // A last label that starts with a digit is no host name (`10.0.0`).
    let tld_ok = name.rsplit('.').next().and_then(|l| l.bytes().next()).is_some_and(|c| c.is_ascii_alphabetic());
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) || !tld_ok {
        return Err(bad("not a host name (letters, digits and '-', in dot-separated labels), *.domain, or host:port"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_entries_name_hosts() {
        for ok in ["example.com", "api.example.com:8443", "*.example.com", "localhost", "a-b.c0"] {
            assert_eq!(check_egress_entry(ok, false), Ok(()), "{ok}");
        }
        for literal in ["*", "127.0.0.1", "127.0.0.1:8081", "169.254.169.254", "[::1]", "[::1]:80", "::1"] {
            let err = check_egress_entry(literal, false).unwrap_err();
            assert!(err.contains(literal), "{err}");
            assert_eq!(check_egress_entry(literal, true), Ok(()), "an operator allows {literal}");
        }
        // A numeric last label is no host name (and `10.0.0` is an address to some resolvers).
        for bad in
            ["", "exa mple.com", "http://x", "a@b", "-x.com", "x.com:99999", "*.", "a..b", "x/y", "10.0.0", "x.123"]
        {
            assert!(check_egress_entry(bad, true).is_err(), "{bad:?}");
        }
    }
}
