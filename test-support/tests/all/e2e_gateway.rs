//! The gateway's own answers: limits, refusal when nothing can run a call,
//! host routing, metrics. Real NATS, real workers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use olin_gateway::SyncPath;
use olin_proto::v1::Limits;
use olin_test_support::{
    Fleet, GatewayBuilder, NatsServer, S3Server, WorkerBuilder, deploy, deploy_route, fixtures, test_topology, wait,
};

/// NATS, S3 and an operator client, with `slow` deployed: a function that
/// sleeps through its whole wall time of `wall_ms`.
async fn with_slow_function(wall_ms: u64) -> (NatsServer, S3Server, async_nats::Client) {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    deploy_route(&client, &s3.store_args(), "slow", &fixtures::wat("sleepy.wat"), |r| {
        r.limits = Some(Limits { wall_ms, ..Default::default() })
    })
    .await;
    (nats, s3, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_worker_means_503_at_once() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "hello", fixtures::HELLO_WASM).await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let started = Instant::now();
    let r = reqwest::get(gateway.function_url("hello", "/")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "answered in {:?}", started.elapsed());
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["olin-error"], "NO_WORKERS");

    // A worker that starts is seen at once, and one that stops is gone.
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(1).start().await;
    let r = reqwest::get(gateway.function_url("hello", "/")).await.unwrap();
    assert_eq!(r.status(), 200);
    worker.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::get(gateway.function_url("hello", "/")).await.unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_is_refused_with_retry_after() {
    // A function that never answers in time, and a queue of three.
    let (nats, _s3, client) = with_slow_function(3_000).await;
    let topology = olin_nats::topology::TopologyConfig { invocations_max_msgs: 3, ..test_topology() };
    let gateway = GatewayBuilder::new(&nats.url()).topology(topology).config(|c| c.queue_slack_ms = 500).start().await;
    // A heartbeat with no worker behind it: calls are queued and never taken.
    let js = async_nats::jetstream::new(client.clone());
    let workers = js.get_key_value(olin_proto::subject::KV_WORKERS).await.unwrap();
    workers.put("phantom", "{}".into()).await.unwrap();

    let http = reqwest::Client::new();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let (http, url) = (http.clone(), gateway.function_url("slow", "/"));
        waiting.push(tokio::spawn(async move { http.get(url).send().await.unwrap().status() }));
    }
    wait::until_true("the three calls are queued", Duration::from_secs(5), || async {
        let mut stream = js.get_stream(olin_proto::subject::STREAM_INVOCATIONS).await.unwrap();
        stream.info().await.unwrap().state.messages == 3
    })
    .await;
    let started = Instant::now();
    let r = http.get(gateway.function_url("slow", "/")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["olin-error"], "QUEUE_FULL");
    assert_eq!(r.headers()["retry-after"], "1");

    // Refused calls do not accumulate: after a first flood (which lets the
    // allocators settle), a second flood of the same size leaves the
    // gateway (this process) and nats-server where they were.
    let body = vec![b'x'; 64 << 10];
    let flood = |rounds: usize| {
        let (http, url, body) = (http.clone(), gateway.function_url("slow", "/"), body.clone());
        async move {
            for round in 0..rounds {
                let calls = (0..100).map(|_| http.post(&url).body(body.clone()).send());
                for r in futures::future::join_all(calls).await {
                    assert_eq!(r.unwrap().status(), 503, "round {round}");
                }
            }
        }
    };
    flood(10).await;
    let (self_before, nats_before) = (rss_kib(std::process::id()), rss_kib(nats.pid().unwrap()));
    flood(10).await;
    let (self_grown, nats_grown) =
        (rss_kib(std::process::id()) - self_before, rss_kib(nats.pid().unwrap()) - nats_before);
    assert!(self_grown < 24 * 1024, "another 1000 refused calls grew the gateway's process by {self_grown} KiB");
    assert!(nats_grown < 24 * 1024, "another 1000 refused calls grew nats-server by {nats_grown} KiB");

    for w in waiting {
        assert_eq!(w.await.unwrap(), 504, "the queued calls time out at their deadline");
    }
}

/// A function's share: three calls in the queue (and, on the direct path,
/// three more in flight from each gateway); the flood's other calls are
/// refused and another function is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_function_cannot_fill_the_queue_for_everyone_direct() {
    // At most three direct and three queued (running ones count there): at
    // least four refused. Fewer go direct when the worker's slots are taken
    // by queued calls first: then up to seven are refused.
    let refused = flood_of_one_function(SyncPath::Direct).await;
    assert!((4..=7).contains(&refused), "{refused} of ten refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_function_cannot_fill_the_queue_for_everyone_queued() {
    assert_eq!(flood_of_one_function(SyncPath::Queue).await, 7, "three queued (running ones count), the rest refused");
}

/// Ten calls at once of a 3 s function whose share is three; returns how
/// many were refused.
async fn flood_of_one_function(path: SyncPath) -> usize {
    let (nats, s3, client) = with_slow_function(3_000).await;
    deploy(&client, &s3.store_args(), "hello", fixtures::HELLO_WASM).await;
    // Three calls of one function at most in the queue (running ones count).
    let topology = olin_nats::topology::TopologyConfig { invocations_max_msgs_per_function: 3, ..test_topology() };
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args())
        .topology(topology.clone())
        .config(|c| c.concurrency = Some(4))
        .start()
        .await;
    let gateway = GatewayBuilder::new(&nats.url())
        .topology(topology)
        .config(|c| {
            c.queue_slack_ms = 500;
            c.sync_path = path;
        })
        .start()
        .await;

    let http = reqwest::Client::new();
    let flood: Vec<_> = (0..10)
        .map(|_| {
            let (http, url) = (http.clone(), gateway.function_url("slow", "/"));
            tokio::spawn(async move {
                let r = http.get(url).send().await.unwrap();
                let code = r.headers().get("olin-error").map(|v| v.to_str().unwrap().to_owned());
                (r.status().as_u16(), code)
            })
        })
        .collect();
    wait::until_true("the flood is refused or in flight", Duration::from_secs(5), || async {
        let metrics = gateway.admin_url("/metrics");
        let in_flight = wait::metric(&metrics, "olin_gateway_in_flight", &[]).await.unwrap();
        let refused = wait::metric(&metrics, "olin_gateway_requests_total", &["status=\"503\""]).await.unwrap();
        in_flight + refused >= 10.0
    })
    .await;
    // The flooding function holds its share; another function is still served.
    let r = http.get(gateway.function_url("hello", "/")).send().await.unwrap();
    assert_eq!(r.status(), 200, "another function's call was refused: {:?}", r.headers().get("olin-error"));
    let mut refused = 0;
    for call in flood {
        let (status, code) = call.await.unwrap();
        if status == 503 {
            assert_eq!(code.as_deref(), Some("QUEUE_FULL"));
            refused += 1;
        }
    }
    worker.stop().await;
    refused
}

fn rss_kib(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trace_context_reaches_the_worker_and_the_guest_direct() {
    trace_context_reaches_the_worker_and_the_guest(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trace_context_reaches_the_worker_and_the_guest_queued() {
    trace_context_reaches_the_worker_and_the_guest(SyncPath::Queue).await;
}

async fn trace_context_reaches_the_worker_and_the_guest(path: SyncPath) {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    deploy(&client, &s3.store_args(), "getenv", &fixtures::wat("getenv.wat")).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).config(|c| c.sync_path = path).start().await;
    // A plain subscriber sees what JetStream stores, or what a worker gets.
    let tapped = match path {
        SyncPath::Direct => olin_proto::subject::direct_subject("getenv").unwrap(),
        SyncPath::Queue => olin_proto::subject::invoke_subject("getenv").unwrap(),
    };
    let mut tap = client.subscribe(tapped).await.unwrap();
    client.flush().await.unwrap();

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = reqwest::Client::new()
        .get(gateway.function_url("getenv", "/?HTTP_TRACEPARENT"))
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), traceparent, "the guest sees the caller's trace context");
    let msg = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut tap)).await.unwrap().unwrap();
    let headers = msg.headers.unwrap();
    assert_eq!(headers.get(olin_proto::subject::HDR_TRACEPARENT).unwrap().as_str(), traceparent);
    assert!(headers.get(olin_proto::subject::HDR_DEADLINE).is_some());
    match path {
        // How often the worker is to say it runs: a quarter of the liveness window.
        SyncPath::Direct => assert_eq!(headers.get(olin_proto::subject::HDR_DIRECT).unwrap().as_str(), "250"),
        SyncPath::Queue => assert!(headers.get(olin_proto::subject::HDR_MSG_ID).is_some()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_host_routing_and_metrics() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    deploy(&client, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let gateway = GatewayBuilder::new(&nats.url())
        .config(|c| {
            c.max_body_bytes = 1024;
            c.max_header_bytes = 2048;
            c.base_domain = Some("fn.test".into());
        })
        .start()
        .await;
    let http = reqwest::Client::new();

    let r = http.post(gateway.function_url("echo", "")).body(vec![b'x'; 1025]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["olin-error"], "BODY_TOO_LARGE");
    let r = http.post(gateway.function_url("echo", "")).body(vec![b'x'; 1024]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1024);

    let r = http.get(gateway.function_url("echo", "")).header("x-big", "y".repeat(3000)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(r.headers()["olin-error"], "HEADERS_TOO_LARGE");

    // Host routing: echo.fn.test owns its whole path space.
    let r = http.post(format!("{}/any/path", gateway.url())).header("host", "echo.fn.test").body("via host").send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "via host");
    let r = http.get(format!("{}/", gateway.url())).header("host", "nope.fn.test").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["olin-error"], "FUNCTION_NOT_FOUND");

    // Every answer names its invocation; metrics count them by function and status.
    let r = http.get(gateway.function_url("echo", "")).send().await.unwrap();
    assert!(r.headers().contains_key("olin-invocation-id"));
    let metrics = http.get(gateway.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("olin_gateway_requests_total{function=\"echo\",status=\"200\"} 3"), "{metrics}");
    assert!(metrics.contains("olin_gateway_requests_total{function=\"echo\",status=\"413\"} 1"), "{metrics}");
    assert!(metrics.contains("olin_gateway_request_duration_seconds_count{function=\"echo\"}"), "{metrics}");
    assert!(metrics.contains("olin_gateway_in_flight"), "{metrics}");
    // The public listener serves functions only: metrics name every function.
    for admin in ["/metrics", "/readyz", "/healthz"] {
        let r = http.get(format!("{}{admin}", gateway.url())).send().await.unwrap();
        assert_eq!(r.status(), 404, "{admin} on the public listener");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_response_header_policy() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    deploy(&client, &s3.store_args(), "headers", &fixtures::wat("headers.wat")).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).config(|c| c.base_domain = Some("fn.test".into())).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "headers").await;
    let secrets = [("olin-invoke-key", "k-123"), ("proxy-authorization", "Basic cHJveHk6cGFzcw==")];
    let mut events = client.subscribe(olin_proto::subject::event_subject("headers").unwrap()).await.unwrap();

    // Under path routing every function shares the gateway's origin: no
    // cookie, no platform header, no hop-by-hop header of the guest's.
    let mut req = http.get(gateway.function_url("headers", "/"));
    for (name, value) in secrets {
        req = req.header(name, value);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h.get("set-cookie").is_none(), "{h:?}");
    assert!(h.get("olin-error").is_none(), "{h:?}");
    assert_eq!(h["olin-outcome"], "OK", "the platform's own outcome, not the guest's");
    assert!(h.get("connection").is_none_or(|v| v != "close"), "{h:?}");
    assert_eq!(h["x-mine"], "yes");
    assert_eq!(r.text().await.unwrap(), "", "the invoke key and proxy credentials never reach the guest");
    // The execution record says what was dropped, and why.
    let event = 'found: loop {
        let msg =
            tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut events)).await.unwrap().unwrap();
        for event in olin_proto::v1::ExecutionEventBatch::events_in(&msg.payload).unwrap() {
            if event.path == "/" {
                break 'found event;
            }
        }
    };
    let log = String::from_utf8_lossy(&event.stderr_tail).into_owned();
    assert!(log.contains("response header Set-Cookie dropped: cookies need the function's own origin"), "{log}");
    assert!(log.contains("response header Olin-Error dropped"), "{log}");
    assert!(!event.headers.iter().any(|h| h.name.eq_ignore_ascii_case("set-cookie")), "{:?}", event.headers);

    // On a host of its own, the origin is the function's: the cookie passes.
    let mut req = http.get(format!("{}/", gateway.url())).header("host", "headers.fn.test");
    for (name, value) in secrets {
        req = req.header(name, value);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["set-cookie"], "session=stolen; Path=/");
    assert!(h.get("olin-error").is_none(), "{h:?}");
    assert_eq!(h["olin-outcome"], "OK");
    assert_eq!(r.text().await.unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_requests_are_closed_and_the_connection_cap_holds() {
    use olin_test_support::slow_client::{half_sent, idle, keep_asking, still_open_after, unprompted_answer};
    let nats = NatsServer::start();
    let gateway = GatewayBuilder::new(&nats.url())
        .config(|c| {
            c.header_timeout_ms = 1_000;
            c.max_connections = 600;
        })
        .start()
        .await;
    // A fresh connection per request: the server may close an idle pooled one.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();

    // 500 connections that send half a request line and then nothing.
    let started = Instant::now();
    let stalled = half_sent(gateway.addr, 500).await;
    // A normal request is answered throughout.
    let checks = keep_asking(gateway.function_url("nope", "/"), 404, Duration::from_millis(2_500));
    let open = still_open_after(stalled, Duration::from_millis(1_000 + 2_000)).await;
    println!("500 half-sent requests: {open} still open {:?} after they started", started.elapsed());
    assert_eq!(open, 0, "every half-sent request is closed within the header timeout + 2 s");
    assert!(checks.await.unwrap() > 10);

    // Past the connection cap, a new connection is answered 503 at once,
    // while the admin listener's probe is still answered.
    let capped = GatewayBuilder::new(&nats.url()).config(|c| c.max_connections = 20).start().await;
    let holding = idle(capped.addr, 20).await;
    let open = |n: f64| {
        let metrics = capped.admin_url("/metrics");
        async move { wait::metric(&metrics, "olin_gateway_connections_open", &[]).await == Some(n) }
    };
    wait::until_true("the gateway holds 20 connections", Duration::from_secs(5), || open(20.0)).await;
    let refused = unprompted_answer(capped.addr, Duration::from_secs(2)).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");
    let probe = http.get(capped.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(probe.status(), 200, "the probe is answered over the cap");
    let metrics = http.get(capped.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("olin_gateway_connections_refused_total 1"), "{metrics}");
    drop(holding);
    wait::until_true("the held connections are closed", Duration::from_secs(5), || open(0.0)).await;
    let r = http.get(capped.function_url("nope", "/")).send().await.unwrap();
    assert_eq!(r.status(), 404, "served again once connections close");
}

/// Reads one HTTP response (head and `Content-Length` body) from `conn`;
/// its status code, or None if the connection closed first.
async fn read_response(conn: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    head.split(' ').nth(1)?.parse().ok()
}

/// How long until the server closes `conn` (it sends nothing more).
async fn closed_after(conn: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt as _;
    let started = Instant::now();
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, conn.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => Some(started.elapsed()),
        Ok(Ok(_)) => panic!("the server sent more"),
        Err(_) => None,
    }
}

/// A keep-alive connection may wait the idle timeout for its next request,
/// longer than the header timeout (so the load balancer in front, not the
/// gateway, closes it); a request head that has started must still arrive
/// within the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_outlive_the_header_timeout_but_slow_heads_do_not() {
    use tokio::io::AsyncWriteExt as _;
    let nats = NatsServer::start();
    let gateway = GatewayBuilder::new(&nats.url())
        .config(|c| {
            c.header_timeout_ms = 800;
            c.idle_timeout_ms = 3_000;
        })
        .start()
        .await;
    let request = b"GET /f/nope/ HTTP/1.1\r\nHost: x\r\n\r\n";

    // Idle for twice the header timeout, then a second request: answered.
    let mut conn = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut conn).await, Some(404));
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    conn.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut conn).await, Some(404), "an idle connection was closed at the header timeout");

    // A head that starts and stalls is cut at the header timeout, not the
    // idle one.
    conn.write_all(b"GET /f/nope/ HT").await.unwrap();
    let cut = closed_after(&mut conn, Duration::from_secs(10)).await.expect("a stalled head is closed");
    assert!(cut < Duration::from_millis(2_500), "a stalled head lived {cut:?}");

    // An idle connection is let go at the idle timeout.
    let mut conn = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut conn).await, Some(404));
    let idle = closed_after(&mut conn, Duration::from_secs(10)).await.expect("an idle connection is closed");
    assert!(idle >= Duration::from_millis(2_500) && idle < Duration::from_millis(6_000), "closed after {idle:?}");

    // A new connection that sends nothing has the header timeout.
    let mut conn = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let silent = closed_after(&mut conn, Duration::from_secs(10)).await.expect("a silent connection is closed");
    assert!(silent < Duration::from_millis(2_500), "a silent connection lived {silent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_bodies_share_one_memory_budget() {
    // A function whose calls are never taken (a heartbeat with no worker):
    // each call holds its body until its deadline.
    let (nats, _s3, client) = with_slow_function(1_500).await;
    let gateway = GatewayBuilder::new(&nats.url())
        .config(|c| {
            c.queue_slack_ms = 500;
            c.max_buffered_body_mib = 1;
        })
        .start()
        .await;
    let js = async_nats::jetstream::new(client.clone());
    let workers = js.get_key_value(olin_proto::subject::KV_WORKERS).await.unwrap();
    workers.put("phantom", "{}".into()).await.unwrap();
    let http = reqwest::Client::new();
    let post = |size: usize| {
        let (http, url) = (http.clone(), gateway.function_url("slow", "/"));
        tokio::spawn(async move {
            let r = http.post(url).body(vec![b'x'; size]).send().await.unwrap();
            (r.status().as_u16(), r.headers().get("olin-error").map(|v| v.to_str().unwrap().to_owned()))
        })
    };
    let first = post(900 << 10);
    wait::until_true("the first call is in flight", Duration::from_secs(5), || async {
        wait::metric(&gateway.admin_url("/metrics"), "olin_gateway_in_flight", &[]).await == Some(1.0)
    })
    .await;
    // The first body holds 900 KiB of the 1 MiB budget until it is answered.
    let (status, code) = post(900 << 10).await.unwrap();
    assert_eq!((status, code.as_deref()), (503, Some("BUSY")));
    let small = post(1 << 10);
    assert_eq!(first.await.unwrap(), (504, Some("TIMEOUT".to_owned())), "the held call ran to its deadline");
    assert_eq!(small.await.unwrap().0, 504, "a small body still fit");
    // Once answered, its share is free again.
    let again = post(900 << 10).await.unwrap();
    assert_eq!(again.0, 504, "not refused: {again:?}");
}

/// Status, `Olin-Error` and `Retry-After` of a GET.
async fn probe(http: reqwest::Client, url: String) -> (u16, Option<String>, Option<String>) {
    let r = http.get(url).send().await.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), h("olin-error"), h("retry-after"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_holds_across_two_gateways() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy_route(&nats.client().await, &s3.store_args(), "hello", fixtures::HELLO_WASM, |r| {
        r.rate_limit = Some(olin_proto::v1::RateLimit { per_second: 20, burst: 20 })
    })
    .await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(4).start().await;
    let gateways = [GatewayBuilder::new(&nats.url()).start().await, GatewayBuilder::new(&nats.url()).start().await];
    let http = reqwest::Client::new();
    for g in &gateways {
        g.wait_for_route(&http, "hello").await;
    }
    // Let the bucket refill after the route checks, then 200 calls a second
    // for 4 s, alternating between the replicas.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (rate, secs) = (200u32, 4u32);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..rate * secs {
        tick.tick().await;
        let url = gateways[i as usize % 2].function_url("hello", "/");
        calls.push(tokio::spawn(probe(http.clone(), url)));
    }
    let (mut ok, mut limited) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            (200, ..) => ok += 1,
            (429, code, retry) => {
                assert_eq!(code.as_deref(), Some("RATE_LIMITED"));
                assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
                limited += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, then 20 a second.
    let served = f64::from(ok - 20) / elapsed;
    println!("admitted {ok} of {} calls in {elapsed:.2} s: {served:.1} calls/s after the burst of 20", ok + limited);
    assert_eq!(ok + limited, rate * secs);
    assert!((15.0..=25.0).contains(&served), "about 20 calls/s across both gateways, got {served:.1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_limit_holds_across_two_gateways() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    // `nap` sleeps 200 ms; two at a time at most, sync and async alike.
    deploy_route(&client, &s3.store_args(), "nap", &fixtures::wat("nap.wat"), |r| r.max_concurrency = 2).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(8).start().await;
    let gateways = [GatewayBuilder::new(&nats.url()).start().await, GatewayBuilder::new(&nats.url()).start().await];
    let http = reqwest::Client::new();
    for g in &gateways {
        g.wait_for_route(&http, "nap").await;
    }
    let mut events = client.subscribe(olin_proto::subject::event_subject("nap").unwrap()).await.unwrap();
    client.flush().await.unwrap();
    let (mut ok, mut limited, mut accepted) = (0, 0, 0);
    for wave in 0..4 {
        let calls: Vec<_> = (0..12)
            .map(|i| {
                let (http, url) = (http.clone(), gateways[i % 2].function_url("nap", "/"));
                let prefer = wave == 3 && i < 4;
                tokio::spawn(async move {
                    let req = http.get(url);
                    let req = if prefer { req.header("prefer", "respond-async") } else { req };
                    let r = req.send().await.unwrap();
                    (r.status().as_u16(), r.headers().get("olin-error").map(|v| v.to_str().unwrap().to_owned()))
                })
            })
            .collect();
        for call in calls {
            match call.await.unwrap() {
                (200, _) => ok += 1,
                (202, _) => accepted += 1,
                (429, code) => {
                    assert_eq!(code.as_deref(), Some("RATE_LIMITED"));
                    limited += 1;
                }
                other => panic!("unexpected answer {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every run that happened, from its event: when its slot took it until it finished.
    let runs = ok + accepted;
    let mut spans = Vec::new();
    while spans.len() < runs {
        let next = futures::StreamExt::next(&mut events);
        let msg = tokio::time::timeout(Duration::from_secs(10), next).await.unwrap().unwrap();
        for e in olin_proto::v1::ExecutionEventBatch::events_in(&msg.payload).unwrap() {
            spans.push((e.started_unix_ms, e.finished_unix_ms));
        }
    }
    let mut edges: Vec<(u64, i32)> = spans.iter().flat_map(|(s, f)| [(*s, 1), (*f, -1)]).collect();
    // An end and a start in the same millisecond: the end first.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    println!("{ok} answered, {accepted} accepted async, {limited} refused; at most {most} running at once");
    assert!(ok >= 2 && limited >= 20, "some calls run, the rest are refused: {ok} ok, {limited} refused");
    assert_eq!(most, 2, "never more than two runs at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_that_starts_late_stops_at_its_callers_deadline() {
    // `slow` runs through its whole wall time (2 s); the caller waits 2.5 s.
    let (nats, s3, client) = with_slow_function(2_000).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(1).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).config(|c| c.queue_slack_ms = 500).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "slow").await;
    let mut events = client.subscribe(olin_proto::subject::event_subject("slow").unwrap()).await.unwrap();
    client.flush().await.unwrap();
    // One slot: the second call starts when the first has run its 2 s, with
    // about 0.5 s left before its caller's deadline.
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let (http, url) = (http.clone(), gateway.function_url("slow", "/"));
            tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 504);
    }
    let mut runs = Vec::new();
    while runs.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut events)).await;
        for e in olin_proto::v1::ExecutionEventBatch::events_in(&msg.unwrap().unwrap().payload).unwrap() {
            runs.push(e.finished_unix_ms - e.started_unix_ms);
        }
    }
    runs.sort_unstable();
    println!("runs took {runs:?} ms");
    assert!(runs[1] >= 1_900, "the first call ran its whole wall time: {runs:?}");
    assert!(runs[0] < 1_000, "the late one stopped at its caller's deadline, not after 2 s: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_runs_a_call_once() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    // `getenv` answers with the variable its query names: `RUN_ID` is the
    // run's invocation id, so identical bodies mean one run.
    deploy(&nats.client().await, &s3.store_args(), "getenv", &fixtures::wat("getenv.wat")).await;
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(4).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "getenv").await;
    let ran_before = worker.executions();
    let call = |gateway_url: String, key: &'static str| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{gateway_url}/f/getenv/?RUN_ID")).header("idempotency-key", key).send().await;
            let r = r.unwrap();
            let id = r.headers()["olin-invocation-id"].to_str().unwrap().to_owned();
            (r.status().as_u16(), id, r.text().await.unwrap())
        }
    };
    // Sequential repeats: the first answer again, no second run.
    let first = call(gateway.url(), "order-1").await;
    assert_eq!(first.0, 200);
    assert_eq!(first.2.trim(), first.1, "the body is the run's id");
    for _ in 0..3 {
        assert_eq!(call(gateway.url(), "order-1").await, first);
    }
    // Concurrent repeats of a new key: one run, one answer for all.
    let answers = futures::future::join_all((0..8).map(|_| call(gateway.url(), "order-2"))).await;
    assert!(answers.iter().all(|a| a == &answers[0] && a.0 == 200), "{answers:?}");
    assert_ne!(answers[0], first, "another key is another call");
    // Across a gateway restart.
    gateway.stop().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    gateway.wait_for_route(&http, "getenv").await;
    assert_eq!(call(gateway.url(), "order-1").await, first);
    // Keys are checked.
    let r = http.get(gateway.function_url("getenv", "/")).header("idempotency-key", "a b").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["olin-error"].to_str().unwrap()), (400, "BAD_IDEMPOTENCY_KEY"));
    // Async: a repeat is pointed at the first call's result.
    let accept = || async {
        let r = http
            .get(gateway.function_url("getenv", "/?RUN_ID"))
            .header("prefer", "respond-async")
            .header("idempotency-key", "job-1")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.headers()["location"].to_str().unwrap().to_owned())
    };
    let (a, b) = (accept().await, accept().await);
    assert_eq!((a.0, &a), (202, &b), "one async call, one result URL");
    wait::until_true("the async call runs", Duration::from_secs(10), || async {
        worker.executions() - ran_before >= 4
    })
    .await;
    // Three keys, three runs (the route check after the restart ran one
    // more), and no fourth: a quiet period, since nothing marks a run that
    // does not happen.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keyed_runs = worker.executions() - ran_before - 1;
    assert_eq!(keyed_runs, 3, "each key ran its call once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_go_away_leave_no_request_in_flight() {
    let (nats, s3, _client) = with_slow_function(2_000).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(4).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "slow").await;
    // Five callers give up after 200 ms: their connections close mid-call.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let calls = (0..5).map(|_| impatient.get(gateway.function_url("slow", "/")).send());
    for r in futures::future::join_all(calls).await {
        assert!(r.unwrap_err().is_timeout());
    }
    wait::until_true("requests whose clients left are no longer in flight", Duration::from_secs(1), || async {
        wait::metric(&gateway.admin_url("/metrics"), "olin_gateway_in_flight", &[]).await == Some(0.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_too_large_for_nats_is_answered_once_direct() {
    an_answer_too_large_for_nats_is_answered_once(SyncPath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_too_large_for_nats_is_answered_once_queued() {
    an_answer_too_large_for_nats_is_answered_once(SyncPath::Queue).await;
}

async fn an_answer_too_large_for_nats_is_answered_once(path: SyncPath) {
    // A server that takes messages of 256 KiB at most; `big` answers 512 KiB.
    let nats = NatsServer::start_with_max_payload(256 << 10);
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "big", &fixtures::wat("big.wat")).await;
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).config(|c| c.sync_path = path).start().await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let r = http.get(gateway.function_url("big", "/")).send().await.unwrap();
    let outcome = r.headers()["olin-outcome"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    println!("answered in {:?}: {body}", started.elapsed());
    assert_eq!(outcome, "OUTPUT_TOO_LARGE");
    assert!(body.contains("max_payload 262144"), "{body}");
    // Once: the call is acked (so never redelivered), after one run; a
    // direct call is never queued at all.
    let js = async_nats::jetstream::new(nats.client().await);
    let queued =
        js.get_stream(olin_proto::subject::STREAM_INVOCATIONS).await.unwrap().info().await.unwrap().state.last_sequence;
    assert_eq!(queued, u64::from(path == SyncPath::Queue));
    wait::until_true("the call is acked", Duration::from_secs(5), || async {
        let stream = js.get_stream(olin_proto::subject::STREAM_INVOCATIONS).await.unwrap();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(olin_proto::subject::CONSUMER_WORKERS).await.unwrap();
        let info = consumer.info().await.unwrap();
        info.ack_floor.stream_sequence == queued && info.num_ack_pending == 0
    })
    .await;
    assert_eq!(worker.executions(), 1);
}

/// JetStream's acknowledgement of a queued call (the gateway queues every
/// call here) never reaches the gateway in time: everything NATS sends the gateway arrives 100 ms late
/// (a [`olin_test_support::SlowLink`]) and the gateway waits 5 ms for an
/// ack, so every publish is unconfirmed although the call is stored. The
/// gateway publishes it again under the same id, never refuses it, and
/// answers with its one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_publish_ack_runs_the_call_once() {
    olin_test_support::init_tracing();
    let fleet = Fleet::builder().function("echo", fixtures::ECHO_WASM).no_gateway().start().await;
    let link = fleet.nats.slow_link(Duration::from_millis(100)).await;
    let gateway = GatewayBuilder::new(link.url())
        .config(|c| {
            c.publish_ack_timeout_ms = 5;
            c.sync_path = SyncPath::Queue;
        })
        .start()
        .await;
    gateway.wait_for_route(&fleet.http, "echo").await;
    let http = &fleet.http;
    for i in 0..5 {
        let body = format!("call {i}");
        let r = http.post(gateway.function_url("echo", "/")).body(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.headers().get("olin-error"));
        assert_eq!(r.text().await.unwrap(), body);
    }
    // The route check ran one call; each of the five ran once, whatever the
    // number of publishes: the stream stored six messages.
    wait::until_true("every call is acked", Duration::from_secs(5), || async {
        let mut s = fleet.js.get_stream(olin_proto::subject::STREAM_INVOCATIONS).await.unwrap();
        s.info().await.unwrap().state.messages == 0
    })
    .await;
    let mut stream = fleet.js.get_stream(olin_proto::subject::STREAM_INVOCATIONS).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.last_sequence, 6, "a republished call is stored once");
    assert_eq!(fleet.worker0().executions(), 6);
    let metrics = gateway.admin_url("/metrics");
    let retries = wait::metric(&metrics, "olin_gateway_publish_retries_total", &[]).await.unwrap();
    assert!(retries >= 5.0, "{retries} publishes retried: the test did not lose every ack");
}

/// A slow limits bucket (everything NATS sends arrives 400 ms late, so a
/// compare-and-set takes about 800 ms): calls to one function take turns,
/// and one that cannot get its turn within `TURN_WAIT` (1 s) is refused as
/// unavailable at once, instead of waiting in an unbounded line.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_that_waits_too_long_for_its_turn_at_admission_is_refused() {
    use olin_nats::admission::{AdmitError, Limits, TURN_WAIT};
    let nats = NatsServer::start();
    let js = async_nats::jetstream::new(nats.client().await);
    olin_nats::topology::gateway(&js, &test_topology()).await.unwrap();
    let link = nats.slow_link(Duration::from_millis(400)).await;
    let slow = olin_test_support::connect_as(link.url(), olin_proto::access::Role::Gateway).await;
    let kv = async_nats::jetstream::new(slow).get_key_value(olin_proto::subject::KV_LIMITS).await.unwrap();
    let limits = Limits::new(kv);
    let rate = olin_proto::v1::RateLimit { per_second: 1000, burst: 1000 };
    let started = Instant::now();
    let calls = (0..5).map(|_| {
        let limits = limits.clone();
        async move { (limits.take_token("hot", &rate).await, started.elapsed()) }
    });
    let results = futures::future::join_all(calls).await;
    println!("{results:?}");
    let admitted = results.iter().filter(|(r, _)| r.is_ok()).count();
    let turned_away: Vec<_> = results
        .iter()
        .filter(|(r, _)| matches!(r, Err(AdmitError::Unavailable(why)) if why.contains("no turn")))
        .collect();
    assert!(admitted >= 1, "the first call in line is admitted");
    assert!(!turned_away.is_empty(), "five calls of ~800 ms each cannot all get a turn within 1 s");
    for (_, took) in &turned_away {
        assert!(*took >= TURN_WAIT && *took < TURN_WAIT + Duration::from_millis(900), "turned away after {took:?}");
    }
}
