//! Outbound HTTP made on a guest's behalf (the olin `http`/`https`
//! resources). The sandbox has no network of its own: the embedder passes an
//! [`Egress`] that performs the exchange, and a per-function allow-list
//! decides which hosts a guest may open. Everything is denied by default.

use std::time::Duration;

use thiserror::Error;

/// One request a guest built in an `http`/`https` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Absolute URL: the *opened* origin plus the request's path.
    pub url: String,
    /// Request headers (`Host` is the opened host).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Give up after this long (bounded by the call's deadline).
    pub timeout: Duration,
    /// Refuse responses larger than this many body bytes.
    pub max_response_bytes: usize,
}

/// The answer to an [`EgressRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// Why an [`EgressRequest`] got no response.
#[derive(Debug, Error)]
pub enum EgressError {
    /// The response body was larger than `max_response_bytes`.
    #[error("the response exceeds {limit} bytes")]
    TooLarge {
        /// The request's `max_response_bytes`.
        limit: usize,
    },
    /// No response within the request's timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The target is not an address outbound traffic may reach (not public,
    /// and not allowed by the operator); nothing was sent.
    #[error("the target is not an address outbound traffic may reach")]
    Denied,
    /// The exchange failed at `stage` (a method the client refuses, a
    /// connection refused, a TLS failure, a reset while reading...).
    #[error("{stage}: {source}")]
    Failed {
        /// Where it failed.
        stage: Stage,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where an outbound exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Stage {
    /// Building the request (nothing was sent).
    #[error("the request is invalid")]
    Request,
    /// Connecting or sending (no response arrived).
    #[error("the request failed")]
    Send,
    /// Reading the response's body.
    #[error("reading the response failed")]
    Read,
}

/// Performs outbound HTTP for guests. Called from the guest's (blocking)
/// thread; implementations must verify TLS, must not follow redirects
/// (a redirect could leave the allow-list), and must stop reading a body at
/// `max_response_bytes`: that is the call's host budget speaking.
pub trait Egress: Send + Sync {
    /// Sends `req` and returns the response.
    ///
    /// # Errors
    /// [`EgressError`]; its text goes to the guest's log.
    fn send(&self, req: EgressRequest) -> Result<EgressResponse, EgressError>;
}

/// The parts of an `http(s)://host[:port][/path]` URL the allow-list needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Origin {
    /// Parses the origin of an `http`/`https` URL as a browser does (the
    /// WHATWG URL standard, `url` crate: names lowercased and IDNA-encoded,
    /// IPv4 in any notation normalised); `None` if it is not one, has no
    /// host, or carries credentials.
    pub(crate) fn parse(text: &str) -> Option<Origin> {
        let url = url::Url::parse(text).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = match url.host()? {
            url::Host::Domain(name) => name.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => format!("[{ip}]"),
        };
        Some(Origin { scheme: url.scheme().to_owned(), host, port: url.port_or_known_default()? })
    }

    /// `scheme://host:port`.
    pub(crate) fn base(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// The `Host` header value.
    pub(crate) fn host_header(&self) -> String {
        match (self.scheme.as_str(), self.port) {
            ("http", 80) | ("https", 443) => self.host.clone(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Whether `origin` is admitted by one of `allow`: `*` (everything),
/// `host` (any port), `host:port`, or `*.domain` (any subdomain, any port).
pub(crate) fn allowed(allow: &[String], origin: &Origin) -> bool {
    allow.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern == "*" {
            return true;
        }
        // Control checked every entry; one that still does not read admits
        // nothing. IPv6 literals are compared in their canonical form, the
        // one `Origin` holds.
        let (host_pat, port_pat) = match pattern.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => (format!("[{ip}]"), None),
            Err(_) => match olin_proto::authority::host_port(&pattern) {
                Ok((host, port)) => match host.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>() {
                    Ok(ip) => (format!("[{ip}]"), port),
                    Err(_) => (host.to_owned(), port),
                },
                Err(_) => return false,
            },
        };
        if port_pat.is_some_and(|p| p != origin.port) {
            return false;
        }
        match host_pat.strip_prefix("*.") {
            Some(domain) => origin.host.ends_with(&format!(".{domain}")),
            None => origin.host == host_pat,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(url: &str) -> Origin {
        Origin::parse(url).unwrap()
    }

    #[test]
    fn origins() {
        assert_eq!(o("https://Example.com/a?b").host, "example.com");
        assert_eq!(o("https://example.com").port, 443);
        assert_eq!(o("http://example.com").port, 80);
        assert_eq!(o("http://127.0.0.1:8080/x").port, 8080);
        assert_eq!(o("http://[::1]:81/").host, "[::1]");
        assert_eq!(o("http://example.com:8080").host_header(), "example.com:8080");
        assert_eq!(o("https://example.com").base(), "https://example.com:443");
        // As a browser reads them: numeric IPv4 forms are one address, IPv6 is canonical.
        assert_eq!(o("http://0x7f.1/").host, "127.0.0.1");
        assert_eq!(o("http://[0:0::1]/").host, "[::1]");
        assert_eq!(o("http:///x").host, "x");
        for bad in [
            "http://",
            "http://user@host/",
            "http://:pw@host/",
            "http://h:99999",
            "ftp://h",
            "http://h:x",
            "http://a b",
            "http//x",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn allow_list_denies_by_default() {
        let allow =
            |pats: &[&str], url: &str| allowed(&pats.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &o(url));
        assert!(!allow(&[], "https://example.com"));
        assert!(allow(&["*"], "https://example.com"));
        assert!(allow(&["example.com"], "https://example.com/x"));
        assert!(allow(&["example.com"], "http://example.com:8080"));
        assert!(!allow(&["example.com"], "https://evil-example.com"));
        assert!(!allow(&["example.com"], "https://api.example.com"));
        assert!(allow(&["*.example.com"], "https://api.example.com"));
        assert!(!allow(&["*.example.com"], "https://example.com"));
        assert!(!allow(&["*.example.com"], "https://apiexample.com"));
        assert!(allow(&["127.0.0.1:8080"], "http://127.0.0.1:8080/"));
        assert!(!allow(&["127.0.0.1:8080"], "http://127.0.0.1:8081/"));
        assert!(allow(&["[::1]:81"], "http://[::1]:81/"));
        assert!(allow(&["::1"], "http://[::1]:81/"));
        assert!(allow(&["[0::1]"], "http://[::1]/"));
        assert!(!allow(&["example.com:http", "user@example.com"], "http://example.com/"), "unreadable entries");
    }
}
