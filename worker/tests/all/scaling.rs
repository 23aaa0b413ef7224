//! Scaling a fleet of real `olin-worker` processes under steady load: scale
//! down by SIGTERM, a rolling restart, and a fair spread of work. A function
//! that sleeps 50 ms; every call must get its own answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use olin_proto::Message as _;
use olin_test_support::{Fleet, WorkerProcess, fixtures};

const WORKER: &str = env!("CARGO_BIN_EXE_olin-worker");
const SETTINGS: &[(&str, &str)] = &[("WORKER_CONCURRENCY", "4")];
/// How long a drained worker may take to exit (its Kubernetes grace period
/// is 330 s; calls here take 50 ms).
const GRACE: Duration = Duration::from_secs(15);

/// The gateway and `nap` (a function that sleeps 50 ms); workers are
/// processes of their own.
async fn fleet() -> Fleet {
    Fleet::builder().workers(0).function("nap", &fixtures::wat("nap50.wat")).start().await
}

/// `n` worker processes.
async fn processes(fleet: &Fleet, n: usize) -> Vec<WorkerProcess> {
    let mut workers = Vec::with_capacity(n);
    for _ in 0..n {
        workers.push(fleet.worker_process(WORKER, SETTINGS).await);
    }
    workers
}

/// Outcomes of a steady load: (calls, failures with a sample).
#[derive(Debug, Default)]
struct Tally {
    calls: usize,
    failures: Vec<String>,
}

/// `clients` loops calling `url` one call after another until `stop`.
async fn steady(url: String, clients: usize, stop: Arc<AtomicBool>) -> Tally {
    let http = reqwest::Client::new();
    let loops = (0..clients).map(|c| {
        let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut t = Tally::default();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let query = format!("c={c}-{n}");
                n += 1;
                t.calls += 1;
                match http.get(format!("{url}?{query}")).send().await {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        if status != 200 || body != query {
                            t.failures.push(format!("{query}: {status} {body}"));
                        }
                    }
                    Err(e) => t.failures.push(format!("{query}: {e}")),
                }
            }
            t
        })
    });
    let mut total = Tally::default();
    for t in futures::future::join_all(loops).await {
        let t = t.unwrap();
        total.calls += t.calls;
        total.failures.extend(t.failures);
    }
    total
}

fn assert_clean(t: &Tally) {
    assert!(t.calls > 100, "too little load to mean anything: {t:?}");
    assert!(
        t.failures.is_empty(),
        "{} of {} calls failed, e.g. {:?}",
        t.failures.len(),
        t.calls,
        &t.failures[..t.failures.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_down_from_four_to_one_under_load() {
    let fleet = fleet().await;
    let mut workers = processes(&fleet, 4).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(steady(fleet.gateway().function_url("nap", "/"), 12, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // SIGTERM three at once, as a scale-down does.
    let leaving: Vec<WorkerProcess> = workers.drain(1..).collect();
    let drains = leaving.into_iter().map(|mut w| tokio::task::spawn_blocking(move || w.terminate()));
    for took in futures::future::join_all(drains).await {
        let took = took.unwrap();
        assert!(took < GRACE, "a drained worker took {took:?} to exit");
    }
    // The survivor carries the load on its own for a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    assert_clean(&load.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_restart_under_load() {
    let fleet = fleet().await;
    let mut workers = processes(&fleet, 3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(steady(fleet.gateway().function_url("nap", "/"), 8, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // One at a time, as a Deployment with maxSurge 1, maxUnavailable 0: the
    // new worker is up before the old one is told to leave.
    for _ in 0..3 {
        let replacement = fleet.worker_process(WORKER, SETTINGS).await;
        let mut old = workers.remove(0);
        let took = tokio::task::spawn_blocking(move || old.terminate()).await.unwrap();
        assert!(took < GRACE, "a drained worker took {took:?} to exit");
        workers.push(replacement);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    assert_clean(&load.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_is_spread_fairly() {
    const WORKERS: usize = 4;
    let fleet = fleet().await;
    let workers = processes(&fleet, WORKERS).await;
    // Who ran each call, from the execution events.
    let client = fleet.nats.client().await;
    let mut events = client.subscribe(olin_proto::subject::event_subject("nap").unwrap()).await.unwrap();
    let counter = tokio::spawn(async move {
        let mut by_worker: HashMap<String, usize> = HashMap::new();
        while let Some(m) = events.next().await {
            let e = olin_proto::v1::ExecutionEvent::decode(m.payload).unwrap();
            if e.worker_id == "done" {
                break;
            }
            *by_worker.entry(e.worker_id).or_default() += 1;
        }
        by_worker
    });

    let stop = Arc::new(AtomicBool::new(false));
    // Enough clients to keep every slot of every worker busy.
    let load = tokio::spawn(steady(fleet.gateway().function_url("nap", "/"), 4 * WORKERS + 4, stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let tally = load.await.unwrap();
    assert_clean(&tally);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = olin_proto::v1::ExecutionEvent { worker_id: "done".into(), ..Default::default() };
    client.publish(olin_proto::subject::event_subject("nap").unwrap(), done.encode_to_vec().into()).await.unwrap();
    let by_worker = counter.await.unwrap();

    let total: usize = by_worker.values().sum();
    assert!(total >= tally.calls * 9 / 10, "events for {total} of {} calls", tally.calls);
    assert_eq!(by_worker.len(), WORKERS, "every worker took calls: {by_worker:?}");
    let fair = total as f64 / WORKERS as f64;
    for (worker, n) in &by_worker {
        assert!(
            (*n as f64) <= 1.5 * fair,
            "{worker} ran {n} calls, more than 1.5x its fair share {fair:.0}: {by_worker:?}"
        );
    }
    drop(workers);
}

/// The value of an unlabelled-by-us gauge in a Prometheus text page.
fn gauge(page: &str, name: &str) -> Option<u64> {
    page.lines().find(|l| l.starts_with(&format!("{name}{{"))).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backlog_is_exported_for_autoscalers() {
    let fleet = fleet().await;
    // One slot: 24 calls of 50 ms queue up behind it.
    let worker = fleet.worker().slots(1).config(|c| c.backlog_interval_ms = 100).start().await;
    let metrics = format!("http://{}/metrics", worker.addr);
    let http = reqwest::Client::new();
    let url = fleet.gateway().function_url("nap", "/");
    let calls = futures::future::join_all((0..24).map(|i| {
        let (http, url) = (http.clone(), format!("{url}?c={i}"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    }));
    let watch = async {
        let mut most = 0;
        for _ in 0..100 {
            let page = http.get(&metrics).send().await.unwrap().text().await.unwrap();
            if let (Some(pending), Some(running)) =
                (gauge(&page, "olin_worker_consumer_pending"), gauge(&page, "olin_worker_consumer_ack_pending"))
            {
                assert!(running <= 1, "one slot, yet {running} calls running: {page}");
                most = most.max(pending);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        most
    };
    let (statuses, most) = tokio::join!(calls, watch);
    assert!(statuses.iter().all(|s| matches!(s, Ok(200))), "{statuses:?}");
    assert!(most >= 10, "the backlog never showed: at most {most} pending");
    // Drained: the gauges come back to zero.
    let mut idle = false;
    for _ in 0..50 {
        let page = http.get(&metrics).send().await.unwrap().text().await.unwrap();
        if gauge(&page, "olin_worker_consumer_pending") == Some(0)
            && gauge(&page, "olin_worker_consumer_ack_pending") == Some(0)
        {
            idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle, "the backlog gauges never returned to zero");
}
