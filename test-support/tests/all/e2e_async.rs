//! Async invocations end to end: 202 and a result URL, results fetched
//! later, callbacks delivered or given up on (and recorded), failing calls
//! retried with backoff and then dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use olin_proto::subject;
use olin_test_support::{GatewayBuilder, NatsServer, S3Server, WorkerBuilder, deploy, fixtures, test_topology};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

/// Polls a result URL until it is no longer pending.
async fn settled(http: &reqwest::Client, url: &str) -> reqwest::Response {
    for _ in 0..200 {
        let r = http.get(url).send().await.unwrap();
        if r.status() != 202 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} stayed pending");
}

/// What the result at `location` says of its callback once delivery has
/// failed (`olin-callback: failed ...`), waiting up to 10 s for it.
async fn failed_callback(http: &reqwest::Client, location: &str) -> String {
    let mut callback = String::new();
    for _ in 0..200 {
        let r = http.get(location).send().await.unwrap();
        callback = r.headers()["olin-callback"].to_str().unwrap().to_owned();
        if callback.starts_with("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    callback
}

/// The callback receivers here are on this machine: the operator allows
/// loopback and plain http for these tests.
const LOOPBACK: &str = "127.0.0.0/8";

async fn loopback_gateway(nats_url: &str) -> olin_test_support::GatewayHandle {
    GatewayBuilder::new(nats_url)
        .config(|c| {
            c.callback_allow_http = true;
            c.egress_allow_cidrs = LOOPBACK.into();
        })
        .start()
        .await
}

/// A callback receiver on 127.0.0.1 that stores each request body.
async fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let log = got.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            log.lock().await.push(serde_json::from_str(body).unwrap());
                            sock.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").await.unwrap();
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_then_fetched_with_a_callback() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args())
        .config(|c| c.egress_allow_cidrs = LOOPBACK.into())
        .start()
        .await;
    let gateway = loopback_gateway(&nats.url()).await;
    let http = reqwest::Client::new();
    let (hook, got) = receiver().await;

    let r = http
        .post(gateway.function_url("echo", ""))
        .header("prefer", "respond-async")
        .header("olin-callback-url", &hook)
        .body("later, please")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["preference-applied"], "respond-async");
    let id = r.headers()["olin-invocation-id"].to_str().unwrap().to_owned();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/async/results/{id}"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["invocation_id"], id.as_str());

    let r = settled(&http, &format!("{}{location}", gateway.url())).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["olin-outcome"], "OK");
    assert_eq!(r.headers()["olin-attempts"], "1");
    assert_eq!(r.text().await.unwrap(), "later, please");

    for _ in 0..100 {
        if !got.lock().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let posted = got.lock().await.clone();
    assert_eq!(posted.len(), 1, "the callback got the result once");
    assert_eq!(posted[0]["invocation_id"], id.as_str());
    assert_eq!(posted[0]["outcome"], "OK");
    assert_eq!(posted[0]["status"], 200);
    assert_eq!(posted[0]["body_base64"], "bGF0ZXIsIHBsZWFzZQ==");
    let r = http.get(format!("{}{location}", gateway.url())).send().await.unwrap();
    assert_eq!(r.headers()["olin-callback"], "delivered");

    // /async/f/ is the same as Prefer: respond-async; unknown results are 404.
    let r = http.post(format!("{}/async/f/echo", gateway.url())).body("x").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = http.get(format!("{}/async/results/0190aaaa-0000-7000-8000-000000000000", gateway.url())).send();
    assert_eq!(r.await.unwrap().status(), 404);
    // A callback on a synchronous call, or a bad URL, is refused.
    let r = http.post(gateway.function_url("echo", "")).header("olin-callback-url", &hook).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http.post(format!("{}/async/f/echo", gateway.url())).header("olin-callback-url", "ftp://x").send();
    assert_eq!(r.await.unwrap().status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_target_that_is_down_is_retried_then_given_up() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args())
        .config(|c| c.egress_allow_cidrs = LOOPBACK.into())
        .start()
        .await;
    let gateway = loopback_gateway(&nats.url()).await;
    let http = reqwest::Client::new();
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();

    let r = http
        .post(format!("{}/async/f/echo", gateway.url()))
        .header("olin-callback-url", format!("http://{closed}/hook"))
        .body("x")
        .send()
        .await
        .unwrap();
    let location = format!("{}{}", gateway.url(), r.headers()["location"].to_str().unwrap());
    let r = settled(&http, &location).await;
    assert_eq!(r.status(), 200, "the call itself succeeded");
    let callback = failed_callback(&http, &location).await;
    assert!(callback.starts_with("failed (3 attempts): "), "recorded: {callback}");
}

/// Callback URLs cannot point async results at the operator's network: the
/// gateway refuses plain http and internal addresses up front, and the
/// worker refuses a name that resolves inside when it connects, once,
/// without retrying and without touching the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_cannot_reach_the_operators_network() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 inside.test\n").unwrap();
    let h = hosts.clone();
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).config(|c| c.egress_hosts = Some(h)).start().await;
    let strict = GatewayBuilder::new(&nats.url()).start().await;
    let http_ok = GatewayBuilder::new(&nats.url()).config(|c| c.callback_allow_http = true).start().await;
    let http = reqwest::Client::new();
    let (hook, got) = receiver().await;
    let port = hook.rsplit(':').next().unwrap().split('/').next().unwrap().to_owned();

    let refused = |gateway: &olin_test_support::GatewayHandle, url: String| {
        let r = http.post(format!("{}/async/f/echo", gateway.url())).header("olin-callback-url", url).body("x").send();
        async move {
            let r = r.await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (status, body) = refused(&strict, hook.clone()).await;
    assert_eq!(status, 400, "plain http is refused by default: {body}");
    assert!(body.contains("https"), "{body}");
    for url in [
        hook.clone(),
        format!("http://127.0.0.1:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/hook".to_owned(),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ] {
        let (status, body) = refused(&http_ok, url.clone()).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(body.contains("not an address outbound traffic may reach"), "{url}: {body}");
    }

    // A name the gateway cannot judge is accepted; the worker refuses it.
    let r = http
        .post(format!("{}/async/f/echo", http_ok.url()))
        .header("olin-callback-url", format!("http://inside.test:{port}/hook"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = format!("{}{}", http_ok.url(), r.headers()["location"].to_str().unwrap());
    assert_eq!(settled(&http, &location).await.status(), 200, "the call itself succeeded");
    let callback = failed_callback(&http, &location).await;
    assert_eq!(callback, "failed (1 attempts): the callback's address is not one outbound traffic may reach");
    assert!(got.lock().await.is_empty(), "the receiver was never reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_async_calls_are_retried_then_dead_lettered() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    deploy(&client, &s3.store_args(), "exit3", &fixtures::wat("exit3.wat")).await;
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();

    let r = http.post(format!("{}/async/f/exit3", gateway.url())).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let location = format!("{}{}", gateway.url(), r.headers()["location"].to_str().unwrap());
    let r = settled(&http, &location).await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["olin-outcome"], "GUEST_ERROR");
    assert_eq!(r.headers()["olin-attempts"], "3", "1 run + 2 retries");
    assert_eq!(worker.executions(), 3);

    let js = async_nats::jetstream::new(client);
    let dead = js.get_stream(subject::STREAM_DEAD).await.unwrap();
    let m = dead.get_raw_message(1).await.unwrap();
    assert_eq!(m.subject.as_str(), "olin.dead.exit3");
    let reason = m.headers.get(subject::HDR_DEAD_REASON).unwrap().as_str();
    assert!(reason.contains("after 3 attempt(s)"), "{reason}");

    // Listed with its reason; once a fixed version is deployed, re-driving
    // runs it against that version and the result URL shows the answer.
    let listed = olin_nats::dead_letters::list(&js, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].function, "exit3");
    assert!(listed[0].is_async);
    deploy(&js.client(), &s3.store_args(), "exit3", fixtures::ECHO_WASM).await;
    olin_nats::dead_letters::redrive(&js, listed[0].seq, Duration::from_secs(60)).await.unwrap();
    for _ in 0..100 {
        let r = http.get(&location).send().await.unwrap();
        if r.status() == 200 {
            assert_eq!(r.headers()["olin-outcome"], "OK");
            assert!(olin_nats::dead_letters::list(&js, 10).await.unwrap().is_empty(), "removed from OLIN_DEAD");
            assert!(matches!(
                olin_nats::dead_letters::redrive(&js, listed[0].seq, Duration::from_secs(60)).await,
                Err(olin_nats::dead_letters::DeadLetterError::NotFound(_))
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the re-driven call never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_results_bucket_refuses_async_calls_while_sync_calls_go_on() {
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    deploy(&nats.client().await, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    // Room for about sixteen 64 KiB results; async calls stop at 90 %.
    let topology = olin_nats::topology::TopologyConfig { results_max_bytes: 1 << 20, ..test_topology() };
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).topology(topology.clone()).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).topology(topology).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "echo").await;
    let body = vec![b'x'; 64 << 10];
    let mut refused = None;
    for call in 0..40 {
        let r = http.post(gateway.function_url("echo", "/")).header("prefer", "respond-async").body(body.clone());
        let r = r.send().await.unwrap();
        if r.status() == 503 {
            refused = Some((
                call,
                r.headers()["olin-error"].to_str().unwrap().to_owned(),
                r.headers()["retry-after"].clone(),
            ));
            break;
        }
        assert_eq!(r.status(), 202);
        settled(&http, &format!("{}{}", gateway.url(), r.headers()["location"].to_str().unwrap())).await;
        // The gateway reads the bucket's size every second.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let js = async_nats::jetstream::new(nats.client().await);
    let info = js.get_stream("KV_OLIN_RESULTS").await.unwrap().get_info().await.unwrap();
    println!("OLIN_RESULTS: {} bytes of {}", info.state.bytes, info.config.max_bytes);
    let (after, code, retry) = refused.expect("async calls were refused once OLIN_RESULTS filled up");
    println!("async calls refused after {after} results of 64 KiB");
    assert_eq!((code.as_str(), retry.to_str().unwrap()), ("RESULTS_FULL", "5"));
    // The gateway reads the size every second: a few more may pass meanwhile.
    assert!((12..=24).contains(&after), "refused near the limit, after {after}");
    // Synchronous calls keep working.
    let r = http.post(gateway.function_url("echo", "/")).body("ping").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap().as_str()), (200, "ping"));
}
