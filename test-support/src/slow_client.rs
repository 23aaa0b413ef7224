//! Clients that misbehave on purpose, for the servers' bounds: connections
//! that send half a request and then nothing, and a check that the server
//! closed them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` connections to `addr`, each sending half a request line and
/// then nothing.
pub async fn half_sent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /f/hello HT").await.expect("write half a request line");
        conns.push(c);
    }
    conns
}

/// Opens `n` connections to `addr` that send nothing at all.
pub async fn idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(TcpStream::connect(addr).await.expect("connect"));
    }
    conns
}

/// Waits until the server has closed every connection (a read sees the end
/// or an error, whatever it wrote first), or `within` passes; returns how
/// many are still open then.
pub async fn still_open_after(conns: Vec<TcpStream>, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let waits = conns.into_iter().map(|mut c| async move {
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, c.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return false,
                Ok(Ok(_)) => continue,
                Err(_) => return true,
            }
        }
    });
    futures::future::join_all(waits).await.into_iter().filter(|open| *open).count()
}

/// What a fresh connection to `addr` is answered without sending anything
/// (an over-the-cap server answers at once; a healthy one waits).
pub async fn unprompted_answer(addr: SocketAddr, wait: Duration) -> String {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
