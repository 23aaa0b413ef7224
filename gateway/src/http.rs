//! The HTTP face: `ANY /f/{function}[/{path..}]`, `/healthz`, `/readyz`.
//! One catch-all warp filter hands every request to [`handle`], which keeps
//! routing, limits and error shapes in plain code.
//!
//! # Layout
//! - `target`: where a request goes (path or host routing).
//! - `keys`: invoke keys and the canary's share.
//! - `async_call`: async calls, callbacks and results.
//! - `response`: answers and the platform's error shapes.
//! - here: the handler: admission, body, publish, await, answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use olin_proto::v1::{AsyncResult, Header, InvocationRequest, Limits, Outcome};
use olin_proto::{header_policy, subject};
use olin_serve::ReadError;
use tracing::{Instrument as _, info, warn};
use warp::reply::Response;

use crate::Shared;
use crate::idempotency;
use crate::invoke::{self, InvokeError};

mod async_call;
mod keys;
mod response;
mod target;

use async_call::{CALLBACK_HEADER, accepted, async_result, callback_refused, prefers_async};
use keys::{check_invoke_key, pick_target};
use response::{error, not_admitted, refused, reply, retry_later, text, too_large, unread};
use target::{Target, host_and_port, target};

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

/// One request as the public filter hands it over.
pub(crate) struct Incoming<B> {
    pub(crate) method: Method,
    pub(crate) path: warp::path::FullPath,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    /// The client's address (the connection's peer).
    pub(crate) remote: Option<SocketAddr>,
    /// The body, not read yet: refused calls never read it.
    pub(crate) body: B,
}

/// Answers one request and records it in the metrics.
pub(crate) async fn handle<B, Chunk>(gw: Arc<Shared>, req: Incoming<B>) -> Response
where
    B: Stream<Item = Result<Chunk, warp::Error>> + Unpin,
    Chunk: Buf,
{
    let started = std::time::Instant::now();
    let _in_flight = InFlight::enter(&gw.metrics);
    let mut label = String::new();
    let resp = answer(&gw, req, &mut label).await;
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

/// Answers `req`; names its function in `label` once it is known.
async fn answer<B, Chunk>(gw: &Arc<Shared>, req: Incoming<B>, label: &mut String) -> Response
where
    B: Stream<Item = Result<Chunk, warp::Error>> + Unpin,
    Chunk: Buf,
{
    let Incoming { method, path, query, headers, remote, body } = req;
    let path = path.as_str();
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
        && let Err(err) = gw.limits.take_token(function, rate).await
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
    if gw.presence.none_alive(&gw.workers_kv).await {
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
            let leased = gw.limits.acquire_lease(function, &invocation_id, route.max_concurrency, expires);
            if let Err(err) = leased.await {
                if let Some(key) = &idempotency_key {
                    idempotency::release(&gw.results_kv, key).await;
                }
                return not_admitted(&err);
            }
            req.concurrency_lease = true;
        }
        let result = if is_async {
            invoke::accept_async(&gw.publisher, &gw.results_kv, &req, &gw.metrics)
                .await
                .map(|()| accepted(&invocation_id))
        } else {
            let path = gw.sync_path();
            invoke::invoke(&gw.nats, &gw.publisher, &gw.replies, &gw.id, &req, path, timeout)
                .await
                .map(|r| reply(r, own_origin))
        };
        let never_queued =
            matches!(result, Err(InvokeError::QueueFull | InvokeError::FunctionQueueFull | InvokeError::TooLarge));
        if never_queued && req.concurrency_lease {
            // Nobody else gives the lease back.
            if let Err(err) = gw.limits.release_lease(function, &invocation_id).await {
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

/// Time a concurrency lease outlives the latest end of its call's run, for
/// a worker's module fetch and compile before the run.
const LEASE_MARGIN_MS: u64 = 60_000;
