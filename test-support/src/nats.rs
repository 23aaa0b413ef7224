//! A real `nats-server` per test, on a random port with its own JetStream
//! store, killed and deleted on drop (after nats.rs's own test harness).

use olin_cli::nats_process::{NatsProcess, NatsProcessError};
use tempfile::TempDir;

/// A running `nats-server` with JetStream.
pub struct NatsServer {
    process: Option<NatsProcess>,
    port: u16,
    // Dropped after the process: the store is deleted once the server is gone.
    dir: TempDir,
}

fn start(dir: &TempDir, port: i32) -> NatsProcess {
    match NatsProcess::start(dir.path(), port) {
        Ok(p) => p,
        Err(NatsProcessError::NotInstalled) => panic!(
            "nats-server is not installed: `apt-get install -y nats-server` \
             (the integration tests need a real NATS server with JetStream; they never skip)"
        ),
        Err(e) => panic!("cannot start nats-server: {e}"),
    }
}

impl NatsServer {
    /// Starts a server on a random port with a fresh JetStream store.
    ///
    /// # Panics
    /// If `nats-server` is not installed or does not start: tests never skip.
    pub fn start() -> NatsServer {
        let dir = tempfile::Builder::new().prefix("olin-nats-").tempdir().expect("temp dir");
        let process = start(&dir, -1);
        NatsServer { port: process.port(), process: Some(process), dir }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(NatsProcess::pid)
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
        let process = start(&self.dir, i32::from(self.port));
        assert_eq!(process.port(), self.port);
        self.process = Some(process);
    }

    /// Stops the server (it can be started again with [`NatsServer::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
