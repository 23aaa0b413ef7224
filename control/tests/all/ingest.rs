//! Ingestion survives a control-plane restart: 10,000 execution events,
//! control stopped part-way and started again, end as exactly 10,000 rows,
//! whether they come one to a message (older workers) or in batches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt as _;
use olin_proto::Message as _;
use olin_proto::v1::{ExecutionEvent, ExecutionEventBatch, Outcome, Usage};
use olin_test_support::{NatsServer, S3Server, TestDb, spawn_control, wait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

const EVENTS: usize = 10_000;

/// The events are from 2023: retention by age would prune their rows.
fn keep_old(c: &mut olin_control::Config) {
    c.executions_max_age = Duration::ZERO;
}

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
    let control = spawn_control(test_db.url(), &nats.url(), s3.store_args(), keep_old).await;
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
    // Batches of `size` events, `range` in order, in messages of their own.
    let publish_batches = |range: std::ops::Range<usize>, size: usize| {
        let js = js.clone();
        async move {
            let all: Vec<usize> = range.collect();
            for chunk in all.chunks(size) {
                let batch = ExecutionEventBatch { events: chunk.iter().map(|&i| event(i)).collect() };
                let subject = olin_proto::subject::event_subject("load").unwrap();
                js.publish(subject, batch.encode_to_vec().into()).await.unwrap().await.unwrap();
            }
        }
    };
    publish(0..EVENTS / 4).await;
    publish_batches(EVENTS / 4..EVENTS / 2, 37).await;
    // Stop control part-way through ingesting, then start it again.
    wait::until_true("1000 rows are stored", Duration::from_secs(20), || async { rows(&db).await >= 1000 }).await;
    control.stop().await;
    let at_stop = rows(&db).await;
    publish_batches(EVENTS / 2..EVENTS, 64).await;
    publish(0..EVENTS / 10).await;
    // Again, in one message of more events than one insert takes.
    publish_batches(EVENTS / 10..EVENTS / 10 + 1_500, 1_500).await;
    let control = spawn_control(test_db.url(), &nats.url(), s3.store_args(), keep_old).await;
    wait::until_true(&format!("{EVENTS} rows (had {at_stop} at the restart)"), Duration::from_secs(60), || async {
        let n = rows(&db).await;
        assert!(n <= EVENTS as i64, "more rows than events: {n}");
        n == EVENTS as i64
    })
    .await;
    // Settled: every event, duplicates included, is acked, so none can
    // arrive late; and the rows are still one per invocation.
    wait::until_true("every event is acked", Duration::from_secs(30), || async {
        let stream = js.get_stream(olin_proto::subject::STREAM_EVENTS).await.unwrap();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(olin_proto::subject::CONSUMER_CONTROL).await.unwrap();
        let info = consumer.info().await.unwrap();
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    assert_eq!(rows(&db).await, EVENTS as i64);
    assert!(at_stop < EVENTS as i64, "the restart happened mid-way ({at_stop} rows)");
    control.stop().await;
}
