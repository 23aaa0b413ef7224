//! The backup runbook (docs/operations/backups.md), run for real: a
//! `pg_dump` of a working installation restored with `pg_restore` into a
//! new database, served by a new control on a fresh NATS (everything
//! JetStream held is lost), keeps every function, version, deployment and
//! execution record, and control publishes the routes again so the
//! functions answer through a new gateway and worker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use olin_test_support::{
    ADMIN_PASSWORD, GatewayBuilder, NatsServer, S3Server, TestDb, WorkerBuilder, fixtures, spawn_control,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::Api;

/// Runs a Postgres client tool, failing the test with its output.
fn pg(tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install -y postgresql-client)"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Calls `url` until it answers 200 with hello's greeting; returns the
/// invocation id.
async fn call_hello(http: &reqwest::Client, url: &str) -> String {
    let started = Instant::now();
    loop {
        let r = http.get(url).send().await.unwrap();
        let status = r.status();
        let id = r.headers().get("olin-invocation-id").map(|v| v.to_str().unwrap().to_owned());
        let body = r.text().await.unwrap();
        if status == StatusCode::OK && body.starts_with("Hello from Olincloud!") {
            return id.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{url} never answered: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The executions of `function` the API lists.
async fn executions(api: &Api, function: &str) -> Vec<Value> {
    let (status, page) = api.call("GET", &format!("/functions/{function}/executions?limit=100"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_backup_restores_every_record_and_republishes_routes_to_a_fresh_nats() {
    let http = reqwest::Client::new();
    let s3 = S3Server::start().await;

    // A working installation: a function with two versions, the second
    // deployed, called three times.
    let (db, dump_dir) = (TestDb::new().await, tempfile::tempdir().unwrap());
    let dump = dump_dir.path().join("olincloud.dump");
    let ids = {
        let nats = NatsServer::start();
        let gateway = GatewayBuilder::new(&nats.url()).start().await;
        let control = spawn_control(db.url(), &nats.url(), s3.store_args(), |c| c.gateway_url = gateway.url()).await;
        let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).start().await;
        let admin = Api::login(&http, &control, "admin", ADMIN_PASSWORD).await;
        assert_eq!(admin.call("POST", "/functions", Some(json!({"name": "kept"}))).await.0, StatusCode::CREATED);
        admin.upload("kept", fixtures::ECHO_WASM).await;
        let v2 = admin.upload("kept", fixtures::HELLO_WASM).await;
        let (s, d) = admin.call("POST", "/functions/kept/deployments", Some(json!({"version": v2}))).await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        let url = gateway.function_url("kept", "/");
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(call_hello(&http, &url).await);
        }
        let started = Instant::now();
        while executions(&admin, "kept").await.len() < ids.len() {
            assert!(started.elapsed() < Duration::from_secs(10), "executions never recorded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The backup, as the runbook takes it (while control runs).
        pg("pg_dump", &["--format=custom", "--no-owner", &format!("--file={}", dump.display()), db.url()]);
        control.stop().await;
        ids
        // NATS, its JetStream store (routes, queues, results) and every
        // service go here.
    };

    // The restore: a new database, a fresh NATS, new services.
    let restored = TestDb::new().await;
    pg(
        "pg_restore",
        &["--no-owner", "--exit-on-error", &format!("--dbname={}", restored.url()), &dump.to_string_lossy()],
    );
    let nats = NatsServer::start();
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    // Not migrating: the restored schema must already be current.
    let control = spawn_control(restored.url(), &nats.url(), s3.store_args(), |c| {
        c.gateway_url = gateway.url();
        c.migrate = false;
    })
    .await;
    let _worker = WorkerBuilder::new(&nats.url(), s3.store_args()).start().await;

    // The bootstrap admin's password came back with the users table.
    let admin = Api::login(&http, &control, "admin", ADMIN_PASSWORD).await;
    let (_, f) = admin.call("GET", "/functions/kept", None).await;
    assert_eq!(f["name"], "kept", "{f}");
    let (_, versions) = admin.call("GET", "/functions/kept/versions", None).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2, "{versions}");
    let (_, deployments) = admin.call("GET", "/functions/kept/deployments", None).await;
    let deployments = deployments["items"].as_array().unwrap().clone();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["version"], json!(2), "{deployments:?}");
    let rows = executions(&admin, "kept").await;
    for id in &ids {
        assert!(rows.iter().any(|r| r["invocation_id"] == json!(id)), "execution {id} lost: {rows:?}");
        let (s, shown) = admin.call("GET", &format!("/executions/{id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{shown}");
    }
    let (_, usage) = admin.call("GET", "/functions/kept/usage", None).await;
    assert!(usage["calls"].as_u64().unwrap() >= 3, "usage lost: {usage}");

    // Control published the route to the fresh NATS at start: the deployed
    // version answers through the new gateway, and is recorded.
    let id = call_hello(&http, &gateway.function_url("kept", "/")).await;
    let started = Instant::now();
    while !executions(&admin, "kept").await.iter().any(|r| r["invocation_id"] == json!(id)) {
        assert!(started.elapsed() < Duration::from_secs(10), "the call after the restore was not recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
