//! HTTP serving for the services that face the internet (the gateway, the
//! control API and their admin listeners), with the bounds an anonymous
//! client must not be able to lift (DESIGN.md section 9):
//!
//! - **header timeout**: a client has this long to send a request's head,
//!   from the accept or from the head's first byte;
//! - **idle timeout**: a keep-alive connection waits this long for its next
//!   request (longer than the proxies and clients in front keep theirs, so
//!   that they, not the server, close it: see `idle`);
//! - **body timeout**: a request's body must have arrived this long after
//!   its head, however slowly it trickles (a read past it fails, and the
//!   handler answers as for a broken body);
//! - **connection cap**: past it, a new connection is answered `503` with
//!   `Retry-After` at once and closed, without reading it;
//! - **graceful drain**: on shutdown, no new connections; requests in flight
//!   finish, idle connections close.
//!
//! HTTP/1.1 only: the services sit behind an ingress or load balancer, and
//! cleartext HTTP/2 with prior knowledge was one more protocol to bound.
//!
//! Request bodies are read into memory by [`read_body`], within the
//! request's cap and a [`BodyBudget`] shared by every request of a server.
//!
//! Warp's own server has none of these (warp 0.4 starts hyper without a
//! timer), so services hand [`serve`] a `warp::service(filter)`. It puts the
//! peer's address in each request as [`Peer`]; [`remote`] reads it back.

mod body;
mod idle;

pub use body::{BodyBudget, BodyCharge, ReadError, read_body};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};
use warp::Filter;

/// The bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Time to send a request's head, from its first byte (or the accept).
    pub header_timeout: Duration,
    /// How long a keep-alive connection waits for its next request.
    pub idle_timeout: Duration,
    /// Time for a request's body to arrive after its head.
    pub body_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Bounds {
    /// Defaults for a public listener.
    pub const PUBLIC: Bounds = Bounds {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(75),
        body_timeout: Duration::from_secs(60),
        max_connections: 10_000,
    };

    /// Defaults for an admin listener (probes and a scraper).
    pub const ADMIN: Bounds = Bounds {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(75),
        body_timeout: Duration::from_secs(10),
        max_connections: 64,
    };
}

/// Counters of one server, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections refused because the cap was reached.
    pub refused: AtomicU64,
    /// Request bodies cut off by the body timeout.
    pub body_timeouts: AtomicU64,
}

/// The address of the peer of a request's connection, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// A warp filter extracting the peer's address (`warp::addr::remote` reads
/// warp's own server's, which [`serve`] replaces).
pub fn remote() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<Peer>().map(|peer: Option<Peer>| peer.map(|Peer(addr)| addr))
}

/// The answer to a connection over the cap, written without reading it.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Serves an admin listener (health, readiness, metrics) with
/// [`Bounds::ADMIN`] in a task of its own, until `stop` turns true: what the
/// gateway and the control plane both run beside their public listener.
pub fn spawn_admin<S, B>(
    listener: TcpListener,
    service: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()>
where
    S: tower_service::Service<http::Request<TimedBody>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(serve(listener, service, Bounds::ADMIN, Arc::default(), async move {
        let _ = stop.wait_for(|s| *s).await;
    }))
}

/// Serves `service` on `listener` within `bounds` until `shutdown`
/// resolves, then drains. `stats` is updated as connections come and go.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    bounds: Bounds,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) where
    S: tower_service::Service<http::Request<TimedBody>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slots = Arc::new(Semaphore::new(bounds.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's header timer starts when it waits for a head, idle or not:
    // only a backstop here, each connection's `idle::Clock` keeps time.
    let backstop = bounds.header_timeout.max(bounds.idle_timeout);
    builder.timer(TokioTimer::new()).header_read_timeout(backstop).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Out of file descriptors and the like: back off, go on.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            // Best effort and never waiting: the socket's buffer takes it.
            let _ = stream.try_write(BUSY);
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (svc, conn_stats, body_timeout) = (service.clone(), stats.clone(), bounds.body_timeout);
        let clock = idle::Clock::new(bounds.header_timeout, bounds.idle_timeout);
        let io = idle::ClockedIo::new(stream, clock.clone());
        let handler = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            clock.busy();
            req.extensions_mut().insert(Peer(addr));
            let req = req.map(|body| TimedBody::new(body, body_timeout, conn_stats.clone()));
            let (mut svc, clock) = (svc.clone(), clock.clone());
            async move {
                let resp = svc.call(req).await?;
                Ok::<_, Infallible>(resp.map(|body| idle::ClockedBody::new(body, clock)))
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), handler));
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                debug!(%err, peer = %addr, "connection ended");
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

pin_project_lite::pin_project! {
    /// A request body that fails once its time is up.
    pub struct TimedBody {
        #[pin]
        inner: Incoming,
        #[pin]
        deadline: tokio::time::Sleep,
        stats: Arc<Stats>,
    }
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration, stats: Arc<Stats>) -> Self {
        TimedBody { inner, deadline: tokio::time::sleep(timeout), stats }
    }
}

/// The error a [`TimedBody`] ends with when its time is up.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this.deadline.poll(cx) {
                Poll::Ready(()) => {
                    this.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
                    Poll::Ready(Some(Err(Box::new(BodyTimeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Encoded at scrape time under the registry's prefix (`olin_gateway_...`).
impl prometheus_client::collector::Collector for Stats {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> std::fmt::Result {
        use olin_telemetry::metrics::{counter, gauge};
        let n = |v: &AtomicU64| v.load(Ordering::Relaxed);
        gauge(&mut encoder, "connections_open", "Client connections open now.", n(&self.open))?;
        counter(&mut encoder, "connections_accepted", "Client connections accepted.", n(&self.accepted))?;
        counter(
            &mut encoder,
            "connections_refused",
            "Client connections answered 503 at once: the connection cap was reached.",
            n(&self.refused),
        )?;
        counter(
            &mut encoder,
            "request_body_timeouts",
            "Request bodies that did not arrive within the body timeout.",
            n(&self.body_timeouts),
        )
    }
}
