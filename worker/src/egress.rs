//! Outbound HTTP for guests' `http(s)` resources and for async callbacks,
//! over reqwest with rustls: TLS verified against the Web PKI roots, no
//! redirects followed (a redirect could leave the function's allow-list),
//! time and size capped.
//!
//! And never into the operator's network: every name is resolved by
//! [`VettedResolver`], which answers only the addresses the
//! [`AddressPolicy`] permits (public ones, and the operator's allowed
//! CIDRs), and reqwest connects to exactly those, with no second lookup, so
//! a name that answers a public address and then a private one (DNS
//! rebinding) gains nothing. An IP-literal URL is vetted the same way
//! before anything is sent. A refused target is [`EgressError::Denied`]:
//! the guest sees permission denied, whether or not something listens.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use olin::egress::Stage;
use olin::{Egress, EgressError, EgressRequest, EgressResponse};
use olin_proto::net_policy::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::runtime::Handle;
use tracing::warn;

/// Resolves names to the addresses the policy permits, and only those.
pub(crate) struct VettedResolver {
    policy: Arc<AddressPolicy>,
    /// Fixed answers consulted before DNS (`WORKER_EGRESS_HOSTS`).
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

/// A target the address policy refuses.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to no address outbound traffic may reach", self.0)
    }
}

impl std::error::Error for Refused {}

impl Resolve for VettedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, hosts, name) = (self.policy.clone(), self.hosts.clone(), name.as_str().to_ascii_lowercase());
        Box::pin(async move {
            let found: Vec<IpAddr> = match hosts.get(&name) {
                Some(fixed) => fixed.clone(),
                None => tokio::net::lookup_host((name.as_str(), 0)).await?.map(|a| a.ip()).collect(),
            };
            let permitted: Vec<SocketAddr> =
                found.into_iter().filter(|ip| policy.permits(*ip)).map(|ip| SocketAddr::new(ip, 0)).collect();
            if permitted.is_empty() {
                return Err(Box::new(Refused(name)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Whether `err` (or what caused it) is the resolver's refusal.
fn refused(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<Refused>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Warns for each platform endpoint (`urls`: NATS servers, the module
/// store) whose address the operator's allowance opens to functions.
pub(crate) async fn warn_if_opened(policy: &AddressPolicy, urls: &[&str]) {
    for url in urls.iter().flat_map(|u| u.split(',')).map(str::trim) {
        let full = if url.contains("://") { url.to_owned() } else { format!("nats://{url}") };
        let Some((host, port)) = url::Url::parse(&full).ok().and_then(|u| {
            Some((u.host_str()?.trim_matches(['[', ']']).to_owned(), u.port_or_known_default().unwrap_or(4222)))
        }) else {
            continue;
        };
        let Ok(Ok(addrs)) =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host((host.as_str(), port))).await
        else {
            continue;
        };
        for addr in addrs {
            if let Some(net) = policy.opened_by(addr.ip()) {
                warn!(endpoint = %url, address = %addr.ip(), allowance = %net,
                    "functions may reach this platform endpoint: deny it with `!{}` in WORKER_EGRESS_ALLOW_CIDRS", addr.ip());
            }
        }
    }
}

/// Parses a hosts file: `<address> <name>...` lines, `#` comments.
///
/// # Errors
/// The first line that does not parse.
pub(crate) fn parse_hosts(text: &str) -> Result<HashMap<String, Vec<IpAddr>>, BadHostsLine> {
    let mut hosts: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else { continue };
        let ip: IpAddr = addr.parse().map_err(|source| BadHostsLine { line: n + 1, value: addr.to_owned(), source })?;
        for name in words {
            hosts.entry(name.to_ascii_lowercase()).or_default().push(ip);
        }
    }
    Ok(hosts)
}

/// A line of a hosts file whose first word is not an address.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {value:?} is not an address: {source}")]
pub struct BadHostsLine {
    /// Its number, from 1.
    pub line: usize,
    /// The word that should be an address.
    pub value: String,
    /// Why it is not.
    pub source: std::net::AddrParseError,
}

/// Outbound HTTP for guests could not be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum EgressSetupError {
    /// A configured file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `WORKER_EGRESS_CA_FILE` holds no usable PEM certificates.
    #[error("{path}: {source}")]
    Certificates {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: reqwest::Error,
    },
    /// `WORKER_EGRESS_ALLOW_CIDRS` does not parse.
    #[error("WORKER_EGRESS_ALLOW_CIDRS: {0}")]
    Cidrs(#[from] olin_proto::net_policy::BadCidr),
    /// `WORKER_EGRESS_HOSTS` has a bad line.
    #[error("{path}: {source}")]
    Hosts {
        /// The file.
        path: std::path::PathBuf,
        /// The line.
        source: BadHostsLine,
    },
    /// The HTTP client could not be built (its TLS set-up failed).
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The worker's [`Egress`].
pub(crate) struct HttpEgress {
    client: reqwest::Client,
    handle: Handle,
    policy: Arc<AddressPolicy>,
}

impl HttpEgress {
    /// Builds the client, trusting `extra_roots` besides the system's and
    /// reaching only what `policy` permits (`hosts`: fixed answers before
    /// DNS); `handle` runs its futures (guests call from blocking threads).
    pub(crate) fn new(
        handle: Handle,
        extra_roots: Vec<reqwest::Certificate>,
        policy: AddressPolicy,
        hosts: HashMap<String, Vec<IpAddr>>,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let resolver = VettedResolver { policy: policy.clone(), hosts: Arc::new(hosts) };
        let client = reqwest::Client::builder()
            .tls_certs_merge(extra_roots)
            .redirect(reqwest::redirect::Policy::none())
            // Direct, so every address is vetted here: a proxy from the
            // environment would resolve names where we cannot see them.
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .dns_resolver(Arc::new(resolver))
            .user_agent(concat!("olincloud-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpEgress { client, handle, policy })
    }

    /// Whether `url` names an IP literal the policy refuses (names are
    /// vetted by the resolver; literals never reach it).
    fn literal_refused(&self, url: &str) -> bool {
        let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
        host.and_then(|h| h.parse::<IpAddr>().ok()).is_some_and(|ip| !self.policy.permits(ip))
    }

    async fn exchange(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        if self.literal_refused(&req.url) {
            return Err(EgressError::Denied);
        }
        let failed = |stage, e: reqwest::Error| EgressError::Failed { stage, source: Box::new(e) };
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| EgressError::Failed { stage: Stage::Request, source: Box::new(e) })?;
        let mut builder = self.client.request(method, &req.url).body(req.body);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let mut resp =
            builder.send().await.map_err(|e| if refused(&e) { EgressError::Denied } else { failed(Stage::Send, e) })?;
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
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(Stage::Read, e))? {
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
    pub(crate) async fn post_json(&self, url: &str, invocation_id: &str, body: Vec<u8>) -> Result<u16, CallbackError> {
        if self.literal_refused(url) {
            return Err(CallbackError::Refused);
        }
        let send = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(olin_proto::subject::HTTP_INVOCATION_ID, invocation_id)
            .body(body)
            .send();
        match tokio::time::timeout(CALLBACK_TIMEOUT, send).await {
            Ok(Ok(resp)) => Ok(resp.status().as_u16()),
            Ok(Err(err)) if refused(&err) => Err(CallbackError::Refused),
            Ok(Err(err)) => Err(CallbackError::Failed(err)),
            Err(_) => Err(CallbackError::Timeout(CALLBACK_TIMEOUT)),
        }
    }
}

/// How long a callback's target has to answer.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a callback was not delivered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallbackError {
    /// The URL names an address outbound traffic may not reach; retrying
    /// cannot change that.
    #[error("the callback's address is not one outbound traffic may reach")]
    Refused,
    /// The target could not be reached; worth retrying.
    #[error("callback request failed: {0}")]
    Failed(#[source] reqwest::Error),
    /// The target did not answer in time; worth retrying.
    #[error("the callback did not answer within {0:?}")]
    Timeout(Duration),
}

impl Egress for HttpEgress {
    fn send(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        let timeout = req.timeout;
        self.handle
            .block_on(async { tokio::time::timeout(timeout, self.exchange(req)).await })
            .map_err(|_| EgressError::Timeout(timeout))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hosts_files_parse() {
        let h = parse_hosts("# fixed\n127.0.0.1 local.test Rebind.TEST\n93.184.215.14 rebind.test\n\n").unwrap();
        assert_eq!(h["local.test"], vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!(h["rebind.test"].len(), 2);
        assert!(parse_hosts("not-an-ip name").is_err());
    }

    #[tokio::test]
    async fn names_resolve_to_permitted_addresses_only() {
        let hosts = parse_hosts("127.0.0.1 local.test\n93.184.215.14 rebind.test\n127.0.0.1 rebind.test").unwrap();
        let resolver = VettedResolver { policy: Arc::default(), hosts: Arc::new(hosts) };
        let got: Vec<SocketAddr> = resolver.resolve("rebind.test".parse().unwrap()).await.unwrap().collect();
        assert_eq!(got, vec!["93.184.215.14:0".parse::<SocketAddr>().unwrap()], "the private answer is dropped");
        let err = resolver.resolve("local.test".parse().unwrap()).await.err().unwrap();
        assert!(err.is::<Refused>(), "{err}");
    }
}
