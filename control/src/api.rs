//! The `/v1` routes. Each handler is a plain async function from a
//! [`Request`] to `Result<impl Reply, ApiError>`; warp only matches paths
//! and methods, so every failure, including authentication, takes the one
//! error shape (`error.rs`).
//!
//! # Layout
//! - `tokens`: log in (`POST /v1/tokens`), list and revoke tokens, `GET /v1/me`.
//! - `users`: admin-only user management.
//! - `functions`: create, list, show, delete.
//! - `versions`: upload (validated) and list.
//! - `deployments`: deploy, canary split, rollback, history; route publishing.
//! - `keys`: invoke keys of private functions.
//! - `env`: the function's environment values (secrets write-only).
//! - `executions`: execution records and usage.
//! - `audit`: the audit log, read (`GET /v1/audit`).
//! - `sso`: signing in through OpenID providers, and browser sessions.
//! - `routes`: the route table, the router, authentication before bodies
//!   are read, and the operations of the OpenAPI document.

mod audit;
mod deployments;
mod env;
mod executions;
mod functions;
mod invoke;
mod keys;
mod routes;
mod sso;
mod tokens;
mod users;
mod versions;

pub(crate) use deployments::{publish_route_with, restore_routes};
pub(crate) use env::reseal;
pub use env::{ResealError, Resealed};
#[cfg(test)]
pub(crate) use routes::table;
pub(crate) use routes::{ANONYMOUS, Operations, routes};
pub(crate) use users::bootstrap_admin;

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde::de::DeserializeOwned;
use warp::http::HeaderMap;
use warp::reply::Response;

use crate::auth::{self, Caller, Keys};
use crate::entity::audit_log;
use crate::entity::functions as function_rows;
use crate::entity::users as user_rows;
use crate::error::ApiError;

/// Everything a handler may need.
pub(crate) struct Api {
    pub(crate) db: DatabaseConnection,
    pub(crate) keys: Keys,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) nats: async_nats::Client,
    pub(crate) routes: async_nats::jetstream::kv::Store,
    pub(crate) token_ttl_secs: u64,
    /// The OpenID providers users may sign in with.
    pub(crate) sso: crate::sso::Sso,
    /// Whether username and password logins are on.
    pub(crate) local_passwords: bool,
    /// How long browser sessions and their tokens last.
    pub(crate) sessions: SessionTtl,
    /// How long a deploy waits for a worker to have its module ready.
    pub(crate) prewarm_wait: std::time::Duration,
    pub(crate) max_module_bytes: u64,
    pub(crate) max_memory_pages: u32,
    pub(crate) gateway_url: String,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// For calls to the gateway on a user's behalf (`invoke`).
    pub(crate) http: reqwest::Client,
    /// Failed logins by name and by address.
    pub(crate) logins: crate::throttle::LoginThrottle,
    /// Where password hashes run.
    pub(crate) hashes: crate::throttle::HashPool,
    /// A header the operator's proxy sets to the client's address, if any.
    pub(crate) client_ip_header: Option<String>,
    /// Whether egress allow-lists may hold `*` and IP literals.
    pub(crate) egress_allow_literals: bool,
    /// The keys secret values are sealed under, if configured.
    pub(crate) secrets: Option<olin_proto::sealed::Keyring>,
    /// The operator's maxima of functions' call limits.
    pub(crate) call_limits: crate::quota::CallLimitMaxima,
    /// What time it is, for tokens.
    pub(crate) clock: auth::Clock,
    /// The OpenAPI document, once built.
    pub(crate) openapi: std::sync::OnceLock<Bytes>,
}

/// How long browser sessions and the tokens they buy last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTtl {
    /// The session (its refresh cookie).
    pub(crate) session: std::time::Duration,
    /// Each token it buys.
    pub(crate) token: std::time::Duration,
}

/// One request as handlers see it.
pub(crate) struct Request {
    pub(crate) headers: HeaderMap,
    pub(crate) query: String,
    pub(crate) body: Bytes,
    /// The caller, authenticated before the body was read (every route
    /// but logging in and the API document).
    pub(crate) authenticated: Option<Caller>,
    /// The client's address: the connection's peer, or what the operator's
    /// proxy says in its header (`CONTROL_CLIENT_IP_HEADER`).
    pub(crate) client_ip: Option<std::net::IpAddr>,
}

impl Request {
    /// The authenticated caller.
    pub(crate) async fn caller(&self, api: &Api) -> Result<Caller, ApiError> {
        if let Some(caller) = &self.authenticated {
            return Ok(caller.clone());
        }
        let header = self.headers.get("authorization").and_then(|v| v.to_str().ok());
        auth::authenticate(&api.db, &api.keys, api.clock.now(), header).await
    }

    /// The body as a JSON object of type `T` (unknown fields are errors).
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("a JSON body is required"));
        }
        let invalid = |e: serde_json::Error| ApiError::bad_request(format!("invalid JSON body: {e}"));
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&self.body).map_err(invalid)?;
        map.values_mut().for_each(integral);
        serde_json::from_value(serde_json::Value::Object(map)).map_err(invalid)
    }

    /// The query string as `T`.
    pub(crate) fn query<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_query(&self.query)
    }
}

/// The caller's function `name`, or 404 (also for another user's).
pub(crate) async fn owned(api: &Api, caller: &Caller, name: &str) -> Result<function_rows::Model, ApiError> {
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    function_rows::Entity::find()
        .filter(function_rows::Column::Name.eq(name))
        .one(&api.db)
        .await?
        .filter(|f| f.owner_id == caller.user.id)
        .ok_or_else(|| ApiError::not_found("function", name))
}

/// The caller of `req` and their function named by the first path
/// parameter, or 401/404.
pub(crate) async fn owned_from(
    api: &Api,
    params: &[String],
    req: &Request,
) -> Result<(Caller, function_rows::Model), ApiError> {
    let caller = req.caller(api).await?;
    let f = owned(api, &caller, params.first().map(String::as_str).unwrap_or_default()).await?;
    Ok((caller, f))
}

/// Writes every whole number in `v` as an integer: JSON Schema (and the API
/// document) counts `207.0` as the integer 207, while serde would refuse it
/// where an integer field expects one.
fn integral(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            // Only where the value is exact in a double (|n| < 2^53).
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral),
        Value::Object(map) => map.values_mut().for_each(integral),
        _ => {}
    }
}

/// Parses a query string into `T` with the standard form decoder: every
/// value is text to it, so `after=123` stays the name `"123"` and numbers
/// are parsed only where `T` asks for one.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query).map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
}

/// Records an action in `audit_log`. A failure is logged, not fatal: the
/// action itself has happened.
pub(crate) async fn audit(
    api: &Api,
    req: &Request,
    actor: Option<&user_rows::Model>,
    owner: Option<&str>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    write_audit(api, req.client_ip, actor, owner, action, target, detail, "ok").await;
}

/// Records an action of `caller` on their function `f`.
pub(crate) async fn audit_fn(
    api: &Api,
    req: &Request,
    caller: &Caller,
    f: &function_rows::Model,
    action: &str,
    detail: serde_json::Value,
) {
    audit(api, req, Some(&caller.user), Some(&f.owner_id), action, &f.name, detail).await;
}

/// Writes one audit row; a failure is logged, never the caller's error.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_audit(
    api: &Api,
    source: Option<std::net::IpAddr>,
    actor: Option<&user_rows::Model>,
    owner: Option<&str>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    outcome: &str,
) {
    let row = audit_log::ActiveModel {
        id: Set(new_id()),
        user_id: Set(actor.map(|u| u.id.clone())),
        actor: Set(actor.map(|u| u.username.clone())),
        owner_id: Set(owner.map(str::to_owned)),
        source: Set(source.map(|ip| ip.to_string())),
        outcome: Set(outcome.to_owned()),
        action: Set(action.to_owned()),
        target: Set(target.to_owned()),
        detail: Set(detail.to_string()),
        ..Default::default()
    };
    if let Err(err) = row.insert(&api.db).await {
        tracing::error!(%err, action, target, "audit row not written");
    }
}

/// A fresh time-ordered id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `page` if its limit is within 1..=200.
pub(crate) fn checked(page: olin_api::Page) -> Result<olin_api::Page, ApiError> {
    if !(1..=200).contains(&page.limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 200"));
    }
    Ok(page)
}

/// The `next` cursor of a page of `len` rows asked for with `limit`: the
/// last row's key when the page is full (there may be more).
pub(crate) fn next_cursor(len: usize, limit: u64, last: Option<String>) -> Option<String> {
    if len as u64 == limit { last } else { None }
}

/// A 200 answer with `body` as JSON.
pub(crate) fn ok<T: serde::Serialize>(body: &T) -> Result<Response, ApiError> {
    use warp::Reply as _;
    Ok(warp::reply::json(body).into_response())
}

/// A 201 answer with `body` as JSON.
pub(crate) fn created<T: serde::Serialize>(body: &T) -> Result<Response, ApiError> {
    use warp::Reply as _;
    Ok(warp::reply::with_status(warp::reply::json(body), warp::http::StatusCode::CREATED).into_response())
}

/// A 204 answer.
pub(crate) fn no_content() -> Result<Response, ApiError> {
    use warp::Reply as _;
    Ok(warp::http::StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let mut v = serde_json::json!({"a": 207.0, "b": [1.5, -3.0], "c": {"d": 1e300}, "e": 7});
        integral(&mut v);
        assert_eq!(v, serde_json::json!({"a": 207, "b": [1.5, -3], "c": {"d": 1e300}, "e": 7}));
    }

    #[test]
    fn queries_parse() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Q {
            limit: u64,
            after: Option<String>,
        }
        let q: Q = parse_query("limit=5&after=a%2Db").unwrap();
        assert_eq!((q.limit, q.after.as_deref()), (5, Some("a-b")));
        let q: Q = parse_query("limit=5&after=123").unwrap();
        assert_eq!(q.after.as_deref(), Some("123"), "a digits-only name stays a name");
        assert!(parse_query::<Q>("limit=5&bogus=1").is_err());
        assert!(parse_query::<Q>("limit=five").is_err());
    }
}
