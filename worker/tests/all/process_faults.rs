//! Worker processes dying and draining under load, with real `nats-server`
//! and `olin-worker` processes: every accepted call still gets its own
//! answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::future::join_all;
use olin_test_support::{GatewayBuilder, NatsServer, S3Server, SyncPath, WorkerProcess, deploy, fixtures, wait};

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
    assert_own_answers(results.iter().map(|(i, status, body)| (format!("call={i}"), *status, body.as_str())));
}

/// Every call, `(expected body, status, body)`, was answered 200 with its own answer.
fn assert_own_answers<'a>(calls: impl Iterator<Item = (String, u16, &'a str)>) {
    let calls: Vec<_> = calls.collect();
    let failed: Vec<_> = calls.iter().filter(|(want, status, body)| *status != 200 || body != want).collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed, e.g. {:?}",
        failed.len(),
        calls.len(),
        &failed[..failed.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_flight_loses_nothing_direct() {
    a_worker_killed_mid_flight_loses_nothing(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_flight_loses_nothing_queued() {
    a_worker_killed_mid_flight_loses_nothing(SyncPath::Queue).await;
}

async fn a_worker_killed_mid_flight_loses_nothing(path: SyncPath) {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat")).await;
    let mut doomed = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let _survivor = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let gateway = GatewayBuilder::new(&nats.url()).sync_path(path).start().await;

    let url = gateway.function_url("nap", "/");
    let load = tokio::spawn(async move { call_all(&url, 500).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    doomed.kill();
    let results = load.await.unwrap();
    assert_eq!(results.len(), 500);
    assert_all_answered(&results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_without_failing_calls_direct() {
    sigterm_drains_without_failing_calls(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_without_failing_calls_queued() {
    sigterm_drains_without_failing_calls(SyncPath::Queue).await;
}

async fn sigterm_drains_without_failing_calls(path: SyncPath) {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat")).await;
    let mut leaving = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let _staying = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), FAST_REDELIVERY).await;
    let gateway = GatewayBuilder::new(&nats.url()).sync_path(path).start().await;

    let url = gateway.function_url("nap", "/");
    let load = tokio::spawn(async move { call_all(&url, 300).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let drained_in = tokio::task::spawn_blocking(move || leaving.terminate()).await.unwrap();
    assert!(drained_in < Duration::from_secs(10), "drained in {drained_in:?}");
    let results = load.await.unwrap();
    assert_all_answered(&results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_worker_loses_its_calls_to_another_within_seconds_direct() {
    a_hung_worker_loses_its_calls_to_another_within_seconds(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_worker_loses_its_calls_to_another_within_seconds_queued() {
    a_hung_worker_loses_its_calls_to_another_within_seconds(SyncPath::Queue).await;
}

async fn a_hung_worker_loses_its_calls_to_another_within_seconds(path: SyncPath) {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap50.wat")).await;
    // The default ack wait (5 s), with progress reported every half of it.
    // Queued: 8 slots each, 16 callers. Direct: 16 slots each, so that no
    // call is handed back to the queue for want of a slot (a queued call
    // held by the hung worker waits for the ack wait, as above).
    let slots = match path {
        SyncPath::Direct => &[("WORKER_CONCURRENCY", "16")],
        SyncPath::Queue => &[("WORKER_CONCURRENCY", "8")],
    };
    let hung = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), slots).await;
    let _other = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), slots).await;
    let gateway = GatewayBuilder::new(&nats.url()).sync_path(path).start().await;

    // 16 connections calling a 50 ms function one call after another.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (url, stop) = (gateway.function_url("nap", "/"), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut seen = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = std::time::Instant::now();
                    let r = http.get(format!("{url}?call={c}-{i}")).send().await.unwrap();
                    let (status, body) = (r.status().as_u16(), r.text().await.unwrap());
                    seen.push((format!("call={c}-{i}"), status, body, started.elapsed()));
                    i += 1;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill").args([sig, &hung.pid().to_string()]).status().unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    tokio::time::sleep(Duration::from_secs(7)).await;
    // Resumed, it finishes the runs it held: their late answers are dropped.
    signal("-CONT");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut calls = Vec::new();
    for c in clients {
        calls.extend(c.await.unwrap());
    }
    assert_own_answers(calls.iter().map(|(want, status, body, _)| (want.clone(), *status, body.as_str())));
    let slowest = calls.iter().map(|c| c.3).max().unwrap();
    let metrics = reqwest::get(gateway.admin_url("/metrics")).await.unwrap().text().await.unwrap();
    let dropped = metrics.lines().find(|l| l.starts_with("olin_gateway_dropped_replies_total")).unwrap_or("none");
    println!("{} calls, all answered once; the slowest took {slowest:?}; {dropped}", calls.len());
    // Direct: the gateway hears nothing from the hung worker for its 1 s
    // liveness window and sends the call directly again (to the other
    // worker, or to the hung one again and then, after another second, to
    // the queue, where the hung worker's pull requests have expired), a
    // 50 ms run. Queued: held at the hang, redelivered within the 5 s ack
    // wait, then a 50 ms run.
    let bound = match path {
        SyncPath::Direct => {
            let queued = wait::metric(&gateway.admin_url("/metrics"), "olin_gateway_direct_queued_total", &[]).await;
            let resent = wait::metric(&gateway.admin_url("/metrics"), "olin_gateway_direct_resent_total", &[]).await;
            println!("sent directly again: {resent:?}; queued: {queued:?}");
            assert!(resent.unwrap() >= 1.0, "the hung worker held direct calls");
            Duration::from_secs(3)
        }
        SyncPath::Queue => Duration::from_secs(7),
    };
    assert!(slowest < bound, "a held call waited {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_waits_for_callbacks_under_way() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "hello", fixtures::HELLO_WASM).await;
    let env = &[("WORKER_EGRESS_ALLOW_CIDRS", "127.0.0.0/8")];
    let mut worker = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), env).await;
    let gateway = GatewayBuilder::new(&nats.url())
        .config(|c| {
            c.callback_allow_http = true;
            c.egress_allow_cidrs = "127.0.0.0/8".into();
        })
        .start()
        .await;
    // A callback receiver that drops the first delivery (so the worker
    // waits to try again) and answers the second after 5 s: longer than a
    // drain takes by itself.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/done", receiver.local_addr().unwrap());
    let (got_tx, got_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut buf = vec![0; 64 << 10];
        let (mut first, _) = receiver.accept().await.unwrap();
        let _ = first.read(&mut buf).await.unwrap();
        drop(first);
        let _ = got_tx.send(());
        let (mut second, _) = receiver.accept().await.unwrap();
        let _ = second.read(&mut buf).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        second.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
    });
    let http = reqwest::Client::new();
    let r = http
        .post(gateway.function_url("hello", "/"))
        .header("prefer", "respond-async")
        .header("olin-callback-url", &callback)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = format!("{}{}", gateway.url(), r.headers()["location"].to_str().unwrap());
    tokio::time::timeout(Duration::from_secs(10), got_rx).await.unwrap().unwrap();
    // The callback waits for its second try: SIGTERM now.
    let drained_in = tokio::task::spawn_blocking(move || worker.terminate()).await.unwrap();
    let state = http.get(&location).send().await.unwrap().headers()["olin-callback"].to_str().unwrap().to_owned();
    println!("drained in {drained_in:?}; callback {state}");
    assert_eq!(state, "delivered", "the worker waited for the callback it was delivering");
}
