//! The control plane's `/v1` API over HTTP: the API's own types
//! (`olin_api`) in and out, and its one error shape (`{"error": {"code",
//! "message"}}`) turned into [`CliError::Remote`].

use std::time::Duration;

use bytes::Bytes;
use olin_api::Listing;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CliError, Result};

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

    /// `GET /v1<path>`.
    ///
    /// # Errors
    /// [`CliError::Remote`] for an error answer, [`CliError::Unreachable`],
    /// an answer that is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path)).await
    }

    /// `GET /v1<path>?<query>`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_with<Q: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, query: &Q) -> Result<T> {
        self.send(self.request(Method::GET, path).query(query)).await
    }

    /// Every item of the paged listing at `path`, up to `limit`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn all<L: Listing + DeserializeOwned>(&self, path: &str, limit: usize) -> Result<Vec<L::Item>> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        while items.len() < limit {
            let page = olin_api::Page { limit: (limit - items.len()).min(100) as u64, after: after.take() };
            let (got, next) = self.get_with::<_, L>(path, &page).await?.into_parts();
            items.extend(got);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(items)
    }

    /// `<method> /v1<path>` with `body` as JSON.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(self.request(method, path).json(body)).await
    }

    /// `DELETE /v1<path>`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// `DELETE /v1<path>`, answered with a `T`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn delete_for<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// `POST /v1<path>` of a module (`application/wasm`), streamed in
    /// chunks so `progress` can follow it.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn upload(
        &self,
        path: &str,
        module: Bytes,
        progress: indicatif::ProgressBar,
    ) -> Result<olin_api::Version> {
        const CHUNK: usize = 64 << 10;
        let len = module.len();
        let chunks: Vec<Bytes> = (0..len).step_by(CHUNK).map(|at| module.slice(at..len.min(at + CHUNK))).collect();
        let stream = futures::stream::iter(chunks.into_iter().map(move |chunk| {
            progress.inc(chunk.len() as u64);
            Ok::<_, std::io::Error>(chunk)
        }));
        let req = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(stream));
        self.send(req).await
    }

    /// Sends `req` and reads its answer as a `T` (an empty answer as JSON
    /// `null`, which is what `()` reads).
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            let json: &[u8] = if body.is_empty() { b"null" } else { &body };
            return serde_json::from_slice(json).map_err(|e| {
                CliError::Other(anyhow::anyhow!(
                    "{} answered {status} with a body this olinctl does not understand ({e}); \
                     is olinctl as new as the server?",
                    self.url
                ))
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
    let parsed = serde_json::from_slice::<olin_api::ErrorBody>(body).ok().map(|b| (b.error.code, b.error.message));
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
