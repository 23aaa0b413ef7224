//! The route table and how a request reaches its handler: the router
//! (`matchit`), authentication before any body is read, each route's body
//! limit, and the operations the OpenAPI document is made of.

use std::sync::Arc;

use bytes::Bytes;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use super::{
    Api, Request, audit, deployments, env, executions, functions, invoke, keys, sso, tokens, users, versions,
    write_audit,
};
use crate::auth;
use crate::error::{self, ApiError};

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
        tokens::change_password,
        sso::providers,
        sso::login,
        sso::callback,
        sso::exchange,
        sso::device_start,
        sso::device_token,
        sso::refresh,
        sso::end,
        users::create,
        users::list,
        users::update,
        users::delete,
        users::reset_password,
        users::tokens,
        users::revoke_tokens,
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
        audit::list,
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
        (Method::GET, "/v1/auth/providers", h!(sso::providers)),
        (Method::GET, "/v1/auth/sso/{provider}/login", h!(sso::login)),
        (Method::GET, "/v1/auth/sso/{provider}/callback", h!(sso::callback)),
        (Method::POST, "/v1/auth/sso/exchange", h!(sso::exchange)),
        (Method::POST, "/v1/auth/sso/{provider}/device", h!(sso::device_start)),
        (Method::POST, "/v1/auth/sso/{provider}/device/token", h!(sso::device_token)),
        (Method::POST, "/v1/auth/session", h!(sso::refresh)),
        (Method::DELETE, "/v1/auth/session", h!(sso::end)),
        (Method::POST, "/v1/users", h!(users::create)),
        (Method::GET, "/v1/users", h!(users::list)),
        (Method::PATCH, "/v1/users/{name}", h!(users::update)),
        (Method::DELETE, "/v1/users/{name}", h!(users::delete)),
        (Method::PUT, "/v1/users/{name}/password", h!(users::reset_password)),
        (Method::GET, "/v1/users/{name}/tokens", h!(users::tokens)),
        (Method::DELETE, "/v1/users/{name}/tokens", h!(users::revoke_tokens)),
        (Method::PUT, "/v1/me/password", h!(tokens::change_password)),
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
        (Method::GET, "/v1/audit", h!(audit::list)),
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
pub(crate) const ANONYMOUS: &[(Method, &str)] = &[
    (Method::POST, "/v1/tokens"),
    (Method::GET, "/v1/openapi.json"),
    (Method::GET, "/v1/auth/providers"),
    (Method::GET, "/v1/auth/sso/{provider}/login"),
    (Method::GET, "/v1/auth/sso/{provider}/callback"),
    (Method::POST, "/v1/auth/sso/exchange"),
    (Method::POST, "/v1/auth/sso/{provider}/device"),
    (Method::POST, "/v1/auth/sso/{provider}/device/token"),
    // A browser session's cookie authenticates these.
    (Method::POST, "/v1/auth/session"),
    (Method::DELETE, "/v1/auth/session"),
];

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
                let actor = authenticated.as_ref().map(|c| c.user.clone());
                let target = params.join("/");
                let req = Request { headers, query, body, authenticated, client_ip };
                let resp = handler(api.clone(), params, req).await;
                let status = resp.status();
                metrics.request(method.as_str(), pattern, status.as_u16());
                // A refused change is recorded here (a change that happened,
                // by its handler, with what changed).
                if changes_state(&method, pattern) && !status.is_success() && actor.is_some() {
                    let action = format!("{method} {pattern}");
                    let outcome = status.as_u16().to_string();
                    let detail = serde_json::json!({});
                    write_audit(&api, client_ip, actor.as_ref(), None, &action, &target, detail, &outcome).await;
                }
                resp
            }
        })
        .boxed()
}

/// Whether a request to `pattern` is meant to change state (and so is
/// audited, refused or not): every method but reads, and but trying a
/// function out (a call, recorded as an execution).
fn changes_state(method: &Method, pattern: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && pattern != "/v1/functions/{name}/invoke"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

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
}
