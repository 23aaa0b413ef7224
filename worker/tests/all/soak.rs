//! Soak: the whole platform on a three-node JetStream cluster (R3), under
//! steady load at half of its measured capacity, with a worker process
//! `kill -9`ed and a NATS node `kill -9`ed in turn every few minutes.
//!
//! Every call must be answered with its own answer (or refused with 503
//! during a failover), none twice; every answered call must be counted once
//! in its function's usage; the database and the JetStream stores must stay
//! within what retention allows; and the resident memory of every process
//! of ours that lives long enough, and of the NATS cluster as a whole, must
//! stay flat after warm-up.
//!
//! `OLIN_SOAK_SECS` sets the length (120 s by default, as CI runs it;
//! `bench/soak.sh` runs 1,800); `OLIN_SOAK_OUT` names a directory for the
//! samples (`samples.csv`) and the figures (`summary.json`). The memory and
//! level-off checks need time to mean anything: they assert from 10 minutes
//! on and are reported below that.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use olin_nats::topology::{self, TopologyConfig};
use olin_test_support::{
    ADMIN_PASSWORD, GatewayBuilder, NatsCluster, S3Server, TestDb, WorkerProcess, fixtures, spawn_control_on,
    test_topology, wait,
};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

const WORKER: &str = env!("CARGO_BIN_EXE_olin-worker");
const WORKERS: usize = 3;

/// What the load got.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    wrong: AtomicU64,
    samples_wrong: parking_lot::Mutex<Vec<String>>,
    /// When each call that timed out was sent (s from the start), to
    /// line them up with the faults.
    timed_out_at: parking_lot::Mutex<Vec<f64>>,
}

impl Tally {
    fn record(&self, id: &str, sent_at: f64, status: u16, body: &str) {
        match status {
            200 if body == id => self.ok.fetch_add(1, Ordering::Relaxed),
            503 => self.refused.fetch_add(1, Ordering::Relaxed),
            504 => {
                self.timed_out_at.lock().push(sent_at);
                self.timed_out.fetch_add(1, Ordering::Relaxed)
            }
            _ => {
                let mut s = self.samples_wrong.lock();
                if s.len() < 10 {
                    s.push(format!("{id}: {status} {body:.80}"));
                }
                self.wrong.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Resident memory of `pid` in MiB, if it runs.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Calls `url` `clients` at a time for `secs`; returns the answers per second.
async fn capacity(http: &reqwest::Client, url: &str, clients: usize, secs: u64) -> f64 {
    let stop = Instant::now() + Duration::from_secs(secs);
    let loops = (0..clients).map(|c| {
        let (http, url) = (http.clone(), url.to_owned());
        tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                let id = format!("cap-{c}-{n}");
                let r = http.post(format!("{url}{id}")).body(id.clone()).send().await;
                if let Ok(r) = r
                    && r.status() == 200
                {
                    n += 1;
                }
            }
            n
        })
    });
    let total: u64 = futures::future::join_all(loops).await.into_iter().map(|r| r.unwrap()).sum();
    total as f64 / secs as f64
}

/// A series of one process: label -> (t, MiB) samples of its lifetime.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// Growth of a process's memory from its warm-up (the median of the second
/// quarter of its life) to its end (the median of its last quarter).
fn growth(samples: &[(f64, f64)]) -> Option<f64> {
    if samples.len() < 8 {
        return None;
    }
    let q = samples.len() / 4;
    let median = |s: &[(f64, f64)]| {
        let mut v: Vec<f64> = s.iter().map(|x| x.1).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let warm = median(&samples[q..2 * q]);
    let end = median(&samples[samples.len() - q..]);
    Some(end / warm - 1.0)
}

/// The series of the three NATS nodes' resident memory together.
const NATS_CLUSTER: &str = "NATS cluster (3 nodes together)";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_on_a_three_node_cluster_with_workers_and_nodes_killed() {
    let secs: u64 = std::env::var("OLIN_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let out = std::env::var("OLIN_SOAK_OUT").ok().map(std::path::PathBuf::from);
    let long = secs >= 600;
    let run = Duration::from_secs(secs);
    olin_test_support::init_tracing();

    let mut cluster = NatsCluster::start(3).await;
    let topo = TopologyConfig { replicas: 3, ..test_topology() };
    let js = async_nats::jetstream::new(cluster.client().await);
    topology::ensure(&js, &topo).await.unwrap();
    let s3 = S3Server::start().await;
    let test_db = TestDb::new().await;
    let max_age = Duration::from_secs((secs / 6).max(60));
    let control = spawn_control_on(test_db.url(), &cluster.url(), s3.store_args(), topo.clone(), |c| {
        c.executions_max_age = max_age;
        c.retention_interval = Duration::from_secs(10);
    })
    .await;
    let db = test_db.connect().await;
    // Idle connections are let go before the gateway closes them (its
    // idle timeout, 75 s), as a client should: a POST sent on a connection
    // the server is closing at that moment fails in transport.
    let http = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(5)).build().unwrap();

    // The function, deployed through the API.
    let token = {
        let login = json!({"username": "admin", "password": ADMIN_PASSWORD});
        let r = http.post(control.v1("/tokens")).json(&login).send().await.unwrap();
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    };
    let post = |path: &str, body: Value| http.post(control.v1(path)).bearer_auth(&token).json(&body).send();
    assert_eq!(post("/functions", json!({"name": "echo"})).await.unwrap().status(), StatusCode::CREATED);
    let upload = http
        .post(control.v1("/functions/echo/versions"))
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(fixtures::ECHO_WASM.to_vec());
    assert_eq!(upload.send().await.unwrap().status(), StatusCode::CREATED);
    let deployed = post("/functions/echo/deployments", json!({"version": 1})).await.unwrap();
    assert_eq!(deployed.status(), StatusCode::CREATED);

    let worker_env = [("WORKER_CONCURRENCY", "2"), ("OLIN_JS_REPLICAS", "3")];
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(WorkerProcess::spawn(WORKER, &cluster.url(), &s3.store_args(), &worker_env).await);
    }
    let gateways = [
        GatewayBuilder::new(&cluster.url()).topology(topo.clone()).start().await,
        GatewayBuilder::new(&cluster.url()).topology(topo.clone()).start().await,
    ];
    for g in &gateways {
        g.wait_for_route(&http, "echo").await;
    }
    let urls: Vec<String> = gateways.iter().map(|g| g.function_url("echo", "/")).collect();

    // Half of what the platform answers here, at most 1,000 calls/s.
    let measured = capacity(&http, &urls[0], 16, 5).await;
    let rate = (measured / 2.0).clamp(20.0, 1000.0);
    println!("capacity {measured:.0} calls/s; soaking {secs} s at {rate:.0} calls/s");

    // The load: one call every 1/rate s, each with a body of its own.
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let load = {
        let (tally, stop, http, urls) = (tally.clone(), stop.clone(), http.clone(), urls.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut calls = tokio::task::JoinSet::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let id = format!("s{n}");
                let url = format!("{}{id}", urls[(n % 2) as usize]);
                n += 1;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let (http, tally) = (http.clone(), tally.clone());
                let sent_at = started.elapsed().as_secs_f64();
                calls.spawn(async move {
                    match http.post(url).body(id.clone()).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body = r.text().await.unwrap_or_default();
                            tally.record(&id, sent_at, status, &body);
                        }
                        Err(e) => tally.record(&id, sent_at, 0, &e.to_string()),
                    }
                });
                while calls.try_join_next().is_some() {}
            }
            while calls.join_next().await.is_some() {}
        })
    };

    // Samples: memory of every process, database and store sizes, rows.
    let period = Duration::from_secs((secs / 8).max(15));
    let sample_every = Duration::from_secs((secs / 120).clamp(2, 15));
    let mut rss: Series = BTreeMap::new();
    let mut lines =
        vec!["t_s,sent,ok,refused,rss_test_mib,rss_workers_mib,rss_nats_mib,db_mib,js_mib,executions".to_owned()];
    let mut levels: Vec<(f64, f64, f64)> = Vec::new();
    let mut generations = [0usize; WORKERS];
    let mut node_generations = [0usize; 3];
    let mut next_fault = started + period;
    let mut round = 0usize;
    let mut faults = Vec::new();
    while started.elapsed() < run {
        tokio::time::sleep(sample_every).await;
        let t = started.elapsed().as_secs_f64();
        let mut total_workers = 0.0;
        let mut total_nats = 0.0;
        let test_rss = rss_mib(std::process::id()).unwrap_or(0.0);
        rss.entry("test process (gateways, control, load)".to_owned()).or_default().push((t, test_rss));
        for (i, w) in workers.iter().enumerate() {
            if let Some(m) = rss_mib(w.pid()) {
                total_workers += m;
                rss.entry(format!("worker {i}.{}", generations[i])).or_default().push((t, m));
            }
        }
        for (i, generation) in node_generations.iter().enumerate() {
            if let Some(m) = cluster.pid(i).and_then(rss_mib) {
                total_nats += m;
                rss.entry(format!("nats {i}.{generation}")).or_default().push((t, m));
            }
        }
        rss.entry(NATS_CLUSTER.to_owned()).or_default().push((t, total_nats));
        let db_mib = scalar(&db, "SELECT pg_database_size(current_database())").await as f64 / 1048576.0;
        let js_mib = cluster.store_bytes() as f64 / 1048576.0;
        let rows = scalar(&db, "SELECT COUNT(*) FROM executions").await;
        levels.push((t, db_mib, js_mib));
        lines.push(format!(
            "{t:.0},{},{},{},{test_rss:.1},{total_workers:.1},{total_nats:.1},{db_mib:.1},{js_mib:.1},{rows}",
            tally.sent.load(Ordering::Relaxed),
            tally.ok.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
        ));

        // The faults: a worker, then a NATS node, in turn.
        if Instant::now() >= next_fault && started.elapsed() + period / 2 < run {
            next_fault += period;
            if round.is_multiple_of(2) {
                let i = (round / 2) % WORKERS;
                workers[i].kill();
                println!("{t:.0} s: killed worker {i}");
                faults.push(format!("{t:.0} s worker {i}"));
                workers[i] = WorkerProcess::spawn(WORKER, &cluster.url(), &s3.store_args(), &worker_env).await;
                generations[i] += 1;
            } else {
                let i = (round / 2) % 3;
                cluster.kill(i);
                println!("{t:.0} s: killed NATS node {i}");
                faults.push(format!("{t:.0} s NATS node {i}"));
                tokio::time::sleep(Duration::from_secs(3)).await;
                cluster.restart(i);
                node_generations[i] += 1;
            }
            round += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let (sent, ok) = (tally.sent.load(Ordering::Relaxed), tally.ok.load(Ordering::Relaxed));
    let (refused, timed_out) = (tally.refused.load(Ordering::Relaxed), tally.timed_out.load(Ordering::Relaxed));
    let wrong = tally.wrong.load(Ordering::Relaxed);
    println!("sent {sent}, answered {ok}, refused {refused}, timed out {timed_out}, wrong {wrong}; {round} faults");

    // Every answered call, capacity probe included, is counted once.
    let usage_calls = || async {
        let r = http.get(control.v1("/functions/echo/usage")).bearer_auth(&token).send().await.unwrap();
        r.json::<Value>().await.unwrap()["calls"].as_u64().unwrap_or(0)
    };
    let answered_200: u64 = {
        let mut n = 0.0;
        for g in &gateways {
            n += wait::metric(&g.admin_url("/metrics"), "olin_gateway_requests_total", &["status=\"200\""])
                .await
                .unwrap_or(0.0);
        }
        n as u64
    };
    let recorded = {
        let started = Instant::now();
        loop {
            let n = usage_calls().await;
            if n >= answered_200 {
                break n;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "60 s after the load, usage counts {n} calls, the gateways answered {answered_200} with 200 \
                 (the load saw {ok})"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };

    let mut report = Vec::new();
    for (label, samples) in &rss {
        if let Some(g) = growth(samples)
            && samples.last().unwrap().0 - samples[0].0 >= secs as f64 * 0.4
        {
            report.push((label.clone(), g));
        }
    }
    let third = levels.len() / 3;
    let level = |f: fn(&(f64, f64, f64)) -> f64| -> (f64, f64) {
        let mid = levels.get(levels.len() - third - 1).map_or(0.0, f);
        let end = levels.last().map_or(0.0, f);
        (mid, end)
    };
    let (db_mid, db_end) = level(|l| l.1);
    let (js_mid, js_end) = level(|l| l.2);
    println!("memory growth after warm-up: {report:?}");
    println!("database {db_mid:.1} -> {db_end:.1} MiB, JetStream stores {js_mid:.1} -> {js_end:.1} MiB (last third)");

    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("samples.csv"), lines.join("\n") + "\n").unwrap();
        let growths: serde_json::Map<String, Value> = report.iter().map(|(l, g)| (l.clone(), json!(g))).collect();
        let summary = json!({
            "secs": secs, "rate_per_s": rate.round(), "capacity_per_s": measured.round(), "faults": round,
            "sent": sent, "answered": ok, "refused": refused, "timed_out": timed_out, "wrong": wrong,
            "answered_200_at_gateways": answered_200, "recorded_in_usage": recorded,
            "db_mib_two_thirds": db_mid, "db_mib_end": db_end, "js_mib_two_thirds": js_mid, "js_mib_end": js_end,
            "memory_growth": growths,
        });
        std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    }

    let samples = tally.samples_wrong.lock().clone();
    assert_eq!(wrong, 0, "calls answered wrongly: {samples:?}");
    // nats-server before 2.10.26 can strand a delivery when a consumer
    // leader is killed (nats-server#6469): rare, and never run.
    let when = {
        let mut per_second = BTreeMap::<u64, u64>::new();
        for t in tally.timed_out_at.lock().iter() {
            *per_second.entry(*t as u64).or_default() += 1;
        }
        per_second
    };
    assert!(timed_out <= 5, "{timed_out} calls timed out, sent at (s: calls) {when:?}; faults {faults:?}");
    assert!(ok + refused + timed_out == sent && ok * 10 >= sent * 9, "sent {sent}, answered {ok}");
    assert_eq!(recorded, answered_200, "every answered call counted once in usage");
    if long {
        // Each of our processes on its own; NATS as a cluster: a node
        // killed comes back empty and the clients that reconnected
        // elsewhere stay there, so one node's memory follows its share of
        // the connections (reported above), the cluster's does not.
        for (label, g) in report.iter().filter(|(l, _)| !l.starts_with("nats ")) {
            assert!(*g < 0.10, "{label}: resident memory grew {:.0}% after warm-up", g * 100.0);
        }
        assert!(db_end <= db_mid * 1.25 + 8.0, "the database keeps growing: {db_mid:.1} -> {db_end:.1} MiB");
        assert!(js_end <= js_mid * 1.25 + 8.0, "the JetStream stores keep growing: {js_mid:.1} -> {js_end:.1} MiB");
    }
}
