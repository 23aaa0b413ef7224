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

/// Asks `url` with a fresh connection every 100 ms for `period`, asserting
/// each answer is `status`; the task's result is how many were answered.
pub fn keep_asking(url: String, status: u16, period: Duration) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        // A fresh connection per request: an idle pooled one may be closed by a header timeout.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
        let started = Instant::now();
        let mut answered = 0;
        while started.elapsed() < period {
            let r = http.get(&url).send().await.expect("answered");
            assert_eq!(r.status().as_u16(), status, "{url} answered while others stall");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answered
    })
}
