//! The HTTP face: `ANY /f/{function}[/{path..}]`, `/healthz`, `/readyz`.
//! One catch-all warp filter hands every request to [`handle`], which keeps
//! routing, limits and error shapes in plain code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use olin_proto::Message as _;
use olin_proto::admission::{self, AdmitError};
use olin_proto::net_policy::AddressPolicy;
use olin_proto::v1::{
    AsyncResult, Header, InvocationRequest, InvocationResponse, Limits, Outcome, Refusal, RouteRecord,
};
use olin_proto::{header_policy, subject};
use olin_serve::ReadError;
use tracing::{Instrument as _, info, warn};
use warp::reply::Response;

use crate::Shared;
use crate::idempotency;
use crate::invoke::{self, InvokeError};

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// A function call: the function, the path after its prefix, whether
    /// it was asked for under `/async/f/`, and whether the function is
    /// served on a host of its own (`{name}.{base_domain}`): only then is
    /// the origin its alone, so only then may it set cookies.
    Function {
        name: &'a str,
        path: &'a str,
        r#async: bool,
        own_origin: bool,
    },
    /// The result of an async call.
    AsyncResult {
        id: &'a str,
    },
    NotFound,
}

/// Routes by host (`{function}.{base_domain}`, the whole path is the
/// function's) or by path (`/f/{function}/...`).
fn target<'a>(path: &'a str, host: Option<&'a str>, base_domain: Option<&str>) -> Target<'a> {
    if let (Some(host), Some(base)) = (host, base_domain) {
        let host =
            host.rsplit_once(':').map_or(host, |(h, p)| if p.bytes().all(|c| c.is_ascii_digit()) { h } else { host });
        if let Some(label) = host.strip_suffix(base).and_then(|h| h.strip_suffix('.'))
            && !label.is_empty()
            && !label.contains('.')
        {
            return Target::Function { name: label, path, r#async: false, own_origin: true };
        }
    }
    if let Some(id) = path.strip_prefix("/async/results/") {
        return Target::AsyncResult { id };
    }
    let (rest, r#async) = match (path.strip_prefix("/f/"), path.strip_prefix("/async/f/")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return Target::NotFound,
    };
    match rest.find('/') {
        Some(i) => Target::Function { name: &rest[..i], path: &rest[i..], r#async, own_origin: false },
        None => Target::Function { name: rest, path: "", r#async, own_origin: false },
    }
}

/// The admin listener: `/healthz`, `/readyz`, `/metrics`, nothing else.
pub(crate) async fn admin(gw: Arc<Shared>, path: warp::path::FullPath) -> Response {
    match path.as_str() {
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" => match gw.readiness().await {
            Ok(()) => text(StatusCode::OK, "ready"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
        },
        "/metrics" => {
            let mut r = text(StatusCode::OK, &gw.metrics.render());
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(olin_telemetry::metrics::CONTENT_TYPE));
            r
        }
        _ => {
            error(StatusCode::NOT_FOUND, "NOT_FOUND", "the admin listener serves /healthz, /readyz and /metrics", None)
        }
    }
}

/// Answers one request and records it in the metrics.
pub(crate) async fn handle(
    gw: Arc<Shared>,
    method: Method,
    path: warp::path::FullPath,
    query: Option<String>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = InFlight::enter(&gw.metrics);
    let mut label = String::new();
    let resp = answer(&gw, method, path.as_str(), query, headers, remote, body, &mut label).await;
    gw.metrics.observe(&label, resp.status().as_u16(), started.elapsed());
    resp
}

/// Counts a request in `olin_gateway_in_flight` until it is dropped: when
/// it is answered, or when its client goes away and the server drops the
/// request's future before it is.
struct InFlight<'a>(&'a crate::metrics::Metrics);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a crate::metrics::Metrics) -> Self {
        metrics.in_flight.inc();
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    gw: &Arc<Shared>,
    method: Method,
    path: &str,
    query: Option<String>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    label: &mut String,
) -> Response {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    let (function, fn_path, async_path, own_origin) = match target(path, host, gw.config.base_domain.as_deref()) {
        Target::NotFound => {
            return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route; functions are under /f/<name>/", None);
        }
        Target::AsyncResult { id } => return async_result(gw, id).await,
        Target::Function { name, path, r#async, own_origin } => (name, path, r#async, own_origin),
    };
    // A NUL cannot be in a CGI variable (PATH_INFO): refuse it before anything runs.
    if fn_path.contains("%00") {
        return error(StatusCode::BAD_REQUEST, "BAD_PATH", "the path contains an encoded NUL (%00)", None);
    }
    // Owned: the name may come from the Host header, and the headers change below.
    let (function, fn_path) = (function.to_owned(), fn_path.to_owned());
    let function = function.as_str();
    let Some(route) = gw.routes.get(function).filter(|_| subject::is_valid_function_name(function)) else {
        return error(
            StatusCode::NOT_FOUND,
            "FUNCTION_NOT_FOUND",
            &format!("no function named {function:?} is deployed"),
            None,
        );
    };
    label.push_str(function);
    let mut headers = headers;
    let invoke_key = match check_invoke_key(&route, &mut headers) {
        Ok(hash) => hash,
        Err(why) => {
            let mut r = error(StatusCode::UNAUTHORIZED, "INVOKE_KEY_REQUIRED", why, None);
            r.headers_mut().insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    };
    let idempotency_key = match idempotency::requested(&headers) {
        Ok(key) => key.map(|k| idempotency::result_key(function, invoke_key.as_deref(), k)),
        Err(why) => return error(StatusCode::BAD_REQUEST, "BAD_IDEMPOTENCY_KEY", why, None),
    };
    for name in header_policy::WITHHELD_REQUEST_HEADERS {
        headers.remove(*name);
    }
    // Refused, and rate-limited, before the body is read: nothing of a
    // refused call is read, held or queued.
    if let Some(refusal) = &route.refusal {
        return unread(refused(refusal));
    }
    if (async_path || prefers_async(&headers)) && gw.results_room.is_full() {
        let why = "async results storage is full; retry later, or call synchronously";
        // Results leave the bucket as their TTL ends: not within a second.
        return unread(retry_later(StatusCode::SERVICE_UNAVAILABLE, "RESULTS_FULL", why, 5));
    }
    if let Some(rate) = route.rate_limit.as_ref().filter(|r| r.per_second > 0)
        && let Err(err) = admission::take_token(&gw.limits_kv, function, rate).await
    {
        return unread(not_admitted(&err));
    }
    let header_bytes: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if header_bytes as u64 > gw.config.max_header_bytes {
        return error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            &format!("the request headers exceed {} bytes", gw.config.max_header_bytes),
            None,
        );
    }
    let declared = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gw.config.max_body_bytes) {
        return unread(too_large(gw.config.max_body_bytes));
    }
    let Some(target) = pick_target(&route) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "NO_TARGET", "the function has no deployed version", None);
    };
    if gw.presence.live() == 0 && gw.presence.refresh(&gw.workers_kv).await == 0 {
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, "NO_WORKERS", "no worker is running; retry later", 1);
    }
    // The charge is held until the call is answered: the body is kept that long.
    let (body, _charge) = match olin_serve::read_body(body, declared, gw.config.max_body_bytes, &gw.body_budget).await {
        Ok(read) => read,
        Err(ReadError::TooLarge { max }) => return unread(too_large(max)),
        Err(ReadError::Busy { .. }) => {
            let why = "the gateway holds too many request bodies; retry shortly";
            return unread(retry_later(StatusCode::SERVICE_UNAVAILABLE, "BUSY", why, 1));
        }
        Err(ReadError::Read(err)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BAD_BODY",
                &format!("reading the request body failed: {err}"),
                None,
            );
        }
    };

    let is_async = async_path || prefers_async(&headers);
    let callback_url = match headers.get(CALLBACK_HEADER) {
        None => String::new(),
        Some(v) => match v.to_str().ok().map(|u| callback_refused(u, gw.config.callback_allow_http, &gw.egress)) {
            Some(None) if is_async => v.to_str().unwrap_or_default().to_owned(),
            Some(Some(why)) => return error(StatusCode::BAD_REQUEST, "BAD_CALLBACK", why, None),
            _ => {
                let msg = "Olin-Callback-Url must be an https URL, on an async call";
                return error(StatusCode::BAD_REQUEST, "BAD_CALLBACK", msg, None);
            }
        },
    };
    let invocation_id = uuid::Uuid::now_v7().to_string();
    let wall_ms = route.limits.as_ref().map(|l| l.wall_ms).filter(|w| *w > 0).unwrap_or(gw.config.default_wall_ms);
    let timeout = Duration::from_millis(wall_ms + gw.config.queue_slack_ms);
    // Nobody waits on an async call: it may queue far longer.
    let deadline_ms = if is_async { gw.config.async_deadline_ms } else { timeout.as_millis() as u64 };
    let (host, port) = host_and_port(&headers, gw.local_port);
    let req = InvocationRequest {
        invocation_id: invocation_id.clone(),
        function: function.to_owned(),
        module_sha256: target.to_owned(),
        deployment_id: route.deployment_id.clone(),
        method: method.as_str().to_owned(),
        path: fn_path.to_owned(),
        query: query.unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(n, v)| Header { name: n.as_str().to_owned(), value: Bytes::copy_from_slice(v.as_bytes()) })
            .collect(),
        body,
        remote_addr: remote.map(|a| a.to_string()).unwrap_or_default(),
        scheme: "http".to_owned(),
        host,
        deadline_unix_ms: olin_proto::unix_ms() + deadline_ms,
        limits: route.limits.or(Some(Limits::default())),
        env: route.env.clone(),
        r#async: is_async,
        callback_url,
        async_max_attempts: route.async_max_attempts,
        abi: route.abi,
        server_port: u32::from(port),
        egress_allow: route.egress_allow.clone(),
        traceparent: headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
        own_origin,
        concurrency_lease: false,
        idempotency_key: String::new(),
    };
    let span = tracing::info_span!("invoke", invocation_id = %invocation_id, function = %function);
    // Instrumented, not entered: the span must not stay entered on this
    // thread across the awaits below (other requests' logs would get it).
    async move {
        let mut req = req;
        if let Some(key) = &idempotency_key {
            let marker = AsyncResult {
                invocation_id: invocation_id.clone(),
                function: function.to_owned(),
                accepted_unix_ms: olin_proto::unix_ms(),
                ..Default::default()
            };
            // A claim older than the call's whole life (a gateway that died
            // before publishing it) no longer stands.
            let stale_after = Duration::from_millis(deadline_ms + wall_ms + LEASE_MARGIN_MS);
            match idempotency::claim(&gw.results_kv, key, &marker, stale_after).await {
                Ok(idempotency::Claim::Fresh) if !is_async => req.idempotency_key = key.clone(),
                Ok(idempotency::Claim::Fresh) => {}
                Ok(idempotency::Claim::Taken(first)) => {
                    return repeated(gw, key, &first, is_async, own_origin, timeout).await;
                }
                Err(why) => {
                    warn!(%why, "idempotency key unavailable");
                    let why = "idempotency keys are unavailable; retry later";
                    return retry_later(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", why, 1);
                }
            }
        }
        if route.max_concurrency > 0 {
            // Held until the call has finished: a worker gives it back before it
            // replies. A call that times out keeps it until no worker can still
            // run it (the deadline, then a whole run, then a margin for loading).
            let expires = req.deadline_unix_ms + wall_ms + LEASE_MARGIN_MS;
            let leased =
                admission::acquire_lease(&gw.limits_kv, function, &invocation_id, route.max_concurrency, expires);
            if let Err(err) = leased.await {
                if let Some(key) = &idempotency_key {
                    idempotency::release(&gw.results_kv, key).await;
                }
                return not_admitted(&err);
            }
            req.concurrency_lease = true;
        }
        let result = if is_async {
            invoke::accept_async(&gw.js, &gw.results_kv, &req).await.map(|()| accepted(&invocation_id))
        } else {
            invoke::invoke(&gw.js, &gw.replies, &gw.id, &req, timeout).await.map(|r| reply(r, own_origin))
        };
        let never_queued =
            matches!(result, Err(InvokeError::QueueFull | InvokeError::FunctionQueueFull | InvokeError::TooLarge));
        if never_queued && req.concurrency_lease {
            // Nobody else gives the lease back.
            if let Err(err) = admission::release_lease(&gw.limits_kv, function, &invocation_id).await {
                warn!(%err, "a concurrency lease was not given back; it expires on its own");
            }
        }
        if let Some(key) = idempotency_key.as_deref().filter(|_| never_queued) {
            // A retry with the key may run the call.
            idempotency::release(&gw.results_kv, key).await;
        }
        let mut resp = match result {
            Ok(r) => r,
            Err(InvokeError::Timeout) => error(
                StatusCode::GATEWAY_TIMEOUT,
                "TIMEOUT",
                "the function did not answer before its deadline",
                Some(Outcome::Timeout),
            ),
            Err(InvokeError::QueueFull) => {
                retry_later(StatusCode::SERVICE_UNAVAILABLE, "QUEUE_FULL", "too many calls are waiting; retry later", 1)
            }
            Err(InvokeError::FunctionQueueFull) => retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "QUEUE_FULL",
                "too many calls to this function are waiting; retry later",
                1,
            ),
            Err(InvokeError::TooLarge) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                "the request exceeds the message size limit",
                None,
            ),
            Err(err) => {
                warn!(%err, "invocation failed");
                retry_later(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", &err.to_string(), 1)
            }
        };
        info!(status = resp.status().as_u16(), "answered");
        if let Ok(v) = HeaderValue::from_str(&invocation_id) {
            resp.headers_mut().insert(subject::HTTP_INVOCATION_ID, v);
        }
        resp
    }
    .instrument(span)
    .await
}

/// The answer to a request whose idempotency key an earlier one holds: that
/// call's invocation id (async), or its answer, once there (sync).
async fn repeated(
    gw: &Shared,
    key: &str,
    first: &AsyncResult,
    is_async: bool,
    own_origin: bool,
    timeout: Duration,
) -> Response {
    let mut resp = if is_async {
        accepted(&first.invocation_id)
    } else {
        let stored = match first.response.clone() {
            Some(resp) => Some(resp),
            None => idempotency::answer(&gw.results_kv, key, tokio::time::Instant::now() + timeout).await,
        };
        match stored {
            Some(resp) => reply(resp, own_origin),
            None => error(
                StatusCode::GATEWAY_TIMEOUT,
                "TIMEOUT",
                "the call made earlier with this Idempotency-Key has not been answered yet; retry later",
                Some(Outcome::Timeout),
            ),
        }
    };
    resp.headers_mut().insert(subject::HTTP_IDEMPOTENT_REPLAY, HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(&first.invocation_id) {
        resp.headers_mut().insert(subject::HTTP_INVOCATION_ID, v);
    }
    resp
}

/// Request header naming where an async call's result is POSTed.
const CALLBACK_HEADER: &str = subject::HTTP_CALLBACK_URL;

/// `Prefer: respond-async` (RFC 7240), among other preferences.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// Why a callback URL is refused, if it is: not `https` (unless the
/// operator allows `http`), malformed, or an IP literal that is not an
/// address outbound traffic may reach (a name is vetted by the worker when
/// it connects).
fn callback_refused(url: &str, allow_http: bool, policy: &AddressPolicy) -> Option<&'static str> {
    let parsed = url::Url::parse(url).ok().filter(|u| u.username().is_empty() && u.password().is_none());
    let Some(parsed) = parsed.filter(|_| !url.chars().any(|c| c.is_whitespace() || c.is_control())) else {
        return Some("Olin-Callback-Url is not a URL without credentials");
    };
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Some("Olin-Callback-Url must be an https URL"),
    }
    match parsed.host() {
        None => Some("Olin-Callback-Url has no host"),
        Some(url::Host::Ipv4(ip)) if !policy.permits(ip.into()) => Some(REFUSED_TARGET),
        Some(url::Host::Ipv6(ip)) if !policy.permits(ip.into()) => Some(REFUSED_TARGET),
        Some(_) => None,
    }
}

const REFUSED_TARGET: &str = "Olin-Callback-Url is not an address outbound traffic may reach";

/// 202 for an accepted async call, pointing at its result.
fn accepted(invocation_id: &str) -> Response {
    let location = format!("/async/results/{invocation_id}");
    let body = serde_json::json!({ "invocation_id": invocation_id, "status": "accepted", "result_url": location });
    let mut r = Response::new(body.to_string().into());
    *r.status_mut() = StatusCode::ACCEPTED;
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("preference-applied", HeaderValue::from_static("respond-async"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(http::header::LOCATION, v);
    }
    r
}

/// `GET /async/results/{id}`: 202 while pending, then the call's answer as
/// it would have been given synchronously, with `Olin-Attempts` and
/// `Olin-Callback` (`none`, `pending`, `delivered`, `failed (<n> attempts): <why>`).
async fn async_result(gw: &Shared, id: &str) -> Response {
    let valid = !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
    let stored = if valid { gw.results_kv.get(id).await } else { Ok(None) };
    let result = match stored {
        Ok(Some(bytes)) => AsyncResult::decode(bytes).ok(),
        Ok(None) => None,
        Err(err) => {
            warn!(%err, "reading an async result failed");
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "results are unavailable; retry later",
                1,
            );
        }
    };
    let Some(result) = result else {
        return error(
            StatusCode::NOT_FOUND,
            "RESULT_NOT_FOUND",
            "no such async call (unknown, or its result expired)",
            None,
        );
    };
    let mut resp = match result.response.clone() {
        None => {
            let body = serde_json::json!({ "invocation_id": id, "status": "pending" });
            let mut r = Response::new(body.to_string().into());
            *r.status_mut() = StatusCode::ACCEPTED;
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Some(response) => {
            // Fetched from the gateway's shared origin: never the function's own.
            let mut r = reply(response, false);
            let callback = if result.callback_url.is_empty() {
                "none".to_owned()
            } else if result.callback_delivered {
                "delivered".to_owned()
            } else if result.callback_attempts == 0 {
                "pending".to_owned()
            } else {
                format!("failed ({} attempts): {}", result.callback_attempts, result.callback_error)
            };
            if let Ok(v) = HeaderValue::from_str(&callback.replace(['\r', '\n'], " ")) {
                r.headers_mut().insert(subject::HTTP_CALLBACK, v);
            }
            r.headers_mut().insert(subject::HTTP_ATTEMPTS, HeaderValue::from(result.attempts));
            r
        }
    };
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(subject::HTTP_INVOCATION_ID, v);
    }
    resp
}

/// Header carrying the invoke key of a private function (or use
/// `Authorization: Bearer <key>`).
const INVOKE_KEY_HEADER: &str = olin_proto::subject::HTTP_INVOKE_KEY;

/// For a private function: the caller must present a key whose sha256 the
/// route lists. The key never reaches the function: `Olin-Invoke-Key` is
/// removed, and so is an `Authorization` header that carried the key.
fn check_invoke_key(route: &RouteRecord, headers: &mut HeaderMap) -> Result<Option<String>, &'static str> {
    use sha2::Digest as _;
    if route.visibility != olin_proto::v1::Visibility::Private as i32 {
        return Ok(None);
    }
    let listed = |key: &str| {
        let hash = hex::encode(sha2::Sha256::digest(key.trim().as_bytes()));
        route.invoke_key_sha256.contains(&hash).then_some(hash)
    };
    let header_key = headers.remove(INVOKE_KEY_HEADER);
    if let Some(key) = header_key.as_ref().and_then(|v| v.to_str().ok()) {
        return listed(key).map(Some).ok_or("the invoke key is not valid for this function");
    }
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    match bearer.map(listed) {
        Some(Some(hash)) => {
            headers.remove(http::header::AUTHORIZATION);
            Ok(Some(hash))
        }
        Some(_) => Err("the invoke key is not valid for this function"),
        None => Err("this function is private: send its invoke key in Olin-Invoke-Key or Authorization: Bearer"),
    }
}

/// Picks the module of one call: weighted among a canary's targets.
fn pick_target(route: &RouteRecord) -> Option<&str> {
    let total: u32 = route.targets.iter().map(|t| t.weight).sum();
    if total == 0 {
        return route.targets.first().map(|t| t.module_sha256.as_str());
    }
    let mut roll = rand::random::<u32>() % total;
    for t in &route.targets {
        if roll < t.weight {
            return Some(&t.module_sha256);
        }
        roll -= t.weight;
    }
    route.targets.last().map(|t| t.module_sha256.as_str())
}

fn host_and_port(headers: &HeaderMap, local_port: u16) -> (String, u16) {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    // "[::1]:8080", "example.com:8080", "example.com"
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !p.contains(']') => (n, p.parse().unwrap_or(local_port)),
        _ => (host, local_port),
    };
    (name.trim_start_matches('[').trim_end_matches(']').to_owned(), port)
}

/// Turns a worker's reply into the HTTP response.
/// The HTTP answer for a function's response. The response-header policy
/// (`header_policy::response_header_refused`) is applied here too: the worker
/// applies it and logs what it dropped, but the answer is the gateway's.
fn reply(r: InvocationResponse, own_origin: bool) -> Response {
    let outcome = r.outcome();
    if outcome != Outcome::Ok {
        let status = StatusCode::from_u16(r.status as u16).unwrap_or(StatusCode::BAD_GATEWAY);
        let message = if r.error.is_empty() { "the function failed".to_owned() } else { r.error.clone() };
        return error(status, outcome.header_value(), &message, Some(outcome));
    }
    let mut resp = Response::new(r.body.into());
    *resp.status_mut() = StatusCode::from_u16(r.status as u16).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    for h in r.headers {
        if header_policy::response_header_refused(&h.name, own_origin).is_some() {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(&h.value)) {
            headers.append(name, value);
        }
    }
    headers.insert(subject::HTTP_OUTCOME, HeaderValue::from_static("OK"));
    resp
}

fn too_large(max: u64) -> Response {
    error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", &format!("the request body exceeds {max} bytes"), None)
}

/// A platform error the client should retry after a second.
/// An answer sent before the request body was read in full: the connection
/// closes after it, so that no client sends its next request after the
/// rest of an unread body (or into a connection the server is dropping).
fn unread(mut r: Response) -> Response {
    r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Time a concurrency lease outlives the latest end of its call's run, for
/// a worker's module fetch and compile before the run.
const LEASE_MARGIN_MS: u64 = 60_000;

/// 429 for a call over its function's rate or concurrency limit, or 503 if
/// the limits could not be consulted.
fn not_admitted(err: &AdmitError) -> Response {
    match err {
        AdmitError::Limited { what, retry_after } => {
            let message = format!("the function's {what} limit is reached; retry later");
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", &message, None);
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            r
        }
        AdmitError::Unavailable(why) => {
            warn!(%why, "admission failed");
            retry_later(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "call limits are unavailable; retry later", 1)
        }
    }
}

/// 429 for a function whose calls control refuses (e.g. its owner's
/// monthly quota is spent), with `Retry-After` when the refusal ends.
fn refused(refusal: &Refusal) -> Response {
    let code = if refusal.code.is_empty() { "REFUSED" } else { refusal.code.as_str() };
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, code, &refusal.message, None);
    let now = olin_proto::unix_ms();
    if refusal.until_unix_ms > now {
        let secs = (refusal.until_unix_ms - now).div_ceil(1000);
        r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// A platform error the client may retry after `secs` seconds (`Retry-After`).
fn retry_later(status: StatusCode, code: &str, message: &str, secs: u32) -> Response {
    let mut r = error(status, code, message, None);
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut r = Response::new(body.to_owned().into());
    *r.status_mut() = status;
    r
}

/// A platform error: JSON body `{"error": {"code", "message"}}`, the
/// `Olin-Error` header (absent from a function's own responses), and the
/// outcome when a worker was involved.
fn error(status: StatusCode, code: &str, message: &str, outcome: Option<Outcome>) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut r = Response::new(body.to_string().into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert(subject::HTTP_ERROR, v);
    }
    if let Some(outcome) = outcome {
        h.insert(subject::HTTP_OUTCOME, HeaderValue::from_static(outcome.header_value()));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use olin_proto::v1::RouteTarget;

    #[test]
    fn targets() {
        let none = None;
        for admin in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(target(admin, none, none), Target::NotFound, "{admin} is on the admin listener only");
        }
        assert_eq!(
            target("/f/hello", none, none),
            Target::Function { name: "hello", path: "", r#async: false, own_origin: false }
        );
        assert_eq!(
            target("/f/hello/", none, none),
            Target::Function { name: "hello", path: "/", r#async: false, own_origin: false }
        );
        assert_eq!(
            target("/f/hello/a/b", none, none),
            Target::Function { name: "hello", path: "/a/b", r#async: false, own_origin: false }
        );
        assert_eq!(
            target("/async/f/hello/a", none, none),
            Target::Function { name: "hello", path: "/a", r#async: true, own_origin: false }
        );
        assert_eq!(target("/async/results/0190-ab", none, none), Target::AsyncResult { id: "0190-ab" });
        assert_eq!(target("/x", none, none), Target::NotFound);
        let base = Some("fn.example.com");
        assert_eq!(
            target("/healthz", Some("hello.fn.example.com:8080"), base),
            Target::Function { name: "hello", path: "/healthz", r#async: false, own_origin: true },
            "a function host owns its whole path"
        );
        assert_eq!(
            target("/a", Some("hello.fn.example.com"), base),
            Target::Function { name: "hello", path: "/a", r#async: false, own_origin: true }
        );
        assert_eq!(target("/healthz", Some("fn.example.com"), base), Target::NotFound);
        assert_eq!(target("/a", Some("a.b.fn.example.com"), base), Target::NotFound);
        assert_eq!(target("/a", Some("hellofn.example.com"), base), Target::NotFound);
        assert_eq!(
            target("/f/x", Some("other.org"), base),
            Target::Function { name: "x", path: "", r#async: false, own_origin: false }
        );
    }

    #[test]
    fn async_preferences_and_callbacks() {
        let mut h = HeaderMap::new();
        assert!(!prefers_async(&h));
        h.insert("prefer", HeaderValue::from_static("return=minimal, respond-async"));
        assert!(prefers_async(&h));
        let none = AddressPolicy::default();
        let refused = |url, http| callback_refused(url, http, &none);
        assert_eq!(refused("https://example.com/hook", false), None);
        assert_eq!(refused("http://example.com/hook", false), Some("Olin-Callback-Url must be an https URL"));
        assert_eq!(refused("http://example.com/hook", true), None);
        assert_eq!(refused("https://127.0.0.1:9/x", false), Some(REFUSED_TARGET));
        assert_eq!(refused("https://[::1]/x", false), Some(REFUSED_TARGET));
        assert_eq!(refused("https://169.254.169.254/latest", false), Some(REFUSED_TARGET));
        assert_eq!(refused("https://[::ffff:10.0.0.1]/", false), Some(REFUSED_TARGET));
        assert_eq!(refused("https://8.8.8.8/x", false), None);
        let loopback: AddressPolicy = "127.0.0.0/8".parse().unwrap();
        assert_eq!(callback_refused("http://127.0.0.1:9/x", true, &loopback), None, "an operator allowance");
        for bad in ["ftp://example.com", "https://", "https://user@host/", "https://a b/"] {
            assert!(refused(bad, true).is_some(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        let mut h = HeaderMap::new();
        assert_eq!(host_and_port(&h, 80), ("".into(), 80));
        h.insert("host", HeaderValue::from_static("example.com:8080"));
        assert_eq!(host_and_port(&h, 80), ("example.com".into(), 8080));
        h.insert("host", HeaderValue::from_static("[::1]:9"));
        assert_eq!(host_and_port(&h, 80), ("::1".into(), 9));
        h.insert("host", HeaderValue::from_static("[::1]"));
        assert_eq!(host_and_port(&h, 80), ("::1".into(), 80));
    }

    #[test]
    fn private_functions_need_a_listed_key() {
        use sha2::Digest as _;
        let hash = hex::encode(sha2::Sha256::digest(b"ok_secret"));
        let route = RouteRecord {
            visibility: olin_proto::v1::Visibility::Private as i32,
            invoke_key_sha256: vec![hash],
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        assert!(check_invoke_key(&route, &mut h).is_err(), "no key");
        h.insert("olin-invoke-key", HeaderValue::from_static("wrong"));
        assert!(check_invoke_key(&route, &mut h).is_err(), "wrong key");
        h.insert("olin-invoke-key", HeaderValue::from_static("ok_secret"));
        assert!(check_invoke_key(&route, &mut h).is_ok());
        assert!(h.get("olin-invoke-key").is_none(), "the key is not passed on");
        h.insert("authorization", HeaderValue::from_static("Bearer ok_secret"));
        assert!(check_invoke_key(&route, &mut h).is_ok());
        assert!(h.get("authorization").is_none());
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        assert!(check_invoke_key(&route, &mut h).is_err());
        let public = RouteRecord::default();
        assert!(check_invoke_key(&public, &mut HeaderMap::new()).is_ok());
    }

    #[test]
    fn weighted_targets() {
        let t = |s: &str, w| RouteTarget { module_sha256: s.into(), weight: w, version_id: String::new() };
        let route = RouteRecord { targets: vec![t("a", 90), t("b", 10)], ..Default::default() };
        let n = 10_000;
        let a = (0..n).filter(|_| pick_target(&route) == Some("a")).count();
        assert!((8_700..9_300).contains(&a), "{a}");
        let single = RouteRecord { targets: vec![t("x", 0)], ..Default::default() };
        assert_eq!(pick_target(&single), Some("x"));
        assert_eq!(pick_target(&RouteRecord::default()), None);
    }
}
