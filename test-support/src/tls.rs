//! An HTTPS server for tests of guests' outbound `https` resources: a
//! throwaway CA (written to a PEM file the worker is told to trust with
//! `--egress-ca-file`) and a certificate for `localhost` signed by it. Every
//! request gets the same plain-text answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use olin_nats_process::certs::ThrowawayCa;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer, pki_types::PrivatePkcs8KeyDer};

/// A running HTTPS server on `localhost`; stopped on drop.
pub struct TlsServer {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl TlsServer {
    /// Starts a server answering every request with `200` and `body`.
    pub async fn start(body: &'static str) -> TlsServer {
        let ca = ThrowawayCa::new("olincloud test CA").expect("CA");
        let (leaf, leaf_key) = ca.issue(&["localhost"]).expect("leaf certificate");

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");

        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind TLS server");
        let addr = listener.local_addr().expect("TLS addr");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(buf.get(..n).unwrap_or_default()),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer { addr, dir, task }
    }

    /// `localhost:<port>`, as an egress allow-list entry.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// `https://localhost:<port>`.
    pub fn origin(&self) -> String {
        format!("https://{}", self.host())
    }

    /// The CA certificate (PEM) to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
