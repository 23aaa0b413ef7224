//! `POST /v1/functions/{name}/invoke`: calls the caller's function through
//! the gateway on their behalf and returns what it answered. The panel's
//! "try it" uses it, so the panel talks only to its own origin (its CSP
//! allows no other) and the gateway needs no CORS.

use std::time::Duration;

use base64::Engine as _;
use olin_api::{Header, TryIt, TryItResult};
use warp::reply::Response;

use super::{Api, Request, ok, owned_from};
use crate::error::ApiError;

/// Most body bytes returned (the rest is cut, and `truncated` says so).
const MAX_BODY: usize = 1 << 20;

/// Largest try-it request document: a 1 MiB body, as JSON text, and the rest.
pub(crate) const MAX_REQUEST_BYTES: u64 = (2 << 20) + (64 << 10);

/// `POST /v1/functions/{name}/invoke`.
#[utoipa::path(post, path = "/v1/functions/{name}/invoke",
    summary = "Call the function through the gateway and return its answer (the panel's try-it)",
    request_body = TryIt, responses((status = 200, body = TryItResult)))]
pub(super) async fn try_it(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let t: TryIt = req.json()?;
    if !(t.path.is_empty() || t.path.starts_with('/')) || t.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::unprocessable("path must be empty or start with '/', without spaces"));
    }
    let url = format!("{}/f/{}{}", api.gateway_url.trim_end_matches('/'), f.name, t.path);
    let method = reqwest::Method::from_bytes(t.method.as_str().as_bytes())
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let mut call = api.http.request(method, &url).timeout(Duration::from_secs(60));
    for h in &t.headers {
        let name = reqwest::header::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| ApiError::unprocessable(format!("{:?} is not a header name", h.name)))?;
        let value = reqwest::header::HeaderValue::from_str(&h.value)
            .map_err(|_| ApiError::unprocessable(format!("the value of {} is not a valid header value", h.name)))?;
        call = call.header(name, value);
    }
    if let Some(key) = &t.invoke_key {
        let value = reqwest::header::HeaderValue::from_str(key)
            .map_err(|_| ApiError::unprocessable("the invoke key is not a valid header value"))?;
        call = call.header(olin_proto::subject::HTTP_INVOKE_KEY, value);
    }
    if !t.body.is_empty() {
        call = call.body(t.body);
    }
    let resp = call.send().await.map_err(|e| ApiError::unavailable("the gateway", &e))?;
    let status = resp.status().as_u16();
    let headers: Vec<_> = resp.headers().iter().map(|(k, v)| Header::new(k.as_str(), v.as_bytes())).collect();
    let mut body = Vec::new();
    let mut truncated = false;
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.map_err(|e| ApiError::unavailable("the gateway", &e))? {
        let room = MAX_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let (text, base64) = match String::from_utf8(body) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))),
    };
    ok(&TryItResult { url, status, headers, body: text, body_base64: base64, truncated })
}
