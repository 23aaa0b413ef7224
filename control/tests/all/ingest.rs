//! Ingestion survives a control-plane restart: 10,000 execution events,
//! control stopped part-way and started again, end as exactly 10,000 rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use olin_proto::Message as _;
use olin_proto::v1::{ExecutionEvent, Outcome, Usage};
use olin_test_support::{NatsServer, S3Server, TestDb, spawn_control};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

const EVENTS: usize = 10_000;

async fn rows(db: &DatabaseConnection) -> i64 {
    let r = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM executions"))
        .await
        .unwrap()
        .unwrap();
    r.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_across_a_restart_are_ten_thousand_rows() {
    let test_db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let control = spawn_control(test_db.url(), &nats.url(), s3.store_args(), |_| {}).await;
    let db = test_db.connect().await;

    // Published while control ingests; a tenth of them twice (a redelivered call).
    let js = async_nats::jetstream::new(nats.client().await);
    let event = |i: usize| ExecutionEvent {
        invocation_id: format!("0190abcd-0000-7000-8000-{i:012}"),
        function: "load".to_owned(),
        deployment_id: "d-unknown".to_owned(),
        outcome: if i.is_multiple_of(10) { Outcome::GuestError } else { Outcome::Ok } as i32,
        status: 200,
        usage: Some(Usage { wall_us: 100 + i as u64, fuel_used: 1000, ..Default::default() }),
        started_unix_ms: 1_700_000_000_000 + i as u64,
        finished_unix_ms: 1_700_000_000_001 + i as u64,
        ..Default::default()
    };
    let publish = |range: std::ops::Range<usize>| {
        let js = js.clone();
        async move {
            futures::stream::iter(range)
                .map(|i| {
                    let js = js.clone();
                    async move {
                        let subject = olin_proto::subject::event_subject("load").unwrap();
                        js.publish(subject, event(i).encode_to_vec().into()).await.unwrap().await.unwrap();
                    }
                })
                .buffer_unordered(256)
                .collect::<Vec<_>>()
                .await;
        }
    };
    publish(0..EVENTS / 2).await;
    // Stop control part-way through ingesting, then start it again.
    let started = Instant::now();
    while rows(&db).await < 1000 {
        assert!(started.elapsed() < Duration::from_secs(20), "ingestion never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    control.stop().await;
    let at_stop = rows(&db).await;
    publish(EVENTS / 2..EVENTS).await;
    publish(0..EVENTS / 10).await;
    let control = spawn_control(test_db.url(), &nats.url(), s3.store_args(), |_| {}).await;
    let started = Instant::now();
    loop {
        let n = rows(&db).await;
        if n == EVENTS as i64 {
            break;
        }
        assert!(n < EVENTS as i64, "more rows than events: {n}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {n} of {EVENTS} rows (had {at_stop} at the restart)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Settled: no duplicate arrives late.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rows(&db).await, EVENTS as i64);
    assert!(at_stop < EVENTS as i64, "the restart happened mid-way ({at_stop} rows)");
    control.stop().await;
}
