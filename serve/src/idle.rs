//! The clock of one connection: a request's head must arrive within the
//! header timeout, counted from its first byte (or from the accept, for the
//! first request), while a keep-alive connection may wait longer, the idle
//! timeout, for that first byte.
//!
//! Clients and proxies keep idle connections for up to a minute or more (a
//! cloud load balancer's default is 60 s): a server that closes one first
//! races the request they send on it at that moment, which then fails in
//! transport and, for a POST, cannot be retried safely. hyper has one timer
//! for both (its header read timeout starts as soon as it waits for the next
//! request), so the connection's reads keep this clock instead, and hyper's
//! timer, set to the longer of the two, only backs it up.
//!
//! The phases: `Head` (a head is due: since the accept, or since the first
//! byte after an idle spell), `Busy` (a request is being answered: its body
//! has the body timeout, its run the call's), `Idle` (the last response has
//! been sent). The service marks `Busy` when hyper hands it a request and
//! `Idle` when the response body is done or dropped.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A head is due: the time its wait started.
    Head(Instant),
    /// A request is being answered.
    Busy,
    /// Waiting for the next request since then.
    Idle(Instant),
}

/// The phase of one connection, shared by its reads and its service.
#[derive(Debug)]
pub(crate) struct Clock {
    phase: Mutex<Phase>,
    header: Duration,
    idle: Duration,
}

impl Clock {
    /// A new connection: its first head is due within `header`.
    pub(crate) fn new(header: Duration, idle: Duration) -> Arc<Clock> {
        Arc::new(Clock { phase: Mutex::new(Phase::Head(Instant::now())), header, idle })
    }

    /// hyper has a request: no deadline until it is answered.
    pub(crate) fn busy(&self) {
        *self.phase.lock() = Phase::Busy;
    }

    /// The response is sent: the next request may take the idle timeout.
    pub(crate) fn idle(&self) {
        *self.phase.lock() = Phase::Idle(Instant::now());
    }

    /// Bytes arrived: after an idle spell, they start a head.
    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock();
        if matches!(*phase, Phase::Idle(_)) {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// When the connection is out of time, if it can be.
    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Head(since) => Some(since + self.header),
            Phase::Idle(since) => Some(since + self.idle),
            Phase::Busy => None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection's IO whose reads end in `TimedOut` once its clock says so.
    pub(crate) struct ClockedIo<T> {
        #[pin]
        inner: T,
        clock: Arc<Clock>,
        // Boxed: hyper wants the connection's IO `Unpin`.
        timer: Pin<Box<Sleep>>,
    }
}

impl<T> ClockedIo<T> {
    pub(crate) fn new(inner: T, clock: Arc<Clock>) -> Self {
        let first = clock.deadline().unwrap_or_else(|| Instant::now() + clock.idle);
        ClockedIo { inner, clock, timer: Box::pin(tokio::time::sleep_until(first)) }
    }
}

impl<T: AsyncRead> AsyncRead for ClockedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        match this.inner.poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_arrived();
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        // Nothing to read now: is the connection out of time, and if not,
        // wake up when it will be.
        let Some(deadline) = this.clock.deadline() else { return Poll::Pending };
        let out_of_time = || Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request head in time")));
        if Instant::now() >= deadline {
            return out_of_time();
        }
        if this.timer.deadline() != deadline {
            this.timer.as_mut().reset(deadline);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => out_of_time(),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite> AsyncWrite for ClockedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

pin_project_lite::pin_project! {
    /// A response body that tells its connection's clock when it is done.
    pub(crate) struct ClockedBody<B> {
        #[pin]
        inner: B,
        clock: Arc<Clock>,
        done: bool,
    }

    impl<B> PinnedDrop for ClockedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.done {
                this.clock.idle();
            }
        }
    }
}

impl<B> ClockedBody<B> {
    pub(crate) fn new(inner: B, clock: Arc<Clock>) -> Self {
        ClockedBody { inner, clock, done: false }
    }
}

impl<B: Body<Data = Bytes>> Body for ClockedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) && !*this.done {
            *this.done = true;
            this.clock.idle();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
