//! Worker configuration: every flag has an environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use olin::Limits;

use olin_nats::topology::TopologyArgs;

use crate::admission;
use olin_module_store::ModuleStoreArgs;

/// Default execution slots per core: guests are short, so a slot mostly waits
/// on the queue's round trips. On 2 cores, 8 slots served about 4% more
/// calls than 16 (bench/README.md), and 2 cannot cover the round trips.
pub const SLOTS_PER_CORE: usize = 4;

/// `olin-worker` settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "olin-worker", version, about = "Runs Olincloud functions pulled from NATS JetStream")]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub nats: olin_nats::connect::NatsArgs,
    /// This worker's id (default: a fresh UUID). Reported to guests as WORKER_ID.
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,
    /// Guests run at once (default: four per core). More slots than cores hide
    /// the queue's round trips; wall-clock limits still bound every run.
    #[arg(long, env = "WORKER_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Bytes of a guest's linear memory kept resident between calls, in KiB:
    /// each slot keeps its memory's reservation for the next call, zeroes
    /// up to this much in place and hands the rest back to the kernel.
    /// 0 hands every page back (each call then faults its pages in afresh).
    #[arg(long, env = "WORKER_MEMORY_POOL_RESIDENT_KIB", default_value_t = 1024)]
    pub memory_pool_resident_kib: u64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "WORKER_LISTEN", default_value = "0.0.0.0:9091")]
    pub listen: SocketAddr,
    /// Default fuel per call when the function sets none.
    #[arg(long, env = "WORKER_DEFAULT_FUEL", default_value_t = Limits::DEFAULT.fuel)]
    pub default_fuel: u64,
    /// Default memory cap per call, in MiB.
    #[arg(long, env = "WORKER_DEFAULT_MEMORY_MIB", default_value_t = Limits::DEFAULT.memory_bytes >> 20)]
    pub default_memory_mib: u64,
    /// Default wall-clock limit per call, in milliseconds.
    #[arg(long, env = "WORKER_DEFAULT_WALL_MS", default_value_t = Limits::DEFAULT.wall.as_millis() as u64)]
    pub default_wall_ms: u64,
    /// Largest wall-clock limit any function may ask for, in milliseconds.
    #[arg(long, env = "WORKER_MAX_WALL_MS", default_value_t = Limits::MAXIMUM.wall.as_millis() as u64)]
    pub max_wall_ms: u64,
    /// Largest memory cap any function may ask for, in MiB.
    #[arg(long, env = "WORKER_MAX_MEMORY_MIB", default_value_t = Limits::MAXIMUM.memory_bytes >> 20)]
    pub max_memory_mib: u64,
    /// Memory all running calls may reserve together, in MiB: each call
    /// reserves its memory cap, host budget and output cap before it runs,
    /// and waits (unpulled work stays in the queue) while they do not fit.
    /// Default: the cgroup's memory limit (else the machine's memory), less
    /// the module cache and 256 MiB for the process itself.
    #[arg(long, env = "WORKER_MEMORY_BUDGET_MIB")]
    pub memory_budget_mib: Option<u64>,
    /// Default host budget per call, in MiB: what the worker may keep for a
    /// call outside its linear memory (outbound HTTP buffers, logs, accounting).
    #[arg(long, env = "WORKER_DEFAULT_HOST_BUDGET_MIB", default_value_t = Limits::DEFAULT.host_budget_bytes >> 20)]
    pub default_host_budget_mib: u64,
    /// Largest host budget any function may ask for, in MiB.
    #[arg(long, env = "WORKER_MAX_HOST_BUDGET_MIB", default_value_t = Limits::MAXIMUM.host_budget_bytes >> 20)]
    pub max_host_budget_mib: u64,
    /// Directory for compiled artifacts, kept across restarts (none: memory only).
    #[arg(long, env = "WORKER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Disk budget of compiled artifacts in the cache directory, in MiB
    /// (least recently used are deleted).
    #[arg(long, env = "WORKER_CACHE_DISK_MIB", default_value_t = 2048)]
    pub cache_disk_mib: u64,
    /// Key (at least 32 bytes) that authenticates the compiled artifacts in
    /// the cache directory: an artifact is native code the worker runs, so
    /// one that does not verify under this key is deleted and rebuilt. Keep
    /// it in a Secret, apart from the directory. Unset: a random key per
    /// process (artifacts are not reused after a restart).
    #[arg(long, env = "WORKER_CACHE_KEY", hide_env_values = true)]
    pub cache_key: Option<String>,
    /// Share compiled artifacts with the fleet through the module store
    /// (`artifacts/<engine>/<sha256>.art`, sealed with `WORKER_CACHE_KEY`),
    /// so a new worker runs a known module without compiling it. Needs
    /// `WORKER_CACHE_KEY`, the same on every worker, and write access to
    /// the store's `artifacts/` prefix.
    #[arg(long, env = "WORKER_SHARED_ARTIFACTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub shared_artifacts: bool,
    /// Largest shared artifact a worker fetches, in MiB.
    #[arg(long, env = "WORKER_SHARED_ARTIFACT_MAX_MIB", default_value_t = 256)]
    pub shared_artifact_max_mib: u64,
    /// Memory budget of compiled modules, in MiB (least recently used are evicted).
    #[arg(long, env = "WORKER_CACHE_MEMORY_MIB", default_value_t = 512)]
    pub cache_memory_mib: u64,
    /// Execution events of direct calls waiting for JetStream to confirm
    /// them, at most: past it a slot waits before its next call, so a
    /// stream that stores nothing for a while (a leader being elected)
    /// slows the worker down instead of filling its memory (an event is a
    /// few hundred bytes).
    #[arg(long, env = "WORKER_MAX_UNCONFIRMED_EVENTS", default_value_t = 4096)]
    pub max_unconfirmed_events: usize,
    /// How often the consumer backlog exported at `/metrics`
    /// (`olin_worker_consumer_pending`, for autoscalers) is refreshed, in ms.
    #[arg(long, env = "WORKER_BACKLOG_INTERVAL_MS", default_value_t = 5000)]
    pub backlog_interval_ms: u64,
    /// How often the queue is swept for invocations that will never be
    /// answered (their deliveries ran out and the advisory was missed), which
    /// are moved to `OLIN_DEAD`, in ms.
    #[arg(long, env = "WORKER_SWEEP_INTERVAL_MS", default_value_t = 30_000)]
    pub sweep_interval_ms: u64,
    /// Extra CA certificates (a PEM bundle) trusted for guests' `https`
    /// requests besides the system roots (an internal CA, a test CA).
    #[arg(long, env = "WORKER_EGRESS_CA_FILE")]
    pub egress_ca_file: Option<PathBuf>,
    /// CIDRs outbound traffic of functions (their `http(s)` resources and
    /// async callbacks) may reach besides public addresses, comma-separated
    /// (e.g. `10.20.0.0/16` for an internal API functions must call); a `!`
    /// before one denies it even if public or allowed (`!10.20.5.0/24`: the
    /// platform's own services). Everything else that is not public
    /// (loopback, private ranges, link-local and so the cloud metadata
    /// service, ...) is refused.
    #[arg(long, env = "WORKER_EGRESS_ALLOW_CIDRS", default_value = "")]
    pub egress_allow_cidrs: String,
    /// A hosts file (`<address> <name>...` lines) answering names before
    /// DNS, for functions' outbound traffic; its answers are vetted like DNS's.
    #[arg(long, env = "WORKER_EGRESS_HOSTS")]
    pub egress_hosts: Option<PathBuf>,
    /// Keys that open functions' secret values (`id:base64(32 bytes)`,
    /// comma-separated; the keys control seals with, every one still in
    /// use). A call whose secret names a key not here is answered INTERNAL.
    #[arg(long, env = "OLIN_SECRETS_KEYS", hide_env_values = true)]
    pub secrets_keys: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: ModuleStoreArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub topology: TopologyArgs,
}

impl Config {
    /// The defaults of every flag, for embedding (`olinctl dev`) and tests.
    pub fn new(nats_url: &str, store: ModuleStoreArgs) -> Config {
        Config {
            nats: olin_nats::connect::NatsArgs::new(nats_url),
            worker_id: None,
            concurrency: None,
            memory_pool_resident_kib: 1024,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            default_fuel: Limits::DEFAULT.fuel,
            default_memory_mib: Limits::DEFAULT.memory_bytes >> 20,
            default_wall_ms: Limits::DEFAULT.wall.as_millis() as u64,
            max_wall_ms: Limits::MAXIMUM.wall.as_millis() as u64,
            max_memory_mib: Limits::MAXIMUM.memory_bytes >> 20,
            memory_budget_mib: None,
            default_host_budget_mib: Limits::DEFAULT.host_budget_bytes >> 20,
            max_host_budget_mib: Limits::MAXIMUM.host_budget_bytes >> 20,
            cache_dir: None,
            cache_disk_mib: 2048,
            cache_key: None,
            shared_artifacts: true,
            shared_artifact_max_mib: 256,
            cache_memory_mib: 512,
            egress_ca_file: None,
            egress_allow_cidrs: String::new(),
            egress_hosts: None,
            secrets_keys: None,
            max_unconfirmed_events: 4096,
            backlog_interval_ms: 5000,
            sweep_interval_ms: 30_000,
            log_format: "text".to_owned(),
            store,
            topology: TopologyArgs::default(),
        }
    }

    /// The concurrency to use: as set, else [`SLOTS_PER_CORE`] per core.
    pub fn concurrency(&self) -> usize {
        self.concurrency
            .unwrap_or_else(|| SLOTS_PER_CORE * std::thread::available_parallelism().map_or(2, usize::from))
            .max(1)
    }

    /// The memory budget of calls, in bytes: as set, else derived from the
    /// memory the worker may use ([`admission::detect_memory`]).
    pub fn memory_budget(&self) -> u64 {
        match self.memory_budget_mib {
            Some(n) => mib(n),
            None => {
                let total = admission::detect_memory().unwrap_or(4 << 30);
                total.saturating_sub(mib(self.cache_memory_mib).saturating_add(admission::PROCESS_OVERHEAD))
            }
        }
    }

    /// Server default limits.
    pub fn defaults(&self) -> Limits {
        let max = self.maxima();
        Limits {
            fuel: self.default_fuel.min(max.fuel),
            memory_bytes: mib(self.default_memory_mib).min(max.memory_bytes),
            wall: Duration::from_millis(self.default_wall_ms).min(max.wall),
            host_budget_bytes: mib(self.default_host_budget_mib).min(max.host_budget_bytes),
            ..Limits::DEFAULT
        }
    }

    /// Server maxima.
    pub fn maxima(&self) -> Limits {
        Limits {
            memory_bytes: mib(self.max_memory_mib),
            wall: Duration::from_millis(self.max_wall_ms),
            host_budget_bytes: mib(self.max_host_budget_mib),
            ..Limits::MAXIMUM
        }
    }
}

/// `n` MiB in bytes; a count past `u64` saturates instead of wrapping to a
/// small size.
pub(crate) fn mib(n: u64) -> u64 {
    n.saturating_mul(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let store = ModuleStoreArgs {
            url: "file:///tmp/modules".into(),
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
        };
        Config::new("nats://127.0.0.1:4222", store)
    }

    #[test]
    fn concurrency_defaults_to_four_slots_per_core() {
        let mut cfg = config();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        assert_eq!(cfg.concurrency(), SLOTS_PER_CORE * cores);
        cfg.concurrency = Some(3);
        assert_eq!(cfg.concurrency(), 3);
        cfg.concurrency = Some(0);
        assert_eq!(cfg.concurrency(), 1, "at least one slot");
    }

    #[test]
    fn sizes_in_mib_saturate_instead_of_wrapping() {
        assert_eq!(mib(3), 3 << 20);
        // 2^44 + 1 MiB is 2^64 + 1 MiB: shifted, it wrapped to 1 MiB.
        assert_eq!(mib((1 << 44) + 1), u64::MAX);
        let mut cfg = config();
        cfg.max_memory_mib = (1 << 44) + 1;
        cfg.memory_budget_mib = Some(u64::MAX);
        assert_eq!(cfg.maxima().memory_bytes, u64::MAX);
        assert_eq!(cfg.memory_budget(), u64::MAX);
    }
}
