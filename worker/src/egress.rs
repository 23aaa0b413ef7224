//! Outbound HTTP for guests' `http(s)` resources, over reqwest with rustls:
//! TLS verified against the Web PKI roots, no redirects followed (a redirect
//! could leave the function's allow-list), time and size capped.

use std::time::Duration;

use olin::{Egress, EgressError, EgressRequest, EgressResponse};
use tokio::runtime::Handle;

/// The worker's [`Egress`].
pub(crate) struct HttpEgress {
    client: reqwest::Client,
    handle: Handle,
}

impl HttpEgress {
    /// Builds the client, trusting `extra_roots` besides the system's;
    /// `handle` runs its futures (guests call from blocking threads).
    pub(crate) fn new(handle: Handle, extra_roots: Vec<reqwest::Certificate>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .tls_certs_merge(extra_roots)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("olincloud-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpEgress { client, handle })
    }

    async fn exchange(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        let failed = |e: String| EgressError::Failed(e);
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| failed(e.to_string()))?;
        let mut builder = self.client.request(method, &req.url).body(req.body);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let mut resp = builder.send().await.map_err(|e| failed(format!("request failed: {e}")))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
        let too_large = || EgressError::TooLarge { limit: req.max_response_bytes };
        // Refused before a byte is read when the length is announced; capped
        // as it arrives otherwise (the buffer never grows past the cap).
        let announced = resp.content_length().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if announced.is_some_and(|n| n > req.max_response_bytes) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(announced.unwrap_or(0));
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(format!("reading the response failed: {e}")))? {
            if body.len() + chunk.len() > req.max_response_bytes {
                return Err(too_large());
            }
            if body.capacity() < body.len() + chunk.len() {
                let want = (body.len() + chunk.len()).max(body.capacity() * 2).min(req.max_response_bytes);
                body.reserve_exact(want - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(EgressResponse { status, headers, body })
    }
}

impl HttpEgress {
    /// POSTs a JSON document (an async call's result) and returns the status.
    pub(crate) async fn post_json(&self, url: &str, invocation_id: &str, body: Vec<u8>) -> Result<u16, String> {
        let send = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(olin_proto::subject::HTTP_INVOCATION_ID, invocation_id)
            .body(body)
            .send();
        match tokio::time::timeout(Duration::from_secs(10), send).await {
            Ok(Ok(resp)) => Ok(resp.status().as_u16()),
            Ok(Err(err)) => Err(format!("callback request failed: {err}")),
            Err(_) => Err("the callback did not answer within 10 s".to_owned()),
        }
    }
}

impl Egress for HttpEgress {
    fn send(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        let timeout = req.timeout;
        self.handle
            .block_on(async { tokio::time::timeout(timeout, self.exchange(req)).await })
            .map_err(|_| EgressError::Timeout(timeout))?
    }
}
