//! Secret values end to end: set through the API, sealed in Postgres, in the
//! route and in every queued call (so on NATS's disk), opened only by the
//! worker for the run; and key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use olin_test_support::{
    ADMIN_PASSWORD, GatewayBuilder, NatsServer, S3Server, SECRETS_KEYS, TestDb, WorkerBuilder, fixtures, spawn_control,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

/// Every log line of this test process (all crates, debug and up).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Files under `dir` that hold `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_holding(&path, needle));
        } else if contains(&std::fs::read(&path).unwrap_or_default(), needle) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// Every row of every table, as text.
async fn database_text(db: &TestDb) -> String {
    let conn = db.connect().await;
    let mut all = String::new();
    for table in olin_migrations::TABLES {
        let sql = format!("SELECT CAST(t AS TEXT) FROM {table} t");
        for row in conn.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap() {
            all.push_str(&row.try_get_by_index::<String>(0).unwrap());
            all.push('\n');
        }
    }
    all
}

struct Client {
    http: reqwest::Client,
    control: String,
    token: String,
}

impl Client {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}/v1{path}", self.control));
        req = req.bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Calls `f` until it answers `want` (routes reach the gateway by a watch).
async fn answers(http: &reqwest::Client, url: &str, want: &str) -> (u16, String) {
    let mut last = (0, String::new());
    for _ in 0..100 {
        let r = http.get(url).send().await.unwrap();
        last = (r.status().as_u16(), r.text().await.unwrap());
        if last.1 == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_are_sealed_everywhere_but_the_run_and_keys_rotate() {
    let logs = Logs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let secret = format!("s3cr3t-{}", uuid::Uuid::new_v4().simple());
    let reversed: String = secret.chars().rev().collect();
    let db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let control_url = |g: String| move |c: &mut olin_control::Config| c.gateway_url = g;
    let control = spawn_control(db.url(), &nats.url(), s3.store_args(), control_url(gateway.url())).await;
    let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).start().await;
    let http = reqwest::Client::new();
    let r = http.post(control.v1("/tokens")).json(&json!({"username": "admin", "password": ADMIN_PASSWORD}));
    let token = r.send().await.unwrap().json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let api = Client { http: http.clone(), control: control.url(), token };

    assert_eq!(api.send("POST", "/functions", Some(json!({"name": "vault"}))).await.0, 201);
    let upload = http
        .post(control.v1("/functions/vault/versions"))
        .bearer_auth(&api.token)
        .header("content-type", "application/wasm")
        .body(fixtures::wat("secret.wat"))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    assert_eq!(api.send("PATCH", "/functions/vault", Some(json!({"async_max_attempts": 1}))).await.0, 200);
    let put = api.send("PUT", "/functions/vault/env/SECRET", Some(json!({"value": secret, "secret": true}))).await;
    assert_eq!(put.0, 204, "{}", put.1);
    assert_eq!(api.send("POST", "/functions/vault/deployments", Some(json!({"version": 1}))).await.0, 201);
    let (_, env) = api.send("GET", "/functions/vault/env", None).await;
    assert_eq!(env["items"][0]["value"], Value::Null, "never shown again: {env}");

    // The function sees the value (it answers it reversed) ...
    let url = gateway.function_url("vault", "/");
    assert_eq!(answers(&http, &url, &reversed).await, (200, reversed.clone()));
    // ... and an async call that fails goes to OLIN_DEAD with its request.
    let r = http.post(format!("{}/async/f/vault?fail=1", gateway.url())).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let js = async_nats::jetstream::new(nats.client().await);
    let mut dead = js.get_stream(olin_proto::subject::STREAM_DEAD).await.unwrap();
    for _ in 0..100 {
        if dead.info().await.unwrap().state.messages > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.info().await.unwrap().state.messages, 1, "the failed call was dead-lettered");

    // Nowhere at rest, nowhere in the logs.
    let stored = database_text(&db).await;
    assert!(stored.contains("SECRET") && stored.contains("test1"), "the row is there, sealed under test1");
    assert!(!stored.contains(&secret), "the database holds the secret in clear");
    let on_disk = files_holding(nats.store_dir(), secret.as_bytes());
    assert!(on_disk.is_empty(), "NATS's store holds the secret in clear: {on_disk:?}");
    assert!(!files_holding(nats.store_dir(), b"SECRET").is_empty(), "the sealed value is on disk, by name");
    let logged = logs.0.lock().unwrap().clone();
    assert!(contains(&logged, b"executed"), "the logs were captured");
    assert!(!contains(&logged, secret.as_bytes()), "the logs hold the secret");

    // Rotation: workers learn the new key first, then control seals with it.
    let rotated = format!("test2:{},{SECRETS_KEYS}", "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleSE=");
    worker.stop().await;
    let k = rotated.clone();
    let both = WorkerBuilder::new(&nats.url(), s3.store_args()).config(|c| c.secrets_keys = Some(k)).start().await;
    assert_eq!(answers(&http, &url, &reversed).await, (200, reversed.clone()), "the old key still opens");
    control.stop().await;
    let (k, gateway_url) = (rotated.clone(), gateway.url());
    let control = spawn_control(db.url(), &nats.url(), s3.store_args(), move |c| {
        c.gateway_url = gateway_url;
        c.secrets_keys = Some(k);
    })
    .await;
    let stored = database_text(&db).await;
    let row = stored.lines().find(|l| l.contains("SECRET")).unwrap().to_owned();
    assert!(row.contains("test2") && !row.contains("test1"), "sealed again under the new key: {row}");
    assert!(!stored.contains(&secret));
    assert_eq!(answers(&http, &url, &reversed).await, (200, reversed.clone()));

    // The old key can go: a worker with the new key alone serves the call,
    // one with the old key alone cannot open the route's value any more.
    both.stop().await;
    let new_only = rotated.split(',').next().unwrap().to_owned();
    let fresh =
        WorkerBuilder::new(&nats.url(), s3.store_args()).config(|c| c.secrets_keys = Some(new_only)).start().await;
    assert_eq!(answers(&http, &url, &reversed).await, (200, reversed.clone()));
    fresh.stop().await;
    let stale = WorkerBuilder::new(&nats.url(), s3.store_args())
        .config(|c| c.secrets_keys = Some(SECRETS_KEYS.into()))
        .start()
        .await;
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["olin-error"], "INTERNAL");
    let body = r.text().await.unwrap();
    assert!(body.contains("the secret SECRET did not open") && body.contains("test2"), "{body}");
    assert!(!body.contains(&secret));
    stale.stop().await;
    drop(control);
    let logged = logs.0.lock().unwrap().clone();
    assert!(!contains(&logged, secret.as_bytes()), "the logs hold the secret");
}
