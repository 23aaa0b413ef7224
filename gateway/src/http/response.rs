//! How answers are built: a function's own response, and the platform's
//! errors (`{"error": {"code", "message"}}` with `Olin-Error`).

use http::{HeaderName, HeaderValue, StatusCode};
use olin_nats::admission::AdmitError;
use olin_proto::v1::{InvocationResponse, Outcome, Refusal};
use olin_proto::{header_policy, subject};
use tracing::warn;
use warp::reply::Response;

/// The HTTP answer for a worker's reply. The response-header policy
/// (`header_policy::response_header_refused`) is applied here too: the worker
/// applies it and logs what it dropped, but the answer is the gateway's.
pub(super) fn reply(r: InvocationResponse, own_origin: bool) -> Response {
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

pub(super) fn too_large(max: u64) -> Response {
    error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", &format!("the request body exceeds {max} bytes"), None)
}

/// A platform error the client should retry after a second.
/// An answer sent before the request body was read in full: the connection
/// closes after it, so that no client sends its next request after the
/// rest of an unread body (or into a connection the server is dropping).
pub(super) fn unread(mut r: Response) -> Response {
    r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// 429 for a call over its function's rate or concurrency limit, or 503 if
/// the limits could not be consulted.
pub(super) fn not_admitted(err: &AdmitError) -> Response {
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
pub(super) fn refused(refusal: &Refusal) -> Response {
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
pub(super) fn retry_later(status: StatusCode, code: &str, message: &str, secs: u32) -> Response {
    let mut r = error(status, code, message, None);
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

pub(super) fn text(status: StatusCode, body: &str) -> Response {
    let mut r = Response::new(body.to_owned().into());
    *r.status_mut() = status;
    r
}

/// A platform error: JSON body `{"error": {"code", "message"}}`, the
/// `Olin-Error` header (absent from a function's own responses), and the
/// outcome when a worker was involved.
pub(super) fn error(status: StatusCode, code: &str, message: &str, outcome: Option<Outcome>) -> Response {
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
