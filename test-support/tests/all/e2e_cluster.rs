//! Olincloud on a three-node JetStream cluster with replicated (R3)
//! streams, losing nodes under steady load: the stream leader is killed,
//! then another node once the first rejoined, then every node in turn (a
//! rolling restart). Every call is answered once with its own answer, or
//! refused with 503 and then verified never to have run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use olin_nats::topology::{self, TopologyConfig};
use olin_proto::subject;
use olin_proto::v1::InvocationRequest;
use olin_test_support::{
    GatewayBuilder, GatewayHandle, NatsCluster, S3Server, SyncPath, WorkerBuilder, deploy, fixtures, stream,
    test_topology,
};

/// What every call got.
#[derive(Debug, Default)]
struct Tally {
    /// Answered with its own body: their ids.
    ok: Vec<String>,
    /// Refused with 503: their ids, to check they never ran.
    refused: Vec<String>,
    /// Why they were refused (`olin-error`), and how many times.
    refused_why: HashMap<String, usize>,
    /// Timed out (504) while stored: their ids, to check they are still in
    /// the queue (or dead-lettered) and never ran.
    timed_out: Vec<String>,
    /// Anything else, with a sample of what.
    wrong: Vec<String>,
}

/// `clients` loops, each calling `echo` through the gateways in turn with
/// a body (and path) of its own until `stop`.
async fn steady(urls: Vec<String>, clients: usize, stop: Arc<AtomicBool>) -> Tally {
    let http = reqwest::Client::new();
    let loops = (0..clients).map(|c| {
        let (http, urls, stop) = (http.clone(), urls.clone(), stop.clone());
        tokio::spawn(async move {
            let mut t = Tally::default();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("c{c}-{n}");
                let url = format!("{}{id}", urls[n % urls.len()]);
                n += 1;
                let sent = Instant::now();
                match http.post(url).body(id.clone()).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let error = r.headers().get("olin-error").map(|v| v.to_str().unwrap_or("").to_owned());
                        let invocation =
                            r.headers().get("olin-invocation-id").map(|v| v.to_str().unwrap_or("").to_owned());
                        let body = r.text().await.unwrap_or_default();
                        match status {
                            200 if body == id => t.ok.push(id),
                            503 => {
                                *t.refused_why.entry(error.unwrap_or_default()).or_default() += 1;
                                t.refused.push(id);
                            }
                            504 => t.timed_out.push(id),
                            _ => t.wrong.push(format!(
                                "{id}: {status} {error:?} after {:?} ({invocation:?}): {body:.80}",
                                sent.elapsed()
                            )),
                        }
                    }
                    Err(e) => t.wrong.push(format!("{id}: {e}")),
                }
            }
            t
        })
    });
    let mut all = Tally::default();
    for t in futures::future::join_all(loops).await {
        let t = t.unwrap();
        all.ok.extend(t.ok);
        all.refused.extend(t.refused);
        for (why, n) in t.refused_why {
            *all.refused_why.entry(why).or_default() += n;
        }
        all.timed_out.extend(t.timed_out);
        all.wrong.extend(t.wrong);
    }
    all
}

/// How long until a call through `gateway` is answered again, and what
/// the probes before it got. A probe is sent every 100 ms without waiting
/// for the ones before (one caught in the failover may take long while
/// fresh calls are answered already).
async fn recovery(gateway: &GatewayHandle, http: &reqwest::Client) -> (Duration, Vec<String>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut probes = futures::stream::FuturesUnordered::new();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            Some(probe) = futures::StreamExt::next(&mut probes) => {
                let probe: Result<reqwest::Response, reqwest::Error> = probe;
                let at = started.elapsed();
                match probe {
                    Ok(r) if r.status() == 200 => return (at, seen),
                    Ok(r) => seen.push(format!("{at:.1?}: {} {:?}", r.status(), r.headers().get("olin-error"))),
                    Err(e) => seen.push(format!("{at:.1?}: {e}")),
                }
            }
            () = tokio::time::sleep_until(next) => {
                probes.push(http.post(gateway.function_url("echo", "/probe")).body("probe").send());
                next += Duration::from_millis(100);
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no call answered 30 s after a node loss: {seen:?}");
    }
}

/// The calls stored in `stream` (an invocation stream or `OLIN_DEAD`), by
/// the path they were called with.
async fn stored_calls(js: &async_nats::jetstream::Context, stream: &str) -> Vec<String> {
    let calls: Vec<InvocationRequest> = stream::stored(js, stream).await;
    calls.into_iter().map(|r| r.path.trim_start_matches('/').to_owned()).collect()
}

/// Times each guest ran, by the path it was called with (from the stored
/// execution events).
async fn runs(js: &async_nats::jetstream::Context) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for e in stream::events(js).await {
        *runs.entry(e.path.trim_start_matches('/').to_owned()).or_default() += 1;
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_cluster_loses_nodes_under_load_and_answers_every_call_once_direct() {
    a_three_node_cluster_loses_nodes_under_load_and_answers_every_call_once(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_cluster_loses_nodes_under_load_and_answers_every_call_once_queued() {
    a_three_node_cluster_loses_nodes_under_load_and_answers_every_call_once(SyncPath::Queue).await;
}

async fn a_three_node_cluster_loses_nodes_under_load_and_answers_every_call_once(path: SyncPath) {
    olin_test_support::init_tracing();
    let mut cluster = NatsCluster::start(3).await;
    let topo = TopologyConfig { replicas: 3, ..test_topology() };
    let js = async_nats::jetstream::new(cluster.client().await);
    topology::ensure(&js, &topo).await.unwrap();
    let s3 = S3Server::start().await;
    deploy(&cluster.client().await, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(WorkerBuilder::new(&cluster.url(), s3.store_args()).topology(topo.clone()).start().await);
    }
    let gateways = [
        GatewayBuilder::new(&cluster.url()).topology(topo.clone()).sync_path(path).start().await,
        GatewayBuilder::new(&cluster.url()).topology(topo.clone()).sync_path(path).start().await,
    ];
    let http = reqwest::Client::new();
    for g in &gateways {
        g.wait_for_route(&http, "echo").await;
    }
    for stream in [subject::STREAM_INVOCATIONS, subject::STREAM_EVENTS] {
        cluster.wait_for_replicas(stream).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let urls = gateways.iter().map(|g| g.function_url("echo", "/")).collect();
    let load = tokio::spawn(steady(urls, 8, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The leader of the queue, then another node once the first is back,
    // then each node in turn.
    let leader = cluster.leader_of(subject::STREAM_INVOCATIONS).await;
    let mut victims = vec![leader, (leader + 1) % cluster.len()];
    victims.extend(0..cluster.len());
    let mut recoveries = Vec::new();
    for (round, node) in victims.into_iter().enumerate() {
        cluster.kill(node);
        let (took, seen) = recovery(&gateways[round % 2], &http).await;
        println!("killed {}: answered again after {took:?}; before: {seen:?}", cluster.name(node));
        recoveries.push(took);
        // Direct calls need no stream leader: they are answered again once
        // the gateway and a worker are connected to live nodes. Queued
        // calls wait for a lost stream leader to be replaced by election:
        // NATS waits 4 to 9 s (its Raft election timeout) before followers
        // campaign, longer on a loaded machine, and calls wait (the gateway
        // publishes them again) rather than fail. That bound is loose; the
        // figures are printed and recorded in docs/operations.md.
        let bound = match path {
            SyncPath::Direct => Duration::from_secs(5),
            SyncPath::Queue => Duration::from_secs(20),
        };
        assert!(took < bound, "{} killed: no answer for {took:?}\n{}", cluster.name(node), cluster.logs());
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.restart(node);
        for stream in [subject::STREAM_INVOCATIONS, subject::STREAM_EVENTS] {
            cluster.wait_for_replicas(stream).await;
        }
    }

    stop.store(true, Ordering::Relaxed);
    let tally = load.await.unwrap();
    println!(
        "answered {}, refused {} {:?}, timed out {}, wrong {}; recoveries {recoveries:?}",
        tally.ok.len(),
        tally.refused.len(),
        tally.refused_why,
        tally.timed_out.len(),
        tally.wrong.len()
    );
    assert!(tally.wrong.is_empty(), "calls answered wrongly: {:?}", &tally.wrong[..tally.wrong.len().min(10)]);
    assert!(tally.ok.len() > 500, "only {} calls answered", tally.ok.len());

    // A refused call never ran. Events are stored after the reply: let the
    // workers finish what they hold first.
    for w in workers {
        w.stop().await;
    }
    let runs = runs(&js).await;
    for id in &tally.refused {
        assert_eq!(runs.get(id), None, "{id} was refused with 503 yet ran");
    }
    // Every answered call left its execution record (events outlive a lost leader).
    let unrecorded: Vec<&String> = tally.ok.iter().filter(|id| !runs.contains_key(*id)).collect();
    assert!(
        unrecorded.is_empty(),
        "{} answered calls have no execution event: {:?}",
        unrecorded.len(),
        &unrecorded[..unrecorded.len().min(5)]
    );
    // A call that timed out was stranded by the server: nats-server before
    // 2.10.26 can lose track of a delivery when a consumer leader is killed
    // (nats-server#6469) and never deliver the message again. Such a call
    // never ran (an answer lost in a reconnect is sent again, not run
    // again), is still stored (the sweeper dead-letters it past its
    // deadline, for `olinctl dead-letters redrive`), and is rare.
    if !tally.timed_out.is_empty() {
        let mut stored = stored_calls(&js, subject::STREAM_INVOCATIONS).await;
        stored.extend(stored_calls(&js, subject::STREAM_DEAD).await);
        for id in &tally.timed_out {
            assert_eq!(runs.get(id), None, "{id} timed out, yet it ran: its answer was lost");
            assert!(stored.contains(id), "{id} timed out and is stored nowhere: lost");
        }
        println!("stranded by the server, kept in the queue: {:?}", tally.timed_out);
    }
    assert!(tally.timed_out.len() <= 5, "{} calls stranded", tally.timed_out.len());
    let reran = runs.values().filter(|n| **n > 1).count();
    println!("{} calls ran, {reran} of them more than once (at-least-once execution)", runs.len());
}
