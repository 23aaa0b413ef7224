//! Execution-event ingestion into Postgres against its floor, in one run:
//!
//! - floor: the same rows stored straight into Postgres by the ingestion's
//!   own batch insert (`INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO
//!   NOTHING`, 1,000 rows a statement, with the per-minute rollups and the
//!   owner's month), one batch after another, no NATS;
//! - reference: the same rows as multi-row `INSERT ... VALUES` statements of
//!   1,000 rows (sea-orm's `insert_many`), what ingestion used before;
//! - ingestion: the events published to `OLIN_EVENTS` first, then a control
//!   plane started on an empty database, timed from start until the last
//!   row is in (decode, owner lookup, batch insert, ack); once with one
//!   event to a message, once with 16 (`ExecutionEventBatch`).
//!
//! `ingest <nats-url> <postgres-admin-url> [events]`; prints JSON metrics.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use olin_control::entity::executions;
use olin_proto::Message as _;
use olin_proto::v1::{ExecutionEvent, ExecutionEventBatch, Outcome, Usage};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, EntityTrait, IntoActiveModel as _, NotSet, PaginatorTrait,
};

/// Events start this many ms before the run (recent: retention keeps
/// them), one per ms.
fn base_ms() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0) - 3_600_000)
}

fn event(i: usize) -> ExecutionEvent {
    ExecutionEvent {
        invocation_id: format!("0190abcd-0000-7000-8000-{i:012}"),
        function: "bench".to_owned(),
        deployment_id: "d-bench".to_owned(),
        module_sha256: "ab".repeat(32),
        outcome: if i.is_multiple_of(20) { Outcome::GuestError } else { Outcome::Ok } as i32,
        status: 200,
        worker_id: "w-1".to_owned(),
        method: "GET".to_owned(),
        path: "/".to_owned(),
        stderr_tail: bytes::Bytes::from_static(b"a line of stderr\n"),
        usage: Some(Usage {
            wall_us: 120 + (i % 100) as u64,
            fuel_used: 5000,
            bytes_in: 10,
            bytes_out: 200,
            ..Default::default()
        }),
        started_unix_ms: base_ms() + i as u64,
        finished_unix_ms: base_ms() + 1 + i as u64,
        ..Default::default()
    }
}

async fn fresh_db(admin_url: &str, name: &str) -> anyhow::Result<(DatabaseConnection, String)> {
    let admin = Database::connect(admin_url).await.context("connecting to Postgres")?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    let url = format!("{}/{name}", admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b));
    let db = Database::connect(&url).await?;
    use olin_migrations::MigratorTrait as _;
    olin_migrations::Migrator::up(&db, None).await?;
    // The events' owner, function and deployment, so every row is counted
    // into the rollups and the owner's month as in production.
    for sql in [
        "INSERT INTO users (id, username, password_hash, role) VALUES ('u-bench', 'bench', 'x', 'user')",
        "INSERT INTO functions (id, owner_id, name) VALUES ('f-bench', 'u-bench', 'bench')",
        "INSERT INTO versions (id, function_id, number, sha256, size_bytes, abi, imports) \
         VALUES ('v-bench', 'f-bench', 1, 'ab', 1, 'wasi', '[]')",
        "INSERT INTO deployments (id, function_id, version_id, active, kind) \
         VALUES ('d-bench', 'f-bench', 'v-bench', TRUE, 'deploy')",
    ] {
        db.execute_unprepared(sql).await?;
    }
    Ok((db, url))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (nats_url, admin_url) = match args.as_slice() {
        [_, n, a, ..] => (n.clone(), a.clone()),
        _ => anyhow::bail!("usage: ingest <nats-url> <postgres-admin-url> [events]"),
    };
    let n: usize = args.get(3).map_or(Ok(100_000), |s| s.parse())?;

    // Floor: the same rows, straight into Postgres.
    let (floor_db, _) = fresh_db(&admin_url, "olin_bench_floor").await?;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let owned = |i: usize| olin_control::ingest::row(event(i), Some("u-bench".into()), Some("f-bench".into()));
        let rows: Vec<_> = chunk.iter().map(|i| owned(*i)).collect();
        olin_control::ingest::insert(&floor_db, &rows).await?;
    }
    let floor = started.elapsed();
    anyhow::ensure!(executions::Entity::find().count(&floor_db).await? == n as u64, "floor rows missing");

    // Reference: multi-row VALUES.
    let (values_db, _) = fresh_db(&admin_url, "olin_bench_values").await?;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let rows = chunk.iter().map(|i| {
            let mut a = olin_control::ingest::row(event(*i), None, None).into_active_model();
            a.created_at = NotSet;
            a.updated_at = NotSet;
            a
        });
        let on_conflict = OnConflict::column(executions::Column::InvocationId).do_nothing().to_owned();
        executions::Entity::insert_many(rows).on_conflict(on_conflict).exec_without_returning(&values_db).await?;
    }
    let values = started.elapsed();
    anyhow::ensure!(executions::Entity::find().count(&values_db).await? == n as u64, "reference rows missing");

    // Ingestion: events waiting in OLIN_EVENTS, then control starts; once
    // one to a message (as workers send them), once 16 to a message.
    let ingest = ingestion(&nats_url, &admin_url, n, 1, "olin_bench_ingest").await?;
    let ingest_batched = ingestion(&nats_url, &admin_url, n, BATCH, "olin_bench_ingest_batched").await?;

    let floor_rate = n as f64 / floor.as_secs_f64();
    let ingest_rate = n as f64 / ingest.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "events": n,
            "floor_insert_events_per_s": floor_rate.round(),
            "values_insert_events_per_s": (n as f64 / values.as_secs_f64()).round(),
            "ingest_events_per_s": ingest_rate.round(),
            "ingest_over_floor": (ingest_rate / floor_rate * 100.0).round() / 100.0,
            "ingest_batched_events_per_s": (n as f64 / ingest_batched.as_secs_f64()).round(),
            "events_per_message_batched": BATCH,
        })
    );
    Ok(())
}

/// Events per message in the batched ingestion run.
const BATCH: usize = 16;

/// Publishes `n` events to `OLIN_EVENTS`, `per_message` to a message, then
/// times a control plane started on the fresh database `name` until every
/// row is in.
async fn ingestion(
    nats_url: &str,
    admin_url: &str,
    n: usize,
    per_message: usize,
    name: &str,
) -> anyhow::Result<Duration> {
    let nats = async_nats::connect(nats_url).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let topology = olin_nats::topology::TopologyConfig::default();
    olin_nats::topology::ensure_events(&js, &topology).await?;
    let subject = olin_proto::subject::event_subject("bench")?;
    let starts: Vec<usize> = (0..n).step_by(per_message.max(1)).collect();
    futures::stream::iter(starts)
        .map(|first| {
            let (js, subject) = (js.clone(), subject.clone());
            let events = (first..(first + per_message).min(n)).map(event).collect::<Vec<_>>();
            let payload = match <[ExecutionEvent; 1]>::try_from(events) {
                Ok([one]) => one.encode_to_vec(),
                Err(events) => ExecutionEventBatch { events }.encode_to_vec(),
            };
            async move { js.publish(subject, payload.into()).await?.await.map(|_| ()) }
        })
        .buffer_unordered(512)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let (db, url) = fresh_db(admin_url, name).await?;
    let dir = tempfile::tempdir()?;
    let store = olin_module_store::ModuleStoreArgs::local(dir.path());
    let cfg = olin_control::Config::new(&url, nats_url, store.clone(), "bench-secret-bench-secret-bench-secret!!");
    let deps = olin_control::Deps {
        db: Database::connect(&url).await?,
        nats,
        store: store.open()?,
        topology,
        clock: olin_control::Clock::system(),
    };
    let listeners = olin_control::Listeners {
        public: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let started = Instant::now();
    let control = olin_control::Control::start(&cfg, deps).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(control.serve(listeners, async {
        let _ = rx.await;
    }));
    loop {
        if executions::Entity::find().count(&db).await? >= n as u64 {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "ingestion did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let _ = tx.send(());
    let _ = serving.await;
    Ok(took)
}
