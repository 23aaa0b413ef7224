//! The control plane's `/v1` API over HTTP: JSON in, JSON out, and its one
//! error shape (`{"error": {"code", "message"}}`) turned into
//! [`CliError::Remote`].

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::Value;

use crate::error::{CliError, Result};
use crate::progress::Progress;

/// A client of one control plane, with or without a token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Client {
    /// A client of the control plane at `url` (`http://host:port`).
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(url: &str, token: Option<String>) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("olinctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Other(e.into()))?;
        Ok(Client { http, url: url.trim_end_matches('/').to_owned(), token })
    }

    /// The control plane's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The HTTP client (for calls to the gateway).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}/v1{path}", self.url));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// `GET /v1<path>?<query>`.
    ///
    /// # Errors
    /// [`CliError::Remote`] for an error answer, [`CliError::Unreachable`].
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.send(self.request(Method::GET, path).query(query)).await
    }

    /// `<method> /v1<path>` with a JSON body.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn json(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        self.send(self.request(method, path).json(body)).await
    }

    /// `DELETE /v1<path>`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, path)).await.map(drop)
    }

    /// `POST /v1<path>` of a module (`application/wasm`), streamed in
    /// chunks so `progress` can follow it.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload(&self, path: &str, module: Bytes, progress: Progress) -> Result<Value> {
        const CHUNK: usize = 64 << 10;
        let len = module.len();
        let chunks: Vec<Bytes> = (0..len).step_by(CHUNK).map(|at| module.slice(at..len.min(at + CHUNK))).collect();
        let stream = futures::stream::iter(chunks.into_iter().map(move |chunk| {
            progress.advance(chunk.len());
            Ok::<_, std::io::Error>(chunk)
        }));
        let req = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(stream));
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&body).map_err(|e| {
                CliError::Other(anyhow::anyhow!("{} answered {status} with a body that is not JSON: {e}", self.url))
            });
        }
        Err(remote_error(status.as_u16(), &body))
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        CliError::Unreachable { url: self.url.clone(), reason }
    }
}

/// The API's error body as a [`CliError::Remote`]; anything else (a proxy's
/// HTML page, say) keeps its status and a short excerpt.
pub fn remote_error(status: u16, body: &[u8]) -> CliError {
    let parsed: Option<(String, String)> = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let e = v.get("error")?;
        Some((e.get("code")?.as_str()?.to_owned(), e.get("message")?.as_str()?.to_owned()))
    });
    let (code, message) = parsed.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.chars().take(200).collect();
        ("http_error".to_owned(), if excerpt.trim().is_empty() { "no details".to_owned() } else { excerpt })
    });
    CliError::Remote { status, code, message, hint: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_bodies_are_parsed() {
        let e = remote_error(422, br#"{"error":{"code":"unprocessable","message":"bad import env.nope"}}"#);
        match e {
            CliError::Remote { status, code, message, .. } => {
                assert_eq!((status, code.as_str(), message.as_str()), (422, "unprocessable", "bad import env.nope"));
            }
            other => panic!("{other:?}"),
        }
        let e = remote_error(502, b"<html>bad gateway</html>");
        assert!(e.to_string().contains("<html>bad gateway</html>"), "{e}");
    }
}
