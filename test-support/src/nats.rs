//! A real `nats-server` per test, on a random port with its own JetStream
//! store, killed and deleted on drop (after nats.rs's own test harness).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

/// Largest message the test servers accept: a 10 MiB body plus framing.
const MAX_PAYLOAD: usize = 16 << 20;

/// A running `nats-server` with JetStream.
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl NatsServer {
    /// Starts a server on a random port with a fresh JetStream store.
    ///
    /// # Panics
    /// If `nats-server` is not installed or does not start: tests never skip.
    pub fn start() -> NatsServer {
        let dir = tempfile::Builder::new().prefix("olin-nats-").tempdir().expect("temp dir");
        let (child, port) = spawn(&dir, -1);
        NatsServer { child: Some(child), dir, port }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connected client.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.expect("connect to the test nats-server")
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let (child, port) = spawn(&self.dir, i32::from(self.port));
        self.child = Some(child);
        assert_eq!(port, self.port);
    }

    /// Stops the server (it can be started again with [`NatsServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(dir: &TempDir, port: i32) -> (Child, u16) {
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, format!("max_payload: {MAX_PAYLOAD}\n")).expect("write nats.conf");
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path().join("jetstream"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start nats-server ({e}): install it with `apt-get install -y nats-server` \
                 (the integration tests need a real NATS server with JetStream)"
            )
        });
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                let port = rest.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                if let (Some(tx), Some(port)) = (tx.take(), port) {
                    let _ = tx.send(port);
                }
            }
            // Keep draining so the server never blocks on a full pipe.
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(port) => (child, port),
        Err(_) => {
            let _ = child.kill();
            panic!("nats-server did not report its port within 20 s");
        }
    }
}
