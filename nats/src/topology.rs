//! Idempotent creation of the JetStream topology of DESIGN.md section 3.
//!
//! Each service calls its own entry point at start-up ([`gateway`],
//! [`worker`], [`control`]); the operator's tools and tests may call
//! [`ensure`] for everything. Running one again with the same settings
//! changes nothing. An object's settings are changed only by its owner (the
//! service whose flags decide them, and whose NATS credential may update it,
//! see `olin_proto::access`): the others look it up and create it only if it is
//! missing, so the services can start in any order.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use thiserror::Error;

use olin_proto::subject;

/// Settings of the streams, consumer and buckets. [`Default`] gives the
/// production defaults of DESIGN.md; tests shrink them.
#[derive(Debug, Clone)]
pub struct TopologyConfig {
    /// Most pending invocations before publishes are refused (discard-new).
    pub invocations_max_msgs: i64,
    /// Most pending invocation bytes before publishes are refused.
    pub invocations_max_bytes: i64,
    /// Most pending invocations of one function (its subject), so that one
    /// function cannot fill the queue for everyone: its own callers are
    /// refused first.
    pub invocations_max_msgs_per_function: i64,
    /// Window in which a repeated `Nats-Msg-Id` is dropped as a duplicate.
    pub duplicate_window: Duration,
    /// How long a worker may hold a message without acking or sending progress.
    pub ack_wait: Duration,
    /// Deliveries before a message is dead-lettered.
    pub max_deliver: i64,
    /// How long execution events are kept.
    pub events_max_age: Duration,
    /// How long dead-lettered invocations are kept.
    pub dead_max_age: Duration,
    /// Time-to-live of a worker heartbeat.
    pub worker_ttl: Duration,
    /// Time-to-live of an async result.
    pub results_ttl: Duration,
    /// Most bytes of execution events kept; the oldest go first.
    pub events_max_bytes: i64,
    /// Most bytes of dead letters kept; the oldest go first.
    pub dead_max_bytes: i64,
    /// Most bytes of async results kept (a result may be 10 MiB); past it
    /// the oldest results expire early, so callers cannot fill JetStream.
    pub results_max_bytes: i64,
    /// How long an `OLIN_LIMITS` key lives unwritten: longer than any
    /// concurrency lease (an async call's deadline plus its run).
    pub limits_ttl: Duration,
    /// JetStream replicas of every stream and bucket (3 in a NATS cluster).
    pub replicas: usize,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self {
            invocations_max_msgs: 100_000,
            invocations_max_bytes: 1 << 30,
            invocations_max_msgs_per_function: 10_000,
            duplicate_window: Duration::from_secs(120),
            // Short, so that a worker that hangs (stopped, not dead) loses its
            // calls to others within seconds; a live worker reports progress
            // every half of it, through fetch, compile and runs of up to 5 min.
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
            events_max_age: Duration::from_secs(7 * 24 * 3600),
            dead_max_age: Duration::from_secs(14 * 24 * 3600),
            worker_ttl: Duration::from_secs(10),
            results_ttl: Duration::from_secs(24 * 3600),
            events_max_bytes: 1 << 30,
            dead_max_bytes: 1 << 30,
            results_max_bytes: 2 << 30,
            limits_ttl: Duration::from_secs(2 * 3600),
            replicas: 1,
        }
    }
}

/// The topology settings every data-plane binary takes, with the same flag
/// and environment names everywhere.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyArgs {
    /// Most calls waiting in `OLIN_INVOCATIONS`; more are refused with 503.
    #[arg(long = "queue-max-msgs", env = "OLIN_QUEUE_MAX_MSGS", default_value_t = TopologyArgs::default().queue_max_msgs)]
    pub queue_max_msgs: i64,
    /// Most bytes waiting in `OLIN_INVOCATIONS`; more are refused with 503.
    #[arg(long = "queue-max-bytes", env = "OLIN_QUEUE_MAX_BYTES", default_value_t = TopologyArgs::default().queue_max_bytes)]
    pub queue_max_bytes: i64,
    /// Most calls of one function waiting (or running) in `OLIN_INVOCATIONS`;
    /// more calls of that function are refused with 503, others are not.
    #[arg(
        long = "queue-max-msgs-per-function",
        env = "OLIN_QUEUE_MAX_MSGS_PER_FUNCTION",
        default_value_t = TopologyArgs::default().queue_max_msgs_per_function
    )]
    pub queue_max_msgs_per_function: i64,
    /// How long a worker may hold a call without acking or reporting progress (ms).
    #[arg(long = "ack-wait-ms", env = "OLIN_ACK_WAIT_MS", default_value_t = TopologyArgs::default().ack_wait_ms)]
    pub ack_wait_ms: u64,
    /// Deliveries of a call before it is dead-lettered.
    #[arg(long = "max-deliver", env = "OLIN_MAX_DELIVER", default_value_t = TopologyArgs::default().max_deliver)]
    pub max_deliver: i64,
    /// Most bytes of execution events `OLIN_EVENTS` keeps (oldest dropped).
    #[arg(long = "events-max-bytes", env = "OLIN_EVENTS_MAX_BYTES", default_value_t = TopologyArgs::default().events_max_bytes)]
    pub events_max_bytes: i64,
    /// Most bytes of dead letters `OLIN_DEAD` keeps (oldest dropped).
    #[arg(long = "dead-max-bytes", env = "OLIN_DEAD_MAX_BYTES", default_value_t = TopologyArgs::default().dead_max_bytes)]
    pub dead_max_bytes: i64,
    /// Most bytes of async results `OLIN_RESULTS` keeps (oldest expire early).
    #[arg(long = "results-max-bytes", env = "OLIN_RESULTS_MAX_BYTES", default_value_t = TopologyArgs::default().results_max_bytes)]
    pub results_max_bytes: i64,
    /// JetStream replicas of the streams and buckets (3 in a NATS cluster).
    #[arg(long = "js-replicas", env = "OLIN_JS_REPLICAS", default_value_t = TopologyArgs::default().replicas)]
    pub replicas: usize,
}

impl Default for TopologyArgs {
    fn default() -> Self {
        let c = TopologyConfig::default();
        TopologyArgs {
            queue_max_msgs: c.invocations_max_msgs,
            queue_max_bytes: c.invocations_max_bytes,
            queue_max_msgs_per_function: c.invocations_max_msgs_per_function,
            events_max_bytes: c.events_max_bytes,
            dead_max_bytes: c.dead_max_bytes,
            results_max_bytes: c.results_max_bytes,
            ack_wait_ms: c.ack_wait.as_millis() as u64,
            max_deliver: c.max_deliver,
            replicas: c.replicas,
        }
    }
}

impl From<&TopologyArgs> for TopologyConfig {
    fn from(a: &TopologyArgs) -> Self {
        TopologyConfig {
            invocations_max_msgs: a.queue_max_msgs,
            invocations_max_bytes: a.queue_max_bytes,
            invocations_max_msgs_per_function: a.queue_max_msgs_per_function.max(1),
            events_max_bytes: a.events_max_bytes.max(1 << 20),
            dead_max_bytes: a.dead_max_bytes.max(1 << 20),
            results_max_bytes: a.results_max_bytes.max(16 << 20),
            ack_wait: Duration::from_millis(a.ack_wait_ms.max(100)),
            max_deliver: a.max_deliver.max(1),
            replicas: a.replicas.max(1),
            ..TopologyConfig::default()
        }
    }
}

/// Creating or updating one object of the topology failed.
#[derive(Debug, Error)]
#[error("creating JetStream {what} failed: {source}")]
pub struct TopologyError {
    /// The stream, consumer or bucket.
    pub what: &'static str,
    /// The NATS error.
    #[source]
    pub source: async_nats::Error,
}

fn err<E: Into<async_nats::Error>>(what: &'static str) -> impl FnOnce(E) -> TopologyError {
    move |e| TopologyError { what, source: e.into() }
}

/// Handles to the topology a data-plane service uses.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Stream `OLIN_INVOCATIONS`.
    pub invocations: stream::Stream,
    /// Bucket `OLIN_ROUTES`.
    pub routes: kv::Store,
    /// Bucket `OLIN_WORKERS`.
    pub workers: kv::Store,
    /// Bucket `OLIN_RESULTS`.
    pub results: kv::Store,
    /// Bucket `OLIN_LIMITS`.
    pub limits: kv::Store,
}

/// What a service may do with an object of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Look it up, creating it with these settings only if it is missing.
    Use,
    /// Create it, or update it to these settings.
    Own,
}

/// Creates (or updates) every stream and bucket, idempotently: for the
/// operator's credential (tests, tools), which may change everything.
///
/// # Errors
/// [`TopologyError`] naming the object that could not be created.
pub async fn ensure(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<Topology, TopologyError> {
    let invocations = ensure_invocations(js, cfg).await?;
    ensure_events(js, cfg).await?;
    ensure_dead(js, cfg).await?;
    let routes = ensure_routes(js, cfg).await?;
    let workers = bucket(js, subject::KV_WORKERS, cfg.worker_ttl, cfg, Mode::Own).await?;
    let results = bucket(js, subject::KV_RESULTS, cfg.results_ttl, cfg, Mode::Own).await?;
    let limits = bucket(js, subject::KV_LIMITS, cfg.limits_ttl, cfg, Mode::Own).await?;
    Ok(Topology { invocations, routes, workers, results, limits })
}

/// The gateway's topology: it owns `OLIN_INVOCATIONS` (its queue limits
/// are the gateway's flags) and `OLIN_LIMITS`, and uses the route, worker
/// and result buckets.
///
/// # Errors
/// [`TopologyError`] naming the object that could not be had.
pub async fn gateway(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<Topology, TopologyError> {
    let invocations = invocations(js, cfg, Mode::Own).await?;
    let routes = bucket(js, subject::KV_ROUTES, Duration::ZERO, cfg, Mode::Use).await?;
    let workers = bucket(js, subject::KV_WORKERS, cfg.worker_ttl, cfg, Mode::Use).await?;
    let results = bucket(js, subject::KV_RESULTS, cfg.results_ttl, cfg, Mode::Use).await?;
    let limits = bucket(js, subject::KV_LIMITS, cfg.limits_ttl, cfg, Mode::Own).await?;
    Ok(Topology { invocations, routes, workers, results, limits })
}

/// Handles to the topology a worker uses.
#[derive(Debug, Clone)]
pub struct WorkerTopology {
    /// Stream `OLIN_INVOCATIONS`.
    pub invocations: stream::Stream,
    /// The shared `workers` consumer.
    pub consumer: consumer::PullConsumer,
    /// Bucket `OLIN_WORKERS`.
    pub workers: kv::Store,
    /// Bucket `OLIN_RESULTS`.
    pub results: kv::Store,
    /// Bucket `OLIN_LIMITS` (to give back concurrency leases).
    pub limits: kv::Store,
}

/// The worker's topology: it uses `OLIN_INVOCATIONS` and owns what it
/// writes: the `workers` consumer, `OLIN_EVENTS`, `OLIN_DEAD`, and the
/// worker and result buckets.
///
/// # Errors
/// [`TopologyError`] naming the object that could not be had.
pub async fn worker(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<WorkerTopology, TopologyError> {
    let invocations = invocations(js, cfg, Mode::Use).await?;
    let consumer = ensure_workers_consumer(&invocations, cfg).await?;
    ensure_events(js, cfg).await?;
    ensure_dead(js, cfg).await?;
    let workers = bucket(js, subject::KV_WORKERS, cfg.worker_ttl, cfg, Mode::Own).await?;
    let results = bucket(js, subject::KV_RESULTS, cfg.results_ttl, cfg, Mode::Own).await?;
    let limits = bucket(js, subject::KV_LIMITS, cfg.limits_ttl, cfg, Mode::Use).await?;
    Ok(WorkerTopology { invocations, consumer, workers, results, limits })
}

/// Handles to the topology the control plane uses.
#[derive(Debug, Clone)]
pub struct ControlTopology {
    /// Bucket `OLIN_ROUTES`.
    pub routes: kv::Store,
    /// The durable `control` consumer on `OLIN_EVENTS`, shared by every
    /// control replica: execution events to record.
    pub events: consumer::PullConsumer,
}

/// Control's topology: it owns `OLIN_ROUTES` and its `control` consumer,
/// and uses `OLIN_EVENTS`.
///
/// # Errors
/// [`TopologyError`] naming the object that could not be had.
pub async fn control(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<ControlTopology, TopologyError> {
    let routes = ensure_routes(js, cfg).await?;
    let events = stream_as(js, events_config(cfg), "stream OLIN_EVENTS", Mode::Use).await?;
    let events = ensure_control_consumer(&events).await?;
    Ok(ControlTopology { routes, events })
}

/// The durable pull consumer `control` on `OLIN_EVENTS`: every control
/// replica records executions from it. The ack wait covers a batch insert
/// retried through a short database outage; more than that redelivers,
/// which the insert absorbs (it is idempotent on the invocation id).
///
/// # Errors
/// [`TopologyError`] if the consumer cannot be created.
pub async fn ensure_control_consumer(events: &stream::Stream) -> Result<consumer::PullConsumer, TopologyError> {
    let config = consumer::pull::Config {
        durable_name: Some(subject::CONSUMER_CONTROL.to_owned()),
        description: Some("Shared by all control replicas: execution records".to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 100_000,
        ..Default::default()
    };
    events.get_or_create_consumer(subject::CONSUMER_CONTROL, config).await.map_err(err("consumer control"))
}

/// Stream `OLIN_INVOCATIONS`: work-queue retention, bounded, discard-new.
///
/// # Errors
/// [`TopologyError`] if the stream cannot be created or updated.
pub async fn ensure_invocations(
    js: &jetstream::Context,
    cfg: &TopologyConfig,
) -> Result<stream::Stream, TopologyError> {
    invocations(js, cfg, Mode::Own).await
}

async fn invocations(
    js: &jetstream::Context,
    cfg: &TopologyConfig,
    mode: Mode,
) -> Result<stream::Stream, TopologyError> {
    let config = stream::Config {
        name: subject::STREAM_INVOCATIONS.to_owned(),
        description: Some("Pending function invocations, one worker each".to_owned()),
        subjects: vec![subject::invoke_subjects()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::New,
        max_messages: cfg.invocations_max_msgs,
        max_bytes: cfg.invocations_max_bytes,
        // A fair share: a function at its cap is refused, the others are not.
        max_messages_per_subject: cfg.invocations_max_msgs_per_function,
        discard_new_per_subject: true,
        duplicate_window: cfg.duplicate_window,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    stream_as(js, config, "stream OLIN_INVOCATIONS", mode).await
}

/// Stream `OLIN_EVENTS`: a work queue read by control's one consumer, so
/// an event leaves the stream once it is recorded (and acked); bounded in
/// age and bytes for a stalled control plane.
///
/// A stream created by an older release, with limits retention, keeps it
/// (JetStream cannot change a stream's retention): its events then stay
/// until they age out. Delete it while it is drained to have it created
/// again as a work queue.
///
/// # Errors
/// [`TopologyError`] if the stream cannot be created or updated.
pub async fn ensure_events(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<stream::Stream, TopologyError> {
    let mut config = events_config(cfg);
    if let Ok(mut existing) = js.get_stream(subject::STREAM_EVENTS).await
        && let Ok(info) = existing.info().await
        && info.config.retention != config.retention
    {
        tracing::warn!(
            retention = ?info.config.retention,
            "OLIN_EVENTS predates work-queue retention: recorded events stay until they age out (see docs/operations.md)"
        );
        config.retention = info.config.retention;
    }
    stream_as(js, config, "stream OLIN_EVENTS", Mode::Own).await
}

fn events_config(cfg: &TopologyConfig) -> stream::Config {
    stream::Config {
        name: subject::STREAM_EVENTS.to_owned(),
        description: Some("Execution events for accounting".to_owned()),
        subjects: vec![subject::event_subjects()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        max_age: cfg.events_max_age,
        max_bytes: cfg.events_max_bytes,
        duplicate_window: cfg.duplicate_window,
        num_replicas: cfg.replicas,
        ..Default::default()
    }
}

/// Stream `OLIN_DEAD`: dead-lettered invocations with their reason.
///
/// # Errors
/// [`TopologyError`] if the stream cannot be created or updated.
pub async fn ensure_dead(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<stream::Stream, TopologyError> {
    let config = stream::Config {
        name: subject::STREAM_DEAD.to_owned(),
        description: Some("Invocations that could not be run".to_owned()),
        subjects: vec![subject::dead_subjects()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_age: cfg.dead_max_age,
        max_bytes: cfg.dead_max_bytes,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    stream_as(js, config, "stream OLIN_DEAD", Mode::Own).await
}

/// How long a service keeps asking for a stream while JetStream times out
/// or is not available yet: a cluster still electing its leaders (or a
/// loaded machine) answers later, and a service that gave up at the first
/// timeout would fail to start (seen once for `olinctl dev --cluster` on a
/// busy 2-core machine).
const STREAM_SETUP_WAIT: Duration = Duration::from_secs(30);

async fn stream_as(
    js: &jetstream::Context,
    config: stream::Config,
    what: &'static str,
    mode: Mode,
) -> Result<stream::Stream, TopologyError> {
    let deadline = tokio::time::Instant::now() + STREAM_SETUP_WAIT;
    loop {
        let refused = match mode {
            Mode::Own => match js.create_or_update_stream(config.clone()).await {
                Ok(_) => return js.get_stream(&config.name).await.map_err(err(what)),
                Err(e) => e,
            },
            Mode::Use => match js.get_or_create_stream(config.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(e) => e,
            },
        };
        let transient = matches!(
            refused.kind(),
            jetstream::context::CreateStreamErrorKind::TimedOut
                | jetstream::context::CreateStreamErrorKind::JetStreamUnavailable
        );
        if !transient || tokio::time::Instant::now() >= deadline {
            return Err(err(what)(refused));
        }
        tracing::warn!(err = %refused, stream = %config.name, "JetStream not answering yet; asking again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The durable pull consumer `workers` shared by every worker. Its owner
/// (the worker) applies its settings: a consumer created with another ack
/// wait or delivery count is updated to these.
///
/// # Errors
/// [`TopologyError`] if the consumer cannot be created or updated.
pub async fn ensure_workers_consumer(
    invocations: &stream::Stream,
    cfg: &TopologyConfig,
) -> Result<consumer::PullConsumer, TopologyError> {
    let config = consumer::pull::Config {
        durable_name: Some(subject::CONSUMER_WORKERS.to_owned()),
        description: Some("Shared by all workers: each invocation runs on one".to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: cfg.ack_wait,
        max_deliver: cfg.max_deliver,
        deliver_policy: consumer::DeliverPolicy::All,
        max_ack_pending: 100_000,
        ..Default::default()
    };
    let consumer: consumer::PullConsumer = invocations
        .get_or_create_consumer(subject::CONSUMER_WORKERS, config.clone())
        .await
        .map_err(err("consumer workers"))?;
    let have = &consumer.cached_info().config;
    if have.ack_wait == config.ack_wait && have.max_deliver == config.max_deliver {
        return Ok(consumer);
    }
    invocations.create_consumer(config).await.map_err(err("consumer workers"))
}

/// Bucket `OLIN_ROUTES`: the latest route record of each function.
///
/// # Errors
/// [`TopologyError`] if the bucket cannot be created.
pub async fn ensure_routes(js: &jetstream::Context, cfg: &TopologyConfig) -> Result<kv::Store, TopologyError> {
    bucket(js, subject::KV_ROUTES, Duration::ZERO, cfg, Mode::Own).await
}

async fn bucket(
    js: &jetstream::Context,
    name: &'static str,
    ttl: Duration,
    cfg: &TopologyConfig,
    mode: Mode,
) -> Result<kv::Store, TopologyError> {
    // The KV stream is created directly rather than through
    // `create_or_update_key_value`, which first queries account info in a
    // shape that NATS 2.9 servers (Debian's) do not send. The settings are
    // those the KV API itself uses.
    // Results are bounded in bytes too, dropping the oldest: a caller can
    // leave up to 10 MiB per async call, and must not fill JetStream.
    // Routes and heartbeats are bounded by functions and workers.
    let (max_bytes, discard) = match name {
        subject::KV_RESULTS => (cfg.results_max_bytes, stream::DiscardPolicy::Old),
        _ => (-1, stream::DiscardPolicy::New),
    };
    let config = stream::Config {
        name: format!("KV_{name}"),
        description: Some(format!("Key-value bucket {name}")),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard,
        max_bytes,
        num_replicas: cfg.replicas,
        duplicate_window: if ttl.is_zero() { Duration::from_secs(120) } else { ttl.min(Duration::from_secs(120)) },
        ..Default::default()
    };
    stream_as(js, config, name, mode).await?;
    js.get_key_value(name).await.map_err(err(name))
}

/// Publishes `record` as the route of its function in `OLIN_ROUTES`.
///
/// # Errors
/// [`TopologyError`] if the write fails.
pub async fn put_route(routes: &kv::Store, record: &olin_proto::v1::RouteRecord) -> Result<u64, TopologyError> {
    use olin_proto::Message as _;
    routes.put(&record.function, record.encode_to_vec().into()).await.map_err(err(subject::KV_ROUTES))
}
