//! The direct path of synchronous calls (`GATEWAY_SYNC_PATH=direct`):
//! core NATS from the gateway to one worker, and the queue when
//! no worker takes a call. The fault tests (worker killed or hung, NATS
//! restarted, cluster nodes lost) run on both paths where they live.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use olin_proto::subject;
use olin_test_support::{Fleet, GatewayBuilder, SyncPath, fixtures, wait};

fn direct(c: &mut olin_gateway::Config) {
    c.sync_path = SyncPath::Direct;
}

async fn stored(js: &async_nats::jetstream::Context, stream: &str) -> (u64, u64) {
    let mut s = js.get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap();
    (info.state.last_sequence, info.state.messages)
}

/// A direct call never touches `OLIN_INVOCATIONS`, and its run is recorded
/// like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_calls_skip_the_queue_and_are_recorded() {
    olin_test_support::init_tracing();
    let fleet = Fleet::builder().workers(2).function("echo", fixtures::ECHO_WASM).gateway_config(direct).start().await;
    let gateway = fleet.gateway();
    for i in 0..20 {
        let body = format!("call {i}");
        let r = fleet.http.post(gateway.function_url("echo", "/")).body(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.headers().get("olin-error"));
        assert_eq!(r.text().await.unwrap(), body);
    }
    let metrics = gateway.admin_url("/metrics");
    let direct = wait::metric(&metrics, "olin_gateway_direct_calls_total", &[]).await.unwrap();
    let queued = wait::metric(&metrics, "olin_gateway_direct_queued_total", &[]).await.unwrap();
    assert!(direct >= 21.0, "{direct} direct calls (20 and the route check)");
    assert_eq!(queued, 0.0);
    assert_eq!(stored(&fleet.js, subject::STREAM_INVOCATIONS).await.0, 0, "a direct call was queued");
    wait::until_true("every run is recorded", Duration::from_secs(5), || async {
        olin_test_support::stream::events(&fleet.js).await.len() >= 21
    })
    .await;
    let ran: u64 = fleet.workers.iter().map(|w| w.executions()).sum();
    assert_eq!(ran, 21);
}

/// A worker whose slots are all busy hands a direct call back at once; the
/// gateway queues it and it is answered when a slot frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_without_a_free_slot_hands_the_call_back_to_be_queued() {
    olin_test_support::init_tracing();
    let fleet = Fleet::builder()
        .workers(1)
        .slots(1)
        .function("nap", &fixtures::wat("nap50.wat"))
        .gateway_config(direct)
        .start()
        .await;
    let gateway = fleet.gateway();
    let calls = (0..6).map(|i| {
        let url = format!("{}?call={i}", gateway.function_url("nap", "/"));
        let http = fleet.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status(), r.text().await.unwrap(), i)
        }
    });
    for (status, body, i) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("call={i}"));
    }
    let metrics = gateway.admin_url("/metrics");
    let not_taken = wait::metric(&metrics, "olin_gateway_direct_queued_total", &["reason=\"not_taken\""]).await;
    assert!(not_taken.unwrap() >= 1.0, "six calls at once on one slot: some were handed back");
    assert_eq!(
        wait::metric(&metrics, "olin_gateway_direct_queued_total", &["reason=\"silent\""]).await.unwrap(),
        0.0,
        "a busy worker answers at once"
    );
    let handed_back = fleet.worker0().stats.direct_not_taken.load(Ordering::Relaxed);
    assert!(handed_back >= 1);
    assert!(stored(&fleet.js, subject::STREAM_INVOCATIONS).await.0 >= handed_back, "handed-back calls are queued");
    assert_eq!(fleet.worker0().executions(), 7, "six and the route check, each once");
}

/// A worker is known (its heartbeat) but none listens for direct calls:
/// NATS says so (no responders), the call is queued, and a worker that
/// starts later answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_direct_call_no_worker_listens_for_is_queued() {
    olin_test_support::init_tracing();
    let fleet = Fleet::builder().workers(0).no_gateway().function("echo", fixtures::ECHO_WASM).start().await;
    olin_nats::topology::ensure(&fleet.js, &fleet.topology).await.unwrap();
    let heartbeats = fleet.js.get_key_value(subject::KV_WORKERS).await.unwrap();
    heartbeats.put("gone-worker", "{}".into()).await.unwrap();
    let gateway = GatewayBuilder::new(&fleet.nats.url()).sync_path(SyncPath::Direct).start().await;
    let call = {
        let (http, url) = (fleet.http.clone(), gateway.function_url("echo", "/"));
        tokio::spawn(async move {
            let r = http.post(url).body("late but answered").send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        })
    };
    let metrics = gateway.admin_url("/metrics");
    wait::until_true("the call is queued", Duration::from_secs(5), || async {
        wait::metric(&metrics, "olin_gateway_direct_queued_total", &["reason=\"no_workers\""]).await == Some(1.0)
    })
    .await;
    assert_eq!(stored(&fleet.js, subject::STREAM_INVOCATIONS).await.1, 1);
    let worker = fleet.worker().start().await;
    let (status, body) = call.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "late but answered");
    assert_eq!(worker.executions(), 1);
}
