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

mod deployments;
mod env;
mod executions;
mod functions;
mod invoke;
mod keys;
mod tokens;
mod users;
mod versions;

pub(crate) use deployments::{publish_route_with, restore_routes};
pub(crate) use env::reseal;
pub use env::{ResealError, Resealed};
pub(crate) use users::bootstrap_admin;

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde::de::DeserializeOwned;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use crate::auth::{self, Caller, Keys};
use crate::entity::audit_log;
use crate::entity::functions as function_rows;
use crate::error::{self, ApiError};

/// Everything a handler may need.
pub(crate) struct Api {
    pub(crate) db: DatabaseConnection,
    pub(crate) keys: Keys,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) nats: async_nats::Client,
    pub(crate) routes: async_nats::jetstream::kv::Store,
    pub(crate) token_ttl_secs: u64,
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
pub(crate) async fn audit(api: &Api, user_id: Option<&str>, action: &str, target: &str, detail: serde_json::Value) {
    let row = audit_log::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user_id.map(str::to_owned)),
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

/// `GET /v1/openapi.json`: the API described (no token needed).
#[utoipa::path(get, path = "/v1/openapi.json", summary = "This document",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi(api: &Api, _: &[String], _: Request) -> Result<Response, ApiError> {
    // Built at the first request and kept: the maxima it states are fixed
    // at start, and anyone may ask for it.
    let body = api.openapi.get_or_init(|| {
        let bounds = crate::openapi::Bounds {
            max_memory_bytes: u64::from(api.max_memory_pages) * olin::limits::PAGE,
            token_ttl_secs: api.token_ttl_secs,
            max_rate: api.call_limits.rate_cap(),
            max_concurrency: api.call_limits.concurrency_cap(),
        };
        Bytes::from(serde_json::to_vec(&crate::openapi::document(bounds)).unwrap_or_default())
    });
    let mut resp = Response::new(body.clone().into());
    resp.headers_mut()
        .insert(warp::http::header::CONTENT_TYPE, warp::http::HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The operations of the route table, with the request and response types
/// of each (`#[utoipa::path]` on the handlers); `crate::openapi` finishes
/// the document. A test checks it against [`table`].
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        tokens::create,
        tokens::list,
        tokens::revoke,
        tokens::me,
        users::create,
        users::list,
        users::update,
        functions::create,
        functions::list,
        functions::show,
        functions::update,
        functions::delete,
        versions::upload,
        versions::list,
        deployments::create,
        deployments::list,
        deployments::rollback,
        invoke::try_it,
        executions::list,
        executions::function_usage,
        executions::function_series,
        executions::show,
        executions::user_usage,
        env::list,
        env::set,
        env::unset,
        keys::create,
        keys::list,
        keys::revoke,
        openapi,
    ),
    components(schemas(olin_api::ErrorBody))
)]
pub(crate) struct Operations;

/// A handler: method, path parameters and request in; a response out.
type Handler = fn(Arc<Api>, Vec<String>, Request) -> futures::future::BoxFuture<'static, Response>;

/// The route table: method, path pattern (`{x}` is a parameter), handler.
/// The OpenAPI document is checked against it.
pub(crate) fn table() -> Vec<Route> {
    macro_rules! h {
        ($f:path) => {
            |api, params, req| Box::pin(async move { error::respond($f(&api, &params, req).await) })
        };
    }
    vec![
        (Method::POST, "/v1/tokens", h!(tokens::create)),
        (Method::GET, "/v1/tokens", h!(tokens::list)),
        (Method::DELETE, "/v1/tokens/{id}", h!(tokens::revoke)),
        (Method::GET, "/v1/me", h!(tokens::me)),
        (Method::POST, "/v1/users", h!(users::create)),
        (Method::GET, "/v1/users", h!(users::list)),
        (Method::PATCH, "/v1/users/{name}", h!(users::update)),
        (Method::POST, "/v1/functions", h!(functions::create)),
        (Method::GET, "/v1/functions", h!(functions::list)),
        (Method::GET, "/v1/functions/{name}", h!(functions::show)),
        (Method::PATCH, "/v1/functions/{name}", h!(functions::update)),
        (Method::DELETE, "/v1/functions/{name}", h!(functions::delete)),
        (Method::POST, "/v1/functions/{name}/versions", h!(versions::upload)),
        (Method::GET, "/v1/functions/{name}/versions", h!(versions::list)),
        (Method::POST, "/v1/functions/{name}/deployments", h!(deployments::create)),
        (Method::GET, "/v1/functions/{name}/deployments", h!(deployments::list)),
        (Method::POST, "/v1/functions/{name}/rollback", h!(deployments::rollback)),
        (Method::POST, "/v1/functions/{name}/invoke", h!(invoke::try_it)),
        (Method::GET, "/v1/functions/{name}/executions", h!(executions::list)),
        (Method::GET, "/v1/functions/{name}/usage", h!(executions::function_usage)),
        (Method::GET, "/v1/functions/{name}/usage/series", h!(executions::function_series)),
        (Method::GET, "/v1/executions/{id}", h!(executions::show)),
        (Method::GET, "/v1/usage", h!(executions::user_usage)),
        (Method::GET, "/v1/functions/{name}/env", h!(env::list)),
        (Method::PUT, "/v1/functions/{name}/env/{var}", h!(env::set)),
        (Method::DELETE, "/v1/functions/{name}/env/{var}", h!(env::unset)),
        (Method::POST, "/v1/functions/{name}/keys", h!(keys::create)),
        (Method::GET, "/v1/functions/{name}/keys", h!(keys::list)),
        (Method::DELETE, "/v1/functions/{name}/keys/{id}", h!(keys::revoke)),
        (Method::GET, "/v1/openapi.json", h!(openapi)),
    ]
}

/// One route: method, path pattern, handler.
type Route = (Method, &'static str, Handler);

/// The route table by path pattern (`matchit`, the router axum uses), each
/// pattern with its methods.
struct Router(matchit::Router<Vec<Route>>);

/// What a path resolved to.
enum Routed<'a> {
    /// A route: its pattern, handler and (percent-decoded) parameters.
    Found(&'static str, Handler, Vec<String>),
    /// The path exists, but not for this method: the methods it takes.
    Method(Vec<&'a str>),
    /// No such path (or a parameter that is not UTF-8 once decoded).
    None,
}

impl Router {
    fn new(table: Vec<Route>) -> Router {
        let mut by_pattern: Vec<(&'static str, Vec<Route>)> = Vec::new();
        for (method, pattern, handler) in table {
            match by_pattern.iter_mut().find(|(p, _)| *p == pattern) {
                Some((_, methods)) => methods.push((method, pattern, handler)),
                None => by_pattern.push((pattern, vec![(method, pattern, handler)])),
            }
        }
        let mut router = matchit::Router::new();
        for (pattern, methods) in by_pattern {
            // The table is ours and its patterns are distinct: a conflict is
            // a programming error that the route tests catch.
            if let Err(err) = router.insert(pattern, methods) {
                tracing::error!(%err, pattern, "route not added");
            }
        }
        Router(router)
    }

    fn route(&self, method: &Method, path: &str) -> Routed<'_> {
        let Ok(found) = self.0.at(path) else { return Routed::None };
        let Some((_, pattern, handler)) = found.value.iter().find(|(m, _, _)| m == method) else {
            return Routed::Method(found.value.iter().map(|(m, _, _)| m.as_str()).collect());
        };
        let params: Option<Vec<String>> = found
            .params
            .iter()
            .map(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8().ok().map(|s| s.into_owned()))
            .collect();
        match params {
            Some(params) if params.iter().all(|p| !p.is_empty()) => Routed::Found(pattern, *handler, params),
            _ => Routed::None,
        }
    }
}

/// Reads a body of at most `max` bytes (413 beyond, without reading on when
/// `Content-Length` already says so), charged to the server's `budget` of
/// buffered body bytes (503 `busy` past it). Keep the charge as long as the body.
async fn read_body<S, B>(
    headers: &HeaderMap,
    body: S,
    max: u64,
    budget: &olin_serve::BodyBudget,
) -> Result<(Bytes, olin_serve::BodyCharge), ApiError>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    let declared = headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    olin_serve::read_body(body, declared, max, budget).await.map_err(|e| match e {
        olin_serve::ReadError::TooLarge { max } => {
            ApiError::new(error::Code::PayloadTooLarge, format!("the request body is over {max} bytes")).closing()
        }
        olin_serve::ReadError::Busy { .. } => {
            ApiError::new(error::Code::Busy, "the server holds too many request bodies; retry shortly").closing()
        }
        olin_serve::ReadError::Read(e) => ApiError::bad_request(format!("reading the body failed: {e}")),
    })
}

/// The client's address: the last value of `header` (set by the operator's
/// proxy, which appends what it saw) if configured and present, else the
/// connection's peer.
fn client_ip(
    headers: &HeaderMap,
    header: Option<&str>,
    peer: Option<std::net::SocketAddr>,
) -> Option<std::net::IpAddr> {
    let from_proxy = header
        .and_then(|h| headers.get_all(h).iter().next_back())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok());
    from_proxy.or(peer.map(|p| p.ip()))
}

/// Largest JSON body of a route other than an upload or a try-it call: an
/// anonymous client (a login) can make the API read at most this.
pub(crate) const MAX_JSON_BODY: u64 = 64 << 10;

/// Routes any client may call without a token; every other route is
/// authenticated before its body is read.
pub(crate) const ANONYMOUS: &[(Method, &str)] = &[(Method::POST, "/v1/tokens"), (Method::GET, "/v1/openapi.json")];

/// The most body bytes the route `pattern` reads: a module upload's cap
/// (`max_upload`) for uploads, the try-it call's own cap for it, and
/// [`MAX_JSON_BODY`] for everything else.
fn body_limit(pattern: &str, max_upload: u64) -> u64 {
    match pattern {
        "/v1/functions/{name}/versions" => max_upload,
        "/v1/functions/{name}/invoke" => invoke::MAX_REQUEST_BYTES,
        _ => MAX_JSON_BODY,
    }
}

/// Every `/v1` route. A request is matched first, then its caller
/// authenticated (unless the route is anonymous), and only then is its body
/// read, up to the route's own limit ([`body_limit`]; uploads up to
/// `max_upload` bytes): nothing a stranger sends is buffered beyond a small
/// JSON document.
pub(crate) fn routes(api: Arc<Api>, max_upload: u64, budget: olin_serve::BodyBudget) -> BoxedFilter<(Response,)> {
    let router = Arc::new(Router::new(table()));
    warp::path("v1")
        .and(warp::path::full())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::body::stream())
        .and(olin_serve::remote())
        .then(move |path: warp::path::FullPath, method: Method, headers: HeaderMap, query, body, peer| {
            let (api, router, budget) = (api.clone(), router.clone(), budget.clone());
            async move {
                let path = path.as_str();
                let (pattern, handler, params) = match router.route(&method, path) {
                    Routed::Found(pattern, handler, params) => (pattern, handler, params),
                    Routed::Method(allowed) => {
                        let message = format!("{method} is not allowed on {path}; allowed: {}", allowed.join(", "));
                        let mut resp = ApiError::new(error::Code::MethodNotAllowed, message).response();
                        if let Ok(v) = warp::http::HeaderValue::from_str(&allowed.join(", ")) {
                            resp.headers_mut().insert(warp::http::header::ALLOW, v);
                        }
                        return resp;
                    }
                    Routed::None => {
                        let message = format!("no route {path}; see /v1/openapi.json");
                        return ApiError::new(error::Code::NotFound, message).response();
                    }
                };
                let client_ip = client_ip(&headers, api.client_ip_header.as_deref(), peer);
                let metrics = api.metrics.clone();
                let authenticated = if ANONYMOUS.iter().any(|(am, ap)| *am == method && *ap == pattern) {
                    None
                } else {
                    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
                    match auth::authenticate(&api.db, &api.keys, api.clock.now(), header).await {
                        Ok(caller) => Some(caller),
                        Err(e) => return e.response(),
                    }
                };
                let limit = body_limit(pattern, max_upload);
                let (body, _charge) = match read_body(&headers, body, limit, &budget).await {
                    Ok(read) => read,
                    Err(e) => return e.response(),
                };
                let req = Request { headers, query, body, authenticated, client_ip };
                let resp = handler(api, params, req).await;
                metrics.request(method.as_str(), pattern, resp.status().as_u16());
                resp
            }
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_client_address_comes_from_the_proxy_only_when_configured() {
        let peer = Some("10.0.0.9:4000".parse().unwrap());
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_ip(&h, None, peer), Some("10.0.0.9".parse().unwrap()), "not configured: the peer");
        assert_eq!(
            client_ip(&h, Some("x-forwarded-for"), peer),
            Some("203.0.113.7".parse().unwrap()),
            "the proxy's entry"
        );
        assert_eq!(client_ip(&HeaderMap::new(), Some("x-real-ip"), peer), Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn paths_route_to_their_patterns() {
        let router = Router::new(table());
        let found = |method: Method, path: &str| match router.route(&method, path) {
            Routed::Found(pattern, _, params) => Some((pattern, params)),
            _ => None,
        };
        let hello = Some(("/v1/functions/{name}", vec!["hello".to_owned()]));
        assert_eq!(found(Method::GET, "/v1/functions/hello"), hello);
        assert_eq!(found(Method::GET, "/v1/functions/"), None);
        assert_eq!(found(Method::GET, "/v1/functions/a/b"), None);
        assert_eq!(found(Method::GET, "/v1/functions"), Some(("/v1/functions", vec![])));
        assert_eq!(found(Method::DELETE, "/v1/tokens/a%20b"), Some(("/v1/tokens/{id}", vec!["a b".to_owned()])));
        assert_eq!(found(Method::DELETE, "/v1/tokens/%ff"), None, "not UTF-8 once decoded");
        let env = found(Method::PUT, "/v1/functions/f/env/A_B");
        assert_eq!(env, Some(("/v1/functions/{name}/env/{var}", vec!["f".to_owned(), "A_B".to_owned()])));
        match router.route(&Method::PUT, "/v1/functions") {
            Routed::Method(allowed) => assert_eq!(allowed, ["POST", "GET"]),
            _ => panic!("PUT /v1/functions is a 405"),
        }
        assert!(matches!(router.route(&Method::GET, "/v1/nope"), Routed::None));
    }

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
