//! Runs `nats-server` as a child process with JetStream on a random port,
//! reading the port back from its log. Used by `olinctl dev` and the tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use thiserror::Error;

/// Largest message accepted: a 10 MiB body plus framing.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// The command that installs `nats-server` on Debian.
pub const INSTALL_HINT: &str = "apt-get install -y nats-server";

/// `nats-server` could not be started.
#[derive(Debug, Error)]
pub enum NatsProcessError {
    /// The binary is not on PATH.
    #[error("nats-server is not installed or not on PATH; install it with `{INSTALL_HINT}`")]
    NotInstalled,
    /// It started but never said where it listens.
    #[error("nats-server did not report its client port within {0:?}")]
    NoPort(Duration),
    /// Any other I/O failure.
    #[error("starting nats-server: {0}")]
    Io(#[from] std::io::Error),
}

/// A running `nats-server`; killed on drop.
pub struct NatsProcess {
    child: Child,
    port: u16,
    store_dir: PathBuf,
}

impl NatsProcess {
    /// Starts `nats-server -a 127.0.0.1 -p <port> -js -sd <dir>/jetstream`;
    /// `port` -1 picks a random free port.
    ///
    /// # Errors
    /// [`NatsProcessError`] if the binary is missing or does not start.
    pub fn start(dir: &Path, port: i32) -> Result<NatsProcess, NatsProcessError> {
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("nats.conf");
        std::fs::write(&conf, format!("max_payload: {MAX_PAYLOAD}\n"))?;
        let store_dir = dir.join("jetstream");
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store_dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => NatsProcessError::NotInstalled,
                _ => NatsProcessError::Io(e),
            })?;
        let stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep reading to the end so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                    let port = rest.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                    if let (Some(tx), Some(port)) = (tx.take(), port) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let wait = Duration::from_secs(20);
        match rx.recv_timeout(wait) {
            Ok(port) => Ok(NatsProcess { child, port, store_dir }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(NatsProcessError::NoPort(wait))
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
