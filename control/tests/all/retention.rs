//! Execution records over time: a call run twice is one record with its
//! rerun, usage is read from per-minute rollups that outlive the records,
//! retention prunes records by age and by count per function in batches,
//! and recorded events leave `OLIN_EVENTS`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use olin_control::entity::{execution_attempts, executions, functions, usage_minutes, usage_monthly, users};
use olin_control::retention::{self, Retention};
use olin_proto::Message as _;
use olin_proto::v1::{ExecutionEvent, Outcome, Usage};
use olin_test_support::{ADMIN_PASSWORD, NatsServer, S3Server, TestDb, fixtures, spawn_control, wait};
use reqwest::StatusCode;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Statement,
};
use serde_json::json;

use crate::client::Api;

fn event(id: &str, deployment: &str, worker: &str, started_ms: u64, outcome: Outcome, wall_us: u64) -> ExecutionEvent {
    ExecutionEvent {
        invocation_id: id.to_owned(),
        function: "rec".to_owned(),
        deployment_id: deployment.to_owned(),
        outcome: outcome as i32,
        status: if outcome == Outcome::Ok { 200 } else { 502 },
        usage: Some(Usage { wall_us, fuel_used: 1000, bytes_in: 10, bytes_out: 20, ..Default::default() }),
        worker_id: worker.to_owned(),
        started_unix_ms: started_ms,
        finished_unix_ms: started_ms + 1,
        method: "POST".to_owned(),
        path: "/".to_owned(),
        ..Default::default()
    }
}

async fn count<E>(db: &DatabaseConnection) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reruns_are_recorded_usage_outlives_pruned_records_and_recorded_events_leave_the_stream() {
    let test_db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    // Retention is run by hand below; the background pass only at start.
    let control = spawn_control(test_db.url(), &nats.url(), s3.store_args(), |c| {
        c.retention_interval = Duration::from_secs(3600);
    })
    .await;
    let db = test_db.connect().await;
    let http = reqwest::Client::new();
    let api = Api::login(&http, &control, "admin", ADMIN_PASSWORD).await;
    assert_eq!(api.call("POST", "/functions", Some(json!({"name": "rec"}))).await.0, StatusCode::CREATED);
    assert_eq!(api.upload("rec", fixtures::ECHO_WASM).await, 1);
    let (s, d) = api.call("POST", "/functions/rec/deployments", Some(json!({"version": 1}))).await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let deployment = d["id"].as_str().unwrap().to_owned();

    // Every entity reads its table (the migrations are the source of truth).
    count::<execution_attempts::Entity>(&db).await;
    count::<usage_minutes::Entity>(&db).await;

    // One call run twice (its first worker lost, another ran it again),
    // with the first run's event delivered twice, as workers publish them.
    let js = async_nats::jetstream::new(nats.client().await);
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap();
    let id = "0190abcd-0000-7000-8000-000000000001";
    let runs = [
        event(id, &deployment, "w1", now_ms - 10_000, Outcome::Ok, 1000),
        event(id, &deployment, "w2", now_ms - 4_000, Outcome::Ok, 1200),
        event(id, &deployment, "w1", now_ms - 10_000, Outcome::Ok, 1000),
    ];
    let subject = olin_proto::subject::event_subject("rec").unwrap();
    for e in &runs {
        js.publish(subject.clone(), e.encode_to_vec().into()).await.unwrap().await.unwrap();
    }
    let shown = wait::until("the rerun is recorded", Duration::from_secs(20), || async {
        let (s, e) = api.call("GET", &format!("/executions/{id}"), None).await;
        (s == StatusCode::OK && e["attempts"] == 2).then_some(e)
    })
    .await;
    assert_eq!(shown["worker_id"], "w1", "the record is the first run: {shown}");
    let reruns = shown["reruns"].as_array().unwrap();
    assert_eq!(reruns.len(), 1, "{shown}");
    assert_eq!((reruns[0]["worker_id"].as_str(), reruns[0]["wall_us"].as_i64()), (Some("w2"), Some(1200)));
    let (_, usage) = api.call("GET", "/functions/rec/usage", None).await;
    assert_eq!((usage["calls"].as_u64(), usage["reruns"].as_u64()), (Some(1), Some(1)), "{usage}");
    assert_eq!(usage["fuel"], 2000, "both runs burnt fuel: {usage}");
    // Quotas count the call once: reruns are never charged.
    let admin = users::Entity::find().filter(users::Column::Username.eq("admin")).one(&db).await.unwrap().unwrap();
    let month = usage_monthly::Entity::find().filter(usage_monthly::Column::UserId.eq(&admin.id)).one(&db).await;
    assert_eq!(month.unwrap().map(|m| (m.calls, m.fuel)), Some((1, 1000)));

    // Recorded events leave OLIN_EVENTS (a work queue: acked, removed).
    wait::until_true("recorded events leave the stream", Duration::from_secs(20), || async {
        let mut stream = js.get_stream(olin_proto::subject::STREAM_EVENTS).await.unwrap();
        stream.info().await.unwrap().state.messages == 0
    })
    .await;

    // 2,500 older calls over the last 3 hours, one failed in ten: more than
    // two batches of pruning.
    let function = functions::Entity::find().filter(functions::Column::Name.eq("rec")).one(&db).await.unwrap().unwrap();
    let old: Vec<executions::Model> = (0..2500u64)
        .map(|i| {
            let started = now_ms - 3 * 3_600_000 + i * 4_000;
            let outcome = if i % 10 == 0 { Outcome::GuestError } else { Outcome::Ok };
            let e = event(&format!("0190abcd-0000-7000-8000-1{i:011}"), &deployment, "w1", started, outcome, 100 + i);
            olin_control::ingest::row(e, Some(admin.id.clone()), Some(function.id.clone()))
        })
        .collect();
    for chunk in old.chunks(1000) {
        olin_control::ingest::insert(&db, chunk).await.unwrap();
    }
    // Stored again (a batch redelivered to control): nothing counts twice.
    olin_control::ingest::insert(&db, &old[..100]).await.unwrap();
    // The oldest call ran twice too.
    let started = u64::try_from(old[0].started_at.timestamp_millis()).unwrap() + 1000;
    let rerun = event(&old[0].invocation_id, &deployment, "w9", started, Outcome::Ok, 100);
    let rerun = olin_control::ingest::row(rerun, Some(admin.id.clone()), Some(function.id.clone()));
    olin_control::ingest::insert(&db, std::slice::from_ref(&rerun)).await.unwrap();
    assert_eq!(count::<execution_attempts::Entity>(&db).await, 2);
    let (_, before) = api.call("GET", "/functions/rec/usage", None).await;
    assert_eq!((before["calls"].as_u64(), before["errors"].as_u64()), (Some(2501), Some(250)), "{before}");
    assert_eq!(before["reruns"], 2, "{before}");
    let (_, series) = api.call("GET", "/functions/rec/usage/series?buckets=8", None).await;
    let total: u64 = series["points"].as_array().unwrap().iter().map(|p| p["calls"].as_u64().unwrap()).sum();
    assert_eq!(total, 2501, "{series}");

    // By age: records older than an hour go, with the reruns of calls that
    // started before; usage does not change.
    let by_age = Retention {
        executions_max_age: Some(Duration::from_secs(3600)),
        executions_per_function: None,
        usage_max_age: None,
        interval: Duration::from_secs(60),
    };
    // Autovacuum off for the table (this machine's server has it off for
    // all): the pass vacuums what it deleted, so the space is reused.
    let sql = |q: &str| Statement::from_string(DatabaseBackend::Postgres, q.to_owned());
    db.execute_raw(sql("ALTER TABLE executions SET (autovacuum_enabled = false)")).await.unwrap();
    let pruned = retention::prune(&db, &by_age, Utc::now(), None).await.unwrap();
    assert!(pruned.vacuumed >= 1, "{pruned:?}");
    let stats = db
        .query_one_raw(sql(
            "SELECT n_dead_tup, last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'executions'",
        ))
        .await
        .unwrap()
        .unwrap();
    let (dead, vacuumed): (i64, bool) = (stats.try_get_by_index(0).unwrap(), stats.try_get_by_index(1).unwrap());
    assert_eq!((dead, vacuumed), (0, true), "the pruned records' space is free again");
    let left = count::<executions::Entity>(&db).await;
    assert_eq!(pruned.executions + left, 2501, "{pruned:?}");
    assert!((690..=702).contains(&left), "the last hour of calls is kept: {left}");
    assert!(pruned.executions > retention::BATCH, "more than one batch: {pruned:?}");
    let (_, after) = api.call("GET", "/functions/rec/usage", None).await;
    for field in ["calls", "reruns", "errors", "errors_by_outcome", "fuel", "bytes_in", "bytes_out", "wall_us"] {
        assert_eq!(after[field], before[field], "{field} after pruning: {after}");
    }
    // The oldest call's rerun went with it; the recent call keeps its own.
    assert_eq!(count::<execution_attempts::Entity>(&db).await, 1);

    // By count: only the newest 100 of the function are kept (the call
    // run twice, the newest, among them).
    let by_count = Retention { executions_max_age: None, executions_per_function: Some(100), ..by_age };
    let since = Some(Utc::now() - chrono::Duration::hours(1));
    retention::prune(&db, &by_count, Utc::now(), since).await.unwrap();
    assert_eq!(count::<executions::Entity>(&db).await, 100);
    let (newest, cut): (DateTime<Utc>, DateTime<Utc>) = (old[2499].started_at, old[2401].started_at);
    let kept = |t: DateTime<Utc>| executions::Entity::find().filter(executions::Column::StartedAt.eq(t)).count(&db);
    assert_eq!((kept(newest).await.unwrap(), kept(cut).await.unwrap()), (1, 1), "the newest 99 old ones are kept");
    assert_eq!(kept(old[2400].started_at).await.unwrap(), 0, "the 100th newest old one is not");
    assert_eq!(count::<execution_attempts::Entity>(&db).await, 1);
    let (_, still) = api.call("GET", &format!("/executions/{id}"), None).await;
    assert_eq!(still["attempts"], 2, "{still}");
    let (_, page) = api.call("GET", "/functions/rec/executions?limit=500", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 100);

    // Rollups go by their own age.
    let rollups = Retention { usage_max_age: Some(Duration::from_secs(3600)), ..by_count };
    let pruned = retention::prune(&db, &rollups, Utc::now(), since).await.unwrap();
    assert!(pruned.usage_rows > 0, "{pruned:?}");
    let (_, recent) = api.call("GET", "/functions/rec/usage", None).await;
    let calls = recent["calls"].as_u64().unwrap();
    assert!((680..=702).contains(&calls), "the last hour of rollups is kept: {recent}");
    let metrics = http.get(control.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("olin_control_executions_pruned_total"), "{metrics}");
}
