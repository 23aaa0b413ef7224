//! The sandbox behind the real worker: hostile guests are stopped with the
//! right outcome and the worker serves the next call; outbound HTTP goes to
//! the opened origin only when allowed; compiled artifacts survive restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use olin_proto::v1::{EnvVar, Limits};
use std::time::Duration;

use futures::StreamExt as _;
use object_store::ObjectStore as _;
use olin_test_support::{GatewayBuilder, NatsServer, S3Server, WorkerBuilder, deploy, deploy_route, fixtures, wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

fn small_limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        memory_bytes: 32 << 20,
        wall_ms: 3_000,
        max_output_bytes: 10 << 20,
        host_budget_bytes: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_guests_never_take_the_worker_down() {
    olin_test_support::init_tracing();
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let store = s3.store_args();
    deploy(&client, &store, "hello", fixtures::HELLO_WASM).await;
    let cases: &[(&str, &str, Limits, &str, u16)] = &[
        ("loop", "loop.wat", small_limits(), "FUEL_EXHAUSTED", 502),
        ("loop-wall", "loop.wat", Limits { fuel: 200_000_000_000, wall_ms: 300, ..small_limits() }, "TIMEOUT", 504),
        ("grow", "grow.wat", small_limits(), "MEMORY_EXCEEDED", 502),
        ("mem32", "mem32.wat", Limits { memory_bytes: 16 << 20, ..small_limits() }, "MEMORY_EXCEEDED", 502),
        ("bigmem", "bigmem.wat", small_limits(), "MODULE_UNAVAILABLE", 503),
        ("flood", "flood.wat", small_limits(), "OUTPUT_TOO_LARGE", 502),
        ("recurse", "recurse.wat", Limits { fuel: 2_000_000_000, ..small_limits() }, "GUEST_ERROR", 502),
        ("unreachable", "unreachable.wat", small_limits(), "GUEST_ERROR", 502),
        ("exit3", "exit3.wat", small_limits(), "GUEST_ERROR", 502),
        ("badcgi", "badcgi.wat", small_limits(), "BAD_CGI_OUTPUT", 502),
        ("opens", "opens.wat", small_limits(), "OK", 200),
    ];
    for (name, file, limits, _, _) in cases {
        let limits = *limits;
        deploy_route(&client, &store, name, &fixtures::wat(file), |r| r.limits = Some(limits)).await;
    }
    let worker = WorkerBuilder::new(&nats.url(), store.clone()).slots(1).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();

    for (name, _, _, outcome, status) in cases {
        let r = http.get(gateway.function_url(name, "/")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{name}");
        assert_eq!(r.headers()["olin-outcome"], *outcome, "{name}");
        if *outcome != "OK" {
            assert_eq!(r.headers()["olin-error"], *outcome, "{name}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], *outcome, "{name}: {v}");
        }
        let ok = http.get(gateway.function_url("hello", "/after")).send().await.unwrap();
        assert_eq!(ok.status(), 200, "the worker serves normally after {name}");
    }
    assert_eq!(worker.executions(), 2 * cases.len() as u64);
}

/// A one-route HTTP server on 127.0.0.1 that records each request head.
async fn upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    upstream_on("127.0.0.1:0").await
}

/// The same server on `addr`.
async fn upstream_on(addr: &str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    let m = sock.read(&mut buf[n..]).await.unwrap();
                    if m == 0 {
                        return;
                    }
                    n += m;
                }
                log.lock().await.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let body = "hello from upstream";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: 1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_resources_reach_allowed_hosts_only() {
    olin_test_support::init_tracing();
    let (port, seen) = upstream().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let store = s3.store_args();
    let wasm = fixtures::wat("http.wat");
    let target = EnvVar::plain("TARGET_URL", format!("http://127.0.0.1:{port}/ignored/path"));
    let t = target.clone();
    deploy_route(&client, &store, "allowed", &wasm, |r| {
        r.env = vec![t];
        r.egress_allow = vec![format!("127.0.0.1:{port}")];
    })
    .await;
    let t = target.clone();
    deploy_route(&client, &store, "denied", &wasm, |r| r.env = vec![t]).await;
    let t = target.clone();
    deploy_route(&client, &store, "other-port", &wasm, |r| {
        r.env = vec![t];
        r.egress_allow = vec!["127.0.0.1:1".into()];
    })
    .await;
    // The upstream is on loopback, which only an operator's allowance opens.
    let _worker =
        WorkerBuilder::new(&nats.url(), store).config(|c| c.egress_allow_cidrs = "127.0.0.0/8".into()).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();

    let r = http.get(gateway.function_url("allowed", "/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-open"], "0");
    assert_eq!(r.headers()["x-flush"], "0");
    let body = r.text().await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.contains("x-upstream: 1\r\n"), "{body}");
    assert!(body.ends_with("\r\n\r\nhello from upstream"), "{body}");
    let requests = seen.lock().await.clone();
    assert_eq!(requests.len(), 1);
    let head = requests[0].to_ascii_lowercase();
    assert!(head.starts_with("get /hello?x=1 http/1.1\r\n"), "the request's own path: {head}");
    assert!(head.contains(&format!("host: 127.0.0.1:{port}\r\n")), "the opened host, not the guest's: {head}");
    assert!(!head.contains("evil.example"), "{head}");
    assert!(head.contains("x-guest: yes\r\n"), "{head}");

    for name in ["denied", "other-port"] {
        let r = http.get(gateway.function_url(name, "/")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["x-open"], "-3", "{name}: permission denied");
        assert!(r.text().await.unwrap().is_empty());
    }
    assert_eq!(seen.lock().await.len(), 1, "denied calls never reached the upstream");
}

/// A tenant's allow-list cannot open the operator's network: loopback,
/// private and link-local addresses (the cloud metadata service) are refused
/// whether named by address or by a name that resolves there, and nothing
/// connects to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allow_lists_cannot_reach_the_operators_network() {
    olin_test_support::init_tracing();
    let (port, seen) = upstream().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let store = s3.store_args();
    let wasm = fixtures::wat("http.wat");
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    // rebind.test answers loopback and an address the operator opened
    // (127.0.0.2 stands in for a public one), in both orders.
    let (_, opened) = upstream_on(&format!("127.0.0.2:{port}")).await;
    std::fs::write(
        &hosts,
        "127.0.0.1 local.test rebind.test\n127.0.0.2 rebind.test rebind2.test\n127.0.0.1 rebind2.test\n\
         ::1 local6.test\n10.1.2.3 private.test\n",
    )
    .unwrap();
    let cases = [
        ("by-address", format!("http://127.0.0.1:{port}/"), format!("127.0.0.1:{port}")),
        ("by-name", format!("http://local.test:{port}/"), format!("local.test:{port}")),
        ("by-name-v6", format!("http://local6.test:{port}/"), format!("local6.test:{port}")),
        ("private", "http://private.test/".to_owned(), "private.test".to_owned()),
        ("metadata", "http://169.254.169.254/latest/meta-data/".to_owned(), "169.254.169.254".to_owned()),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/"), "*".to_owned()),
        ("wildcard", format!("http://localhost:{port}/"), "*".to_owned()),
    ];
    for (name, url, allow) in &cases {
        deploy_route(&client, &store, name, &wasm, |r| {
            r.env = vec![EnvVar::plain("TARGET_URL", url.clone())];
            r.egress_allow = vec![allow.clone()];
        })
        .await;
    }
    for name in ["rebind", "rebind2"] {
        deploy_route(&client, &store, name, &wasm, |r| {
            r.env = vec![EnvVar::plain("TARGET_URL", format!("http://{name}.test:{port}/"))];
            r.egress_allow = vec![format!("{name}.test:{port}")];
        })
        .await;
    }
    let h = hosts.clone();
    let _worker = WorkerBuilder::new(&nats.url(), store)
        .config(|c| {
            c.egress_hosts = Some(h);
            c.egress_allow_cidrs = "127.0.0.2/32".into();
        })
        .start()
        .await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();

    // A name with a permitted answer is reached there, and only there.
    for name in ["rebind", "rebind2"] {
        let r = http.get(gateway.function_url(name, "/")).send().await.unwrap();
        assert_eq!(r.headers()["x-flush"], "0", "{name}");
        assert!(r.text().await.unwrap().ends_with("hello from upstream"), "{name}");
    }
    assert_eq!(opened.lock().await.len(), 2, "both calls went to the permitted address");

    for (name, url, _) in &cases {
        let r = http.get(gateway.function_url(name, "/")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["x-open"], "0", "{name}: the allow-list opens {url}");
        assert_eq!(r.headers()["x-flush"], "-3", "{name}: but the address is refused");
        assert!(r.text().await.unwrap().is_empty(), "{name}");
    }
    assert!(seen.lock().await.is_empty(), "nothing reached the loopback server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn artifacts_survive_a_restart_and_corruption_is_recovered() {
    olin_test_support::init_tracing();
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let store = s3.store_args();
    let sha = deploy(&client, &store, "hello", fixtures::HELLO_WASM).await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_owned();
    let call = || async {
        let r = http.get(gateway.function_url("hello", "/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };

    let key = "artifact-key-artifact-key-artifact-key".to_owned();
    let keyed = |c: &mut olin_worker::Config| {
        c.cache_dir = Some(dir.clone());
        c.cache_key = Some(key.clone());
        // The disk alone (the shared tier has a test of its own).
        c.shared_artifacts = false;
    };
    let first = WorkerBuilder::new(&nats.url(), store.clone()).config(keyed).start().await;
    call().await;
    call().await;
    assert_eq!(first.cache.compiles.load(Ordering::Relaxed), 1);
    assert_eq!(first.cache.memory_hits.load(Ordering::Relaxed), 1);
    first.stop().await;

    let second = WorkerBuilder::new(&nats.url(), store.clone()).config(keyed).start().await;
    call().await;
    assert_eq!(second.cache.compiles.load(Ordering::Relaxed), 0, "no recompile after a restart");
    assert_eq!(second.cache.disk_loads.load(Ordering::Relaxed), 1);
    second.stop().await;

    // Corrupt the artifact: flip bytes in its middle.
    let artifact = std::fs::read_dir(&dir)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&sha))
        .expect("the artifact is on disk");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&artifact, bytes).unwrap();

    let third = WorkerBuilder::new(&nats.url(), store).config(keyed).start().await;
    call().await;
    assert_eq!(third.cache.disk_rejected.load(Ordering::Relaxed), 1);
    assert_eq!(third.cache.compiles.load(Ordering::Relaxed), 1, "recompiled from the store");
    call().await;
    assert!(artifact.exists(), "a good artifact replaced the corrupt one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_worker_runs_a_known_module_from_the_fleets_shared_artifact() {
    olin_test_support::init_tracing();
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let store = s3.store_args();
    let sha = deploy(&nats.client().await, &store, "hello", fixtures::HELLO_WASM).await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();
    let call = || async {
        let r = http.get(gateway.function_url("hello", "/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    let fleet = |key: &'static str| {
        move |c: &mut olin_worker::Config| {
            c.cache_dir = None;
            c.cache_key = Some(key.repeat(40));
        }
    };

    // The first worker of the fleet compiles the module and shares it.
    let first = WorkerBuilder::new(&nats.url(), store.clone()).config(fleet("k")).start().await;
    call().await;
    assert_eq!(first.cache.compiles.load(Ordering::Relaxed), 1);
    let stored = || async { first.cache.shared_stores.load(Ordering::Relaxed) == 1 };
    wait::until_true("the artifact shared", Duration::from_secs(20), stored).await;
    first.stop().await;
    let objects = store.open().unwrap();
    let shared: Vec<_> =
        objects.list(Some(&"artifacts".into())).map(|m| m.unwrap().location.to_string()).collect().await;
    assert!(shared.len() == 1 && shared[0].ends_with(&format!("/{sha}.art")), "{shared:?}");

    // A worker started later, with nothing on disk, runs it without compiling.
    let second = WorkerBuilder::new(&nats.url(), store.clone()).config(fleet("k")).start().await;
    call().await;
    assert_eq!(second.cache.compiles.load(Ordering::Relaxed), 0, "the fleet's artifact was run");
    assert_eq!(second.cache.shared_loads.load(Ordering::Relaxed), 1);
    second.stop().await;

    // A worker under another key never runs it: it compiles its own.
    let outsider = WorkerBuilder::new(&nats.url(), store).config(fleet("x")).start().await;
    call().await;
    assert_eq!(outsider.cache.shared_rejected.load(Ordering::Relaxed), 1);
    assert_eq!(outsider.cache.compiles.load(Ordering::Relaxed), 1);
}
