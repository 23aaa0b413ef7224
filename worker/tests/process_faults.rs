//! Worker processes dying and draining under load, with real `nats-server`
//! and `olin-worker` processes: every accepted call still gets its own
//! answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::future::join_all;
use olin_test_support::{NatsServer, S3Server, WorkerProcess, deploy, fixtures, spawn_gateway_with, test_topology};

const WORKER: &str = env!("CARGO_BIN_EXE_olin-worker");
const FAST_REDELIVERY: &[(&str, &str)] =
    &[("WORKER_CONCURRENCY", "8"), ("OLIN_ACK_WAIT_MS", "2000"), ("OLIN_MAX_DELIVER", "5")];

async fn call_all(url: &str, n: usize) -> Vec<(usize, u16, String)> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    join_all((0..n).map(|i| {
        let (http, url) = (http.clone(), format!("{url}?call={i}"));
        async move {
            match http.get(&url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (i, status, r.text().await.unwrap_or_default())
                }
                Err(e) => (i, 0, e.to_string()),
            }
        }
    }))
    .await
}

fn assert_all_answered(results: &[(usize, u16, String)]) {
    let failed: Vec<_> = results.iter().filter(|(i, s, body)| *s != 200 || *body != format!("call={i}")).collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed, e.g. {:?}",
        failed.len(),
        results.len(),
        &failed[..failed.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_flight_loses_nothing() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat")).await;
    let mut doomed = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let _survivor = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let gateway = spawn_gateway_with(&nats.url(), test_topology(), |_| {}).await;

    let url = gateway.function_url("nap", "/");
    let load = tokio::spawn(async move { call_all(&url, 500).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    doomed.kill();
    let results = load.await.unwrap();
    assert_eq!(results.len(), 500);
    assert_all_answered(&results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_without_failing_calls() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat")).await;
    let mut leaving = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let _staying = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let gateway = spawn_gateway_with(&nats.url(), test_topology(), |_| {}).await;

    let url = gateway.function_url("nap", "/");
    let load = tokio::spawn(async move { call_all(&url, 300).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let drained_in = tokio::task::spawn_blocking(move || leaving.terminate()).await.unwrap();
    assert!(drained_in < Duration::from_secs(10), "drained in {drained_in:?}");
    let results = load.await.unwrap();
    assert_all_answered(&results);
}
