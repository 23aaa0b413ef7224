//! The whole data path with real components: HTTP -> gateway -> JetStream ->
//! two workers -> Wasmer -> CGI reply, with modules in an in-process S3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use olin_test_support::{GatewayBuilder, NatsServer, S3Server, WorkerBuilder, deploy, fixtures};

struct Stack {
    _nats: NatsServer,
    _s3: S3Server,
    gateway: olin_test_support::GatewayHandle,
    workers: Vec<olin_test_support::WorkerHandle>,
    http: reqwest::Client,
}

async fn stack() -> Stack {
    olin_test_support::init_tracing();
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let w1 = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let w2 = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(2).start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let client = nats.client().await;
    deploy(&client, &s3.store_args(), "hello", fixtures::HELLO_WASM).await;
    deploy(&client, &s3.store_args(), "echo", fixtures::ECHO_WASM).await;
    deploy(&client, &s3.store_args(), "exit3", &fixtures::wat("exit3.wat")).await;
    let stack = Stack { _nats: nats, _s3: s3, gateway, workers: vec![w1, w2], http: reqwest::Client::new() };
    for f in ["hello", "echo", "exit3"] {
        stack.gateway.wait_for_route(&stack.http, f).await;
    }
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hello_and_echo_end_to_end() {
    let s = stack().await;

    // The C WASI CGI program: status, headers, body, CGI environment.
    let r = s
        .http
        .post(s.gateway.function_url("hello", "/some/path?x=1&y=two"))
        .header("User-Agent", "e2e-test/1.0")
        .body("four")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.headers()["x-powered-by"], "olincloud-hello");
    assert_eq!(r.headers()["olin-outcome"], "OK");
    let id = r.headers()["olin-invocation-id"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(body.starts_with("Hello from Olincloud!\n"), "{body}");
    assert!(body.contains("method: POST\n"), "{body}");
    assert!(body.contains("path: /some/path\n"), "{body}");
    assert!(body.contains("query: x=1&y=two\n"), "{body}");
    assert!(body.contains("user-agent: e2e-test/1.0\n"), "{body}");
    assert!(body.contains("body-length: 4\n"), "{body}");
    assert!(body.contains(&format!("run-id: {id}\n")), "RUN_ID is the invocation id: {body}");

    // The olin guest: a 1 MiB body reaches stdin and comes back intact.
    let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let r = s.http.post(s.gateway.function_url("echo", "")).body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let back = r.bytes().await.unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back[..] == big[..], "1 MiB body intact");

    // The C program sees the same large body on stdin.
    let r = s.http.put(s.gateway.function_url("hello", "/")).body(big).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("body-length: 1048576\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_are_json_and_named() {
    let s = stack().await;

    let r = s.http.get(s.gateway.function_url("nope", "/x")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["olin-error"], "FUNCTION_NOT_FOUND");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "FUNCTION_NOT_FOUND");

    let r = s.http.get(format!("{}/elsewhere", s.gateway.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);

    for (function, path) in [("exit3", "/"), ("hello", "/fail")] {
        let r = s.http.get(s.gateway.function_url(function, path)).send().await.unwrap();
        assert_eq!(r.status(), 502, "{function}");
        assert_eq!(r.headers()["olin-outcome"], "GUEST_ERROR");
        assert_eq!(r.headers()["olin-error"], "GUEST_ERROR");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("exited with code"), "{v}");
    }

    // Nothing crashed: the same stack still serves.
    let r = s.http.get(s.gateway.function_url("hello", "/ok")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.gateway.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_call_runs_exactly_once_across_two_workers() {
    let s = stack().await;
    let before: u64 = s.workers.iter().map(|w| w.executions()).sum();
    let mut ids = HashSet::new();
    for i in 0..200 {
        let r = s.http.get(s.gateway.function_url("hello", &format!("/n/{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        let run_id = body.lines().find_map(|l| l.strip_prefix("run-id: ")).unwrap().to_owned();
        assert!(ids.insert(run_id), "each call has its own invocation");
    }
    let per_worker: Vec<u64> = s.workers.iter().map(|w| w.executions()).collect();
    let after: u64 = per_worker.iter().sum();
    assert_eq!(after - before, 200, "200 calls, 200 executions: {per_worker:?}");
    assert!(per_worker.iter().all(|n| *n > 0), "both workers took calls: {per_worker:?}");

    // Every run left its execution event in OLIN_EVENTS.
    let js = async_nats::jetstream::new(s._nats.client().await);
    let mut stored = 0;
    for _ in 0..100 {
        stored = olin_test_support::stream::events(&js).await.len() as u64;
        if stored >= after {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stored, after, "one event per execution");
}
