//! A three-node NATS cluster on loopback, as production runs NATS: every
//! node a real `nats-server` with JetStream, TLS and the per-role users of
//! a single [`NatsServer`](crate::NatsServer), routed to the others. Nodes
//! can be killed (`kill -9`) and restarted on the same ports and store.

use std::time::Duration;

use olin_nats_process::{ClusterNode, NatsProcess, NatsProcessError, NatsSecurity};
use olin_proto::access::Role;
use tempfile::TempDir;

/// One node: its process while it runs, and what restarts it.
struct Node {
    process: Option<NatsProcess>,
    port: u16,
    cluster: ClusterNode,
    dir: std::path::PathBuf,
}

/// A running cluster; every node is killed and its store deleted on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    security: NatsSecurity,
    url: String,
    // Dropped after the processes.
    _dir: TempDir,
}

fn start(node: &Node, security: &NatsSecurity) -> NatsProcess {
    let started = NatsProcess::start_node(
        &node.dir,
        i32::from(node.port),
        Some(security),
        olin_nats_process::MAX_PAYLOAD,
        Some(&node.cluster),
    );
    match started {
        Ok(p) => p,
        Err(NatsProcessError::NotInstalled) => panic!("nats-server is not installed: `apt-get install -y nats-server`"),
        Err(e) => panic!("cannot start cluster node {}: {e}", node.cluster.name),
    }
}

impl NatsCluster {
    /// Starts `n` nodes and waits until JetStream has a meta leader (streams
    /// can be created).
    ///
    /// # Panics
    /// If a node does not start, or JetStream is not available in 30 s.
    pub async fn start(n: usize) -> NatsCluster {
        let dir = tempfile::Builder::new().prefix("olin-nats-cluster-").tempdir().expect("temp dir");
        let security = NatsSecurity::generate(&dir.path().join("auth")).expect("NATS certificates and credentials");
        let plan = olin_nats_process::loopback_cluster("olin-test", n).expect("free ports for the cluster");
        let nodes: Vec<Node> = plan
            .into_iter()
            .map(|(port, cluster)| Node { process: None, port, dir: dir.path().join(&cluster.name), cluster })
            .collect();
        let url = nodes.iter().map(|n| format!("tls://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",");
        crate::nats::register(&url, &security);
        for node in &nodes {
            crate::nats::register(&format!("tls://127.0.0.1:{}", node.port), &security);
        }
        let mut cluster = NatsCluster { nodes, security, url, _dir: dir };
        for i in 0..n {
            let process = start(&cluster.nodes[i], &cluster.security);
            cluster.nodes[i].process = Some(process);
        }
        cluster.wait_for_jetstream().await;
        cluster
    }

    /// Every node's client URL, comma-separated: what services connect to.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never: [`NatsCluster::start`]
    /// starts at least one).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The server name of node `i` (`n0`, `n1`, ...).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].cluster.name
    }

    /// A client with the operator's credential.
    pub async fn client(&self) -> async_nats::Client {
        crate::nats::connect_as(&self.url, Role::Operator).await
    }

    /// The process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].process.as_ref().map(NatsProcess::pid)
    }

    /// Bytes under every node's directory (JetStream stores and logs).
    pub fn store_bytes(&self) -> u64 {
        fn size(p: &std::path::Path) -> u64 {
            let Ok(meta) = std::fs::symlink_metadata(p) else { return 0 };
            if !meta.is_dir() {
                return meta.len();
            }
            std::fs::read_dir(p).map_or(0, |d| d.flatten().map(|e| size(&e.path())).sum())
        }
        self.nodes.iter().map(|n| size(&n.dir)).sum()
    }

    /// `kill -9` of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill();
        }
    }

    /// Starts node `i` again on its ports and store (it rejoins and catches
    /// up with the others).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let process = start(&self.nodes[i], &self.security);
        self.nodes[i].process = Some(process);
    }

    /// The node that leads `stream` now.
    ///
    /// # Panics
    /// If the stream has no leader within 10 s.
    pub async fn leader_of(&self, stream: &str) -> usize {
        let js = async_nats::jetstream::new(self.client().await);
        let name = crate::wait::until(&format!("{stream} has a leader"), Duration::from_secs(10), || async {
            let mut s = js.get_stream(stream).await.ok()?;
            s.info().await.ok()?.cluster.as_ref()?.leader.clone()
        })
        .await;
        self.nodes.iter().position(|n| n.cluster.name == name).unwrap_or_else(|| panic!("unknown leader {name}"))
    }

    /// Waits until every replica of `stream` is online and caught up (a
    /// restarted node has rejoined).
    ///
    /// # Panics
    /// If that takes more than 30 s.
    pub async fn wait_for_replicas(&self, stream: &str) {
        let js = async_nats::jetstream::new(self.client().await);
        let others = self.nodes.len() - 1;
        crate::wait::until_true(&format!("every replica of {stream} is current"), Duration::from_secs(30), || async {
            let Ok(mut s) = js.get_stream(stream).await else { return false };
            let Ok(info) = s.info().await else { return false };
            info.cluster
                .as_ref()
                .is_some_and(|c| c.leader.is_some() && c.replicas.len() == others && c.replicas.iter().all(caught_up))
        })
        .await;
    }

    /// Waits until JetStream can place a stream on every node.
    async fn wait_for_jetstream(&self) {
        let client = self.client().await;
        if let Err(e) = olin_nats_process::wait_for_jetstream(&client, self.nodes.len(), Duration::from_secs(30)).await
        {
            panic!("{e}; logs:\n{}", self.logs());
        }
    }

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(node.dir.join("nats.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!(
                "--- {}\n{}\n",
                node.cluster.name,
                lines[lines.len().saturating_sub(40)..].join("\n")
            ));
        }
        out
    }
}

/// Whether a follower has caught up: `current` (at the leader's commit
/// index when asked), or online and a few operations behind. Under steady
/// load a follower is rarely at the exact commit index at the moment the
/// leader is asked, so `current` alone can stay false for long after the
/// replica has caught up (seen in CI under the full suite's load).
fn caught_up(r: &async_nats::jetstream::stream::PeerInfo) -> bool {
    !r.offline && (r.current || (r.lag.is_some_and(|lag| lag <= 64) && r.active < Duration::from_secs(2)))
}
