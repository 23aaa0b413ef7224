//! `nats-server` restarted under load: gateway and workers reconnect by
//! themselves, service resumes within seconds, and no accepted call is lost
//! (a call is either answered with its own answer or was refused at once).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures::future::join_all;
use olin_test_support::{GatewayBuilder, NatsServer, S3Server, SyncPath, WorkerProcess, deploy, fixtures};

const WORKER: &str = env!("CARGO_BIN_EXE_olin-worker");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_resumes_after_a_nats_restart_direct() {
    service_resumes_after_a_nats_restart(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_resumes_after_a_nats_restart_queued() {
    service_resumes_after_a_nats_restart(SyncPath::Queue).await;
}

async fn service_resumes_after_a_nats_restart(path: SyncPath) {
    let mut nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat")).await;
    let env = [("WORKER_CONCURRENCY", "8"), ("OLIN_ACK_WAIT_MS", "2000"), ("OLIN_MAX_DELIVER", "5")];
    let _w1 = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), &env).await;
    let _w2 = WorkerProcess::spawn(WORKER, &nats.url(), &s3.store_args(), &env).await;
    let gateway = GatewayBuilder::new(&nats.url()).sync_path(path).start().await;
    let http = reqwest::Client::new();

    // Steady load: a call every 10 ms for 6 s, with NATS restarted at 2 s.
    let url = gateway.function_url("nap", "/");
    let load = {
        let http = http.clone();
        tokio::spawn(async move {
            let mut calls = Vec::new();
            for i in 0..600 {
                let (http, url) = (http.clone(), format!("{url}?call={i}"));
                calls.push(tokio::spawn(async move {
                    let r = http.get(&url).send().await.unwrap();
                    let status = r.status().as_u16();
                    let error = r.headers().get("olin-error").map(|v| v.to_str().unwrap().to_owned());
                    (i, status, error, r.text().await.unwrap())
                }));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            join_all(calls).await.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>()
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart();
    let restarted = Instant::now();

    // Calls succeed again within 5 s of the restart.
    let mut recovered = None;
    while restarted.elapsed() < Duration::from_secs(5) {
        let r = http.get(gateway.function_url("nap", "/?probe")).send().await.unwrap();
        if r.status() == 200 {
            recovered = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered.is_some(), "no successful call within 5 s of the restart");

    let results = load.await.unwrap();
    let ok = results.iter().filter(|(i, s, _, body)| *s == 200 && *body == format!("call={i}")).count();
    let refused: Vec<_> = results.iter().filter(|(_, s, _, _)| *s == 503).collect();
    let lost: Vec<_> =
        results.iter().filter(|(i, s, _, body)| !(*s == 200 && *body == format!("call={i}")) && *s != 503).collect();
    assert!(lost.is_empty(), "{} accepted calls lost or wrong, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(ok >= 500, "only {ok} of 600 answered ({} refused at once)", refused.len());
    println!("recovered in {:?}; {ok} answered, {} refused during the restart", recovered.unwrap(), refused.len());
}

/// A stream that stores no execution events (gone, or electing a leader)
/// holds at most `WORKER_MAX_UNCONFIRMED_EVENTS` of them in the worker's
/// memory: past that the worker stops taking calls until JetStream stores
/// them again, and then every event is stored, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_jetstream_cannot_store_are_bounded_and_none_is_lost() {
    let fleet = olin_test_support::Fleet::builder()
        .slots(1)
        .worker_config(|c| c.max_unconfirmed_events = 2)
        .function("echo", fixtures::ECHO_WASM)
        .start()
        .await;
    let url = fleet.gateway().function_url("echo", "/");
    assert_eq!(fleet.http.post(&url).body("warm").send().await.unwrap().status(), 200);
    let stats = fleet.worker0().stats.clone();
    unconfirmed_becomes(&stats, 0, "the warm call's event stored", Duration::from_secs(10)).await;

    // No stream: every event waits for one.
    fleet.js.delete_stream(olin_proto::subject::STREAM_EVENTS).await.unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls = {
        let (http, url, answered) = (fleet.http.clone(), url.clone(), answered.clone());
        tokio::spawn(async move {
            for i in 0..5 {
                let r = http.post(&url).body(format!("call {i}")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.text().await.unwrap(), format!("call {i}"));
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    unconfirmed_becomes(&stats, 2, "two events unconfirmed", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(stats.events_unconfirmed.load(std::sync::atomic::Ordering::Relaxed), 2, "the bound holds");
    assert!(before < 5, "the worker took every call while its events were unconfirmed ({before} answered)");

    // The stream is back: the waiting events are stored, the calls go on.
    olin_nats::topology::ensure_events(&fleet.js, &fleet.topology).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), calls).await.expect("the calls resume").unwrap();
    unconfirmed_becomes(&stats, 0, "every event stored", Duration::from_secs(30)).await;
    assert_eq!(stats.events_lost.load(std::sync::atomic::Ordering::Relaxed), 0);
    let mut stream = fleet.js.get_stream(olin_proto::subject::STREAM_EVENTS).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 5, "one event per call, none lost or doubled");
}

/// Waits until the worker's unconfirmed events number `n`.
async fn unconfirmed_becomes(stats: &olin_worker::Stats, n: u64, what: &str, within: Duration) {
    olin_test_support::wait::until_true(what, within, || {
        let now = stats.events_unconfirmed.load(std::sync::atomic::Ordering::Relaxed);
        async move { now == n }
    })
    .await;
}
