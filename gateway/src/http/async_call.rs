//! Async calls: asked for by path or `Prefer: respond-async`, with an
//! optional callback URL (vetted here), answered 202 and later read back
//! from `OLIN_RESULTS`.

use http::{HeaderMap, HeaderValue, StatusCode};
use olin_proto::Message as _;
use olin_proto::net_policy::AddressPolicy;
use olin_proto::subject;
use olin_proto::v1::AsyncResult;
use tracing::warn;
use warp::reply::Response;

use super::response::{error, reply, retry_later};
use crate::Shared;

/// Request header naming where an async call's result is POSTed.
pub(super) const CALLBACK_HEADER: &str = subject::HTTP_CALLBACK_URL;

/// `Prefer: respond-async` (RFC 7240), among other preferences.
pub(super) fn prefers_async(headers: &HeaderMap) -> bool {
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
pub(super) fn callback_refused(url: &str, allow_http: bool, policy: &AddressPolicy) -> Option<&'static str> {
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

pub(super) const REFUSED_TARGET: &str = "Olin-Callback-Url is not an address outbound traffic may reach";

/// 202 for an accepted async call, pointing at its result.
pub(super) fn accepted(invocation_id: &str) -> Response {
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
pub(super) async fn async_result(gw: &Shared, id: &str) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
