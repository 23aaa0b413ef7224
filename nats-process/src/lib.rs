//! Runs `nats-server` as a child process with JetStream on a random port,
//! reading the port back from its log. Used by `olinctl dev` and the tests
//! (its own crate, so the test harness does not build the whole CLI).
//!
//! # Layout
//! - here: [`NatsProcess`], [`NatsSecurity`], [`ClusterNode`], [`write_private`].
//! - [`certs`]: a throwaway CA for local TLS servers.
//!
//! With a [`NatsSecurity`] the server runs as production does: TLS with a
//! certificate from a throwaway CA, one user per platform role with the
//! permissions of `olin_proto::access`, and no anonymous access.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::certs::ThrowawayCa;
use olin_nats::connect::NatsArgs;
use olin_proto::access::{self, Role};
use rand::RngCore as _;
use thiserror::Error;

pub mod certs;

/// Writes `bytes` to `path` readable by its owner only (keys, passwords),
/// through a temporary file renamed into place.
///
/// # Errors
/// If the directory or the file cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes).and_then(|()| file.sync_all())?;
    std::fs::rename(&tmp, path)
}

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
    /// The CA or server certificate could not be made.
    #[error("making the NATS TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Any other I/O failure.
    #[error("starting nats-server: {0}")]
    Io(#[from] std::io::Error),
}

/// The TLS material and role credentials of a secured server, kept in a
/// directory readable only by its owner.
#[derive(Debug, Clone)]
pub struct NatsSecurity {
    dir: PathBuf,
    passwords: BTreeMap<Role, String>,
}

impl NatsSecurity {
    /// Makes a CA, a server certificate for `127.0.0.1` and `localhost`
    /// signed by it, and a random password per role, under `dir`.
    ///
    /// # Errors
    /// [`NatsProcessError`] if the files cannot be written.
    pub fn generate(dir: &Path) -> Result<NatsSecurity, NatsProcessError> {
        std::fs::create_dir_all(dir)?;
        let ca = ThrowawayCa::new("olincloud NATS CA")?;
        let (server, server_key) = ca.issue(&["localhost", "127.0.0.1"])?;
        std::fs::write(dir.join("ca.pem"), ca.pem())?;
        std::fs::write(dir.join("server.pem"), server.pem())?;
        write_private(&dir.join("server.key"), server_key.serialize_pem().as_bytes())?;
        let passwords = Role::ALL
            .into_iter()
            .map(|role| {
                let mut raw = [0u8; 24];
                rand::thread_rng().fill_bytes(&mut raw);
                (role, hex::encode(raw))
            })
            .collect();
        let security = NatsSecurity { dir: dir.to_owned(), passwords };
        for role in Role::ALL {
            let env = format!(
                "NATS_USER={}\nNATS_PASSWORD={}\nNATS_TLS_CA={}\n",
                role.user(),
                security.password(role),
                security.ca().display()
            );
            write_private(&security.env_file(role), env.as_bytes())?;
        }
        Ok(security)
    }

    /// The CA certificate clients verify the server against.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The generated password of `role`.
    pub fn password(&self, role: Role) -> &str {
        self.passwords.get(&role).map_or("", String::as_str)
    }

    /// A file of `NATS_USER`, `NATS_PASSWORD` and `NATS_TLS_CA` for `role`,
    /// to `source` before running `olinctl dead-letters` or a service.
    pub fn env_file(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.env", role.user()))
    }

    /// The connection settings of `role` to the server at `url`.
    pub fn args(&self, url: &str, role: Role) -> NatsArgs {
        NatsArgs::new(url).with_user(role.user(), self.password(role)).with_tls_ca(self.ca())
    }

    /// The server's `tls` and `authorization` configuration.
    fn conf(&self) -> String {
        let users: Vec<_> = Role::ALL.into_iter().map(|r| (r, access::Password::Literal(self.password(r)))).collect();
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  timeout: 5\n}}\n{}",
            self.dir.join("server.pem").display().to_string(),
            self.dir.join("server.key").display().to_string(),
            access::authorization_conf(&users)
        )
    }
}

/// The cluster settings of one node of a NATS cluster on loopback (tests,
/// `olinctl dev` trials): JetStream needs a unique server name per node,
/// and each node routes to the others.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    /// This node's server name, unique in the cluster.
    pub name: String,
    /// The cluster's name, the same on every node.
    pub cluster: String,
    /// The port this node takes routes on.
    pub route_port: u16,
    /// The route ports of the other nodes.
    pub peers: Vec<u16>,
}

impl ClusterNode {
    /// The node's `server_name` and `cluster` configuration. Routes are
    /// plain TCP on loopback: this is for one machine, not for production
    /// (where the Kubernetes manifests configure route TLS).
    fn conf(&self) -> String {
        let routes: Vec<String> = self.peers.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
        format!(
            "server_name: {:?}\ncluster {{\n  name: {:?}\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
            self.name,
            self.cluster,
            self.route_port,
            routes.join(", ")
        )
    }
}

/// The plan of an `n`-node cluster on loopback: each node's client port and
/// cluster settings (names `n0`, `n1`, ...; each routes to the others).
/// The ports are free when planned (bound and released), so a node that
/// restarts finds its own again.
///
/// # Errors
/// If no free port can be had.
pub fn loopback_cluster(name: &str, n: usize) -> std::io::Result<Vec<(u16, ClusterNode)>> {
    let free = || -> std::io::Result<u16> { Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
    let routes = (0..n).map(|_| free()).collect::<std::io::Result<Vec<u16>>>()?;
    (0..n)
        .map(|i| {
            let node = ClusterNode {
                name: format!("n{i}"),
                cluster: name.to_owned(),
                route_port: routes[i],
                peers: routes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect(),
            };
            Ok((free()?, node))
        })
        .collect()
}

/// JetStream of a cluster that was not ready in time.
#[derive(Debug, Error)]
#[error("the NATS cluster's JetStream could not place a {replicas}-replica stream within {within:?}: {last}")]
pub struct ClusterNotReady {
    /// Replicas asked for.
    pub replicas: usize,
    /// How long it was given.
    pub within: Duration,
    /// The last refusal.
    pub last: String,
}

/// Waits until the JetStream of a freshly started cluster can place a
/// stream with `replicas` replicas (it elects its leaders first), by making
/// and removing a probe stream: what the services will do next.
///
/// # Errors
/// [`ClusterNotReady`] after `within`.
pub async fn wait_for_jetstream(
    client: &async_nats::Client,
    replicas: usize,
    within: Duration,
) -> Result<(), ClusterNotReady> {
    const PROBE: &str = "OLIN_CLUSTER_PROBE";
    let js = async_nats::jetstream::new(client.clone());
    let deadline = tokio::time::Instant::now() + within;
    let mut last = String::from("never answered");
    while tokio::time::Instant::now() < deadline {
        let probe = async_nats::jetstream::stream::Config {
            name: PROBE.into(),
            subjects: vec!["olin.cluster-probe".into()],
            num_replicas: replicas,
            ..Default::default()
        };
        match js.get_or_create_stream(probe).await {
            Ok(_) => {
                let _ = js.delete_stream(PROBE).await;
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ClusterNotReady { replicas, within, last })
}

/// A running `nats-server`; killed on drop.
pub struct NatsProcess {
    child: Child,
    port: u16,
    store_dir: PathBuf,
    tls: bool,
}

impl NatsProcess {
    /// Starts `nats-server -a 127.0.0.1 -p <port> -js -sd <dir>/jetstream`;
    /// `port` -1 picks a random free port. With `security`, clients must
    /// use TLS and a role's credential.
    ///
    /// # Errors
    /// [`NatsProcessError`] if the binary is missing or does not start.
    pub fn start(dir: &Path, port: i32, security: Option<&NatsSecurity>) -> Result<NatsProcess, NatsProcessError> {
        NatsProcess::start_with(dir, port, security, MAX_PAYLOAD)
    }

    /// As [`NatsProcess::start`], with the largest message the server takes
    /// (`max_payload`) set to `max_payload` bytes.
    ///
    /// # Errors
    /// [`NatsProcessError`] if the binary is missing or does not start.
    pub fn start_with(
        dir: &Path,
        port: i32,
        security: Option<&NatsSecurity>,
        max_payload: usize,
    ) -> Result<NatsProcess, NatsProcessError> {
        NatsProcess::start_node(dir, port, security, max_payload, None)
    }

    /// As [`NatsProcess::start_with`], as one node of a cluster when
    /// `cluster` is given.
    ///
    /// # Errors
    /// [`NatsProcessError`] if the binary is missing or does not start.
    pub fn start_node(
        dir: &Path,
        port: i32,
        security: Option<&NatsSecurity>,
        max_payload: usize,
        cluster: Option<&ClusterNode>,
    ) -> Result<NatsProcess, NatsProcessError> {
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("nats.conf");
        let secured = security.map(NatsSecurity::conf).unwrap_or_default();
        let clustered = cluster.map(ClusterNode::conf).unwrap_or_default();
        write_private(&conf, format!("max_payload: {max_payload}\n{clustered}{secured}").as_bytes())?;
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
        // The server's log, for whoever needs to know what it did.
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("nats.log")).ok();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut tx = Some(tx);
            // Keep reading to the end so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
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
            Ok(port) => Ok(NatsProcess { child, port, store_dir, tls: security.is_some() }),
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

    /// `tls://127.0.0.1:<port>` when secured, `nats://...` otherwise.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
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
