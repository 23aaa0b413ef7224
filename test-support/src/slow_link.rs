//! A TCP link to a server that delays everything the server sends, for
//! tests where an answer must arrive late every time (a JetStream publish
//! ack after the publisher's timeout), whatever the machine's speed.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Listens on `127.0.0.1:0` and carries each connection to `upstream`:
/// client to server at once, server to client `delay` later, in order.
/// Dropping it closes every connection it carries.
/// Made by [`crate::NatsServer::slow_link`].
pub struct SlowLink {
    url: String,
    task: JoinHandle<()>,
}

impl SlowLink {
    /// Starts carrying connections to `upstream`; clients use `scheme://`.
    pub(crate) async fn start(upstream: SocketAddr, scheme: &str, delay: Duration) -> SlowLink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the slow link");
        let addr = listener.local_addr().expect("the slow link's address");
        let task = tokio::spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                links.spawn(carry(client, upstream, delay));
            }
        });
        SlowLink { url: format!("{scheme}://{addr}"), task }
    }

    /// Where clients connect.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.task.abort();
        crate::nats::forget(&self.url);
    }
}

async fn carry(client: TcpStream, upstream: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let forward = async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    };
    let (late, mut due) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let read_back = async move {
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(n @ 1..) = from_server.read(&mut buf).await {
            if late.send((Instant::now() + delay, Bytes::copy_from_slice(&buf[..n]))).is_err() {
                return;
            }
        }
    };
    let write_back = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to_client.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(forward, read_back, write_back);
}
