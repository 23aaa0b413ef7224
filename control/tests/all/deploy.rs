//! Deploys through the API, calls through a real gateway and worker: v1
//! answers, v2 replaces it, rollback brings v1 back, a 90/10 canary splits
//! 1,000 calls, and a private function needs a live invoke key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use olin_test_support::{ADMIN_PASSWORD, Stack, fixtures};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::Api;

/// Which example answered: `hello` greets, `echo` returns the body.
fn which(body: &str) -> &'static str {
    if body.starts_with("Hello from Olincloud!") {
        "hello"
    } else if body == "ping" {
        "echo"
    } else {
        "other"
    }
}

/// Calls until `want` answers (the gateway follows routes asynchronously).
async fn until_served(http: &reqwest::Client, url: &str, want: &str) {
    let started = Instant::now();
    loop {
        let r = http.post(url).body("ping").send().await.unwrap();
        let body = r.text().await.unwrap();
        if which(&body) == want {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{want} never answered; last: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_rollback_canary_and_private_functions() {
    let s = Stack::start(4).await;
    let (control, gateway, http) = (&s.control, &s.gateway, s.http.clone());
    let compiles = {
        let cache = s.worker.cache.clone();
        move || cache.compiles.load(std::sync::atomic::Ordering::SeqCst)
    };
    let admin = Api { http: http.clone(), base: control.v1(""), token: s.login("admin", ADMIN_PASSWORD).await };
    assert_eq!(
        admin.call("POST", "/users", Some(json!({"username": "ada", "password": "password-1"}))).await.0,
        StatusCode::CREATED
    );
    let ada = Api { http: http.clone(), base: control.v1(""), token: s.login("ada", "password-1").await };
    assert_eq!(ada.call("POST", "/functions", Some(json!({"name": "svc"}))).await.0, StatusCode::CREATED);
    let v1 = ada.upload("svc", fixtures::HELLO_WASM).await;
    let v2 = ada.upload("svc", fixtures::ECHO_WASM).await;
    let url = gateway.function_url("svc", "/");

    // Nothing deployed: the gateway does not know the function.
    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(compiles(), 0);
    let (s, d) = ada.call("POST", "/functions/svc/deployments", Some(json!({"version": v1}))).await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    // The deploy returned once the worker had the module compiled: the
    // first call does not wait for a compile.
    assert_eq!(compiles(), 1, "the deploy waited for the prewarm");
    until_served(&http, &url, "hello").await;
    assert_eq!(compiles(), 1, "the first call compiled nothing");
    assert_eq!(
        ada.call("POST", "/functions/svc/deployments", Some(json!({"version": v2}))).await.0,
        StatusCode::CREATED
    );
    until_served(&http, &url, "echo").await;
    let (s, r) = ada.call("POST", "/functions/svc/rollback", None).await;
    assert_eq!((s, r["version"].as_i64()), (StatusCode::CREATED, Some(v1)), "{r}");
    until_served(&http, &url, "hello").await;
    for _ in 0..20 {
        let body = http.post(&url).body("ping").send().await.unwrap().text().await.unwrap();
        assert_eq!(which(&body), "hello", "after rollback every call is v1's");
    }

    // History, newest first; one active.
    let (_, history) = ada.call("GET", "/functions/svc/deployments", None).await;
    let items = history["items"].as_array().unwrap();
    let kinds: Vec<_> = items.iter().map(|d| (d["kind"].as_str().unwrap(), d["version"].as_i64().unwrap())).collect();
    assert_eq!(kinds, [("rollback", v1), ("deploy", v2), ("deploy", v1)]);
    assert_eq!(items.iter().filter(|d| d["active"] == true).count(), 1);

    // 90/10 canary over 1,000 calls.
    let (s, d) = ada
        .call(
            "POST",
            "/functions/svc/deployments",
            Some(json!({"version": v1, "canary": {"version": v2, "percent": 10}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    until_served(&http, &url, "echo").await;
    let mut echo = 0;
    let calls = futures::future::join_all((0..1000).map(|_| {
        let (http, url) = (http.clone(), url.clone());
        async move { http.post(&url).body("ping").send().await.unwrap().text().await.unwrap() }
    }))
    .await;
    for body in &calls {
        match which(body) {
            "echo" => echo += 1,
            "hello" => {}
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert!((60..=140).contains(&echo), "10% of 1,000 calls to the canary, got {echo}");

    // Private: 401 without a key, 200 with one, 401 once it is revoked.
    let (s, _) = ada.call("PATCH", "/functions/svc", Some(json!({"visibility": "private"}))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, key) = ada.call("POST", "/functions/svc/keys", Some(json!({"name": "ci"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let r = http.get(&url).send().await.unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            assert_eq!(r.headers()["olin-error"], "INVOKE_KEY_REQUIRED");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the function never became private");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let with_key = http.get(&url).header("olin-invoke-key", &secret).send().await.unwrap();
    assert_eq!(with_key.status(), StatusCode::OK);
    let bearer = http.get(&url).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let (_, keys) = ada.call("GET", "/functions/svc/keys", None).await;
    assert!(keys["items"][0].get("key").is_none(), "the key is never shown again: {keys}");
    let key_id = key["id"].as_str().unwrap();
    assert_eq!(ada.call("DELETE", &format!("/functions/svc/keys/{key_id}"), None).await.0, StatusCode::NO_CONTENT);
    let started = Instant::now();
    while http.get(&url).header("olin-invoke-key", &secret).send().await.unwrap().status() != StatusCode::UNAUTHORIZED {
        assert!(started.elapsed() < Duration::from_secs(5), "the revoked key kept working");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Deleting the function removes its route.
    assert_eq!(ada.call("DELETE", "/functions/svc", None).await.0, StatusCode::NO_CONTENT);
    let started = Instant::now();
    while http.get(&url).send().await.unwrap().status() != StatusCode::NOT_FOUND {
        assert!(started.elapsed() < Duration::from_secs(5), "the deleted function kept its route");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environment_values_reach_the_function_and_secrets_stay_hidden() {
    let s = Stack::start(2).await;
    let (control, gateway, http) = (&s.control, &s.gateway, s.http.clone());
    let admin = Api { http: http.clone(), base: control.v1(""), token: s.login("admin", ADMIN_PASSWORD).await };
    assert_eq!(admin.call("POST", "/functions", Some(json!({"name": "cfg"}))).await.0, StatusCode::CREATED);
    let v = admin.upload("cfg", &fixtures::wat("getenv.wat")).await;

    let put = |name: &str, body: Value| {
        let path = format!("/functions/cfg/env/{name}");
        let admin = &admin;
        async move { admin.call("PUT", &path, Some(body)).await }
    };
    assert_eq!(put("GREETING", json!({"value": "hi there"})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(put("API_TOKEN", json!({"value": "s3cret", "secret": true})).await.0, StatusCode::NO_CONTENT);
    for bad in ["1ABC", "A-B"] {
        assert_eq!(put(bad, json!({"value": "x"})).await.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // Names the platform sets for each request conflict with it.
    for taken in ["REQUEST_METHOD", "HTTP_HOST"] {
        assert_eq!(put(taken, json!({"value": "x"})).await.0, StatusCode::CONFLICT, "{taken}");
    }
    let (_, list) = admin.call("GET", "/functions/cfg/env", None).await;
    assert_eq!(
        list["items"],
        json!([
            {"name": "API_TOKEN", "value": null, "secret": true, "updated_at": list["items"][0]["updated_at"]},
            {"name": "GREETING", "value": "hi there", "secret": false, "updated_at": list["items"][1]["updated_at"]},
        ])
    );
    assert_eq!(
        admin.call("POST", "/functions/cfg/deployments", Some(json!({"version": v}))).await.0,
        StatusCode::CREATED
    );

    let get = |var: &'static str| {
        let (http, url) = (http.clone(), gateway.function_url("cfg", &format!("/?{var}")));
        async move {
            let started = Instant::now();
            loop {
                let r = http.get(&url).send().await.unwrap();
                if r.status() == StatusCode::OK {
                    return r.text().await.unwrap();
                }
                assert!(started.elapsed() < Duration::from_secs(5), "cfg never answered");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(get("GREETING").await, "hi there");
    assert_eq!(get("API_TOKEN").await, "s3cret");
    assert_eq!(admin.call("DELETE", "/functions/cfg/env/GREETING", None).await.0, StatusCode::NO_CONTENT);
    let started = Instant::now();
    while !get("GREETING").await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "the unset value stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(admin.call("DELETE", "/functions/cfg/env/GREETING", None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executions_and_usage_are_recorded_per_owner() {
    let s = Stack::start(2).await;
    let (control, gateway, http) = (&s.control, &s.gateway, s.http.clone());
    let admin = Api { http: http.clone(), base: control.v1(""), token: s.login("admin", ADMIN_PASSWORD).await };
    assert_eq!(
        admin.call("POST", "/users", Some(json!({"username": "bob", "password": "password-1"}))).await.0,
        StatusCode::CREATED
    );
    let bob = Api { http: http.clone(), base: control.v1(""), token: s.login("bob", "password-1").await };
    assert_eq!(admin.call("POST", "/functions", Some(json!({"name": "rec"}))).await.0, StatusCode::CREATED);
    let v = admin.upload("rec", fixtures::HELLO_WASM).await;
    assert_eq!(
        admin.call("POST", "/functions/rec/deployments", Some(json!({"version": v}))).await.0,
        StatusCode::CREATED
    );
    let url = gateway.function_url("rec", "/p");
    until_served(&http, &url, "hello").await;

    let mut ids = Vec::new();
    for _ in 0..20 {
        let r = http.post(&url).body("ping").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        ids.push(r.headers()["olin-invocation-id"].to_str().unwrap().to_owned());
    }
    // One call that fails (exit 2): an error in the counts below.
    let r = http.get(gateway.function_url("rec", "/fail")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    ids.push(r.headers()["olin-invocation-id"].to_str().unwrap().to_owned());
    // Every call (the warm-up ones too) becomes a row; wait for ingestion.
    let started = Instant::now();
    let rows = loop {
        let (_, page) = admin.call("GET", "/functions/rec/executions?limit=500", None).await;
        let items = page["items"].as_array().unwrap().clone();
        if ids.iter().all(|id| items.iter().any(|e| e["invocation_id"] == id.as_str())) {
            break items;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "executions never recorded: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let one = rows.iter().find(|e| e["invocation_id"] == ids[0].as_str()).unwrap();
    assert_eq!(
        (one["outcome"].as_str(), one["status"].as_i64(), one["method"].as_str()),
        (Some("OK"), Some(200), Some("POST"))
    );
    assert_eq!(one["path"], "/p");
    assert!(one["usage"]["wall_us"].as_i64().unwrap() > 0 && one["usage"]["fuel"].as_i64().unwrap() > 0);
    assert_eq!(
        one["headers"],
        json!([{"name": "Content-Type", "value": "text/plain; charset=utf-8"},
            {"name": "X-Powered-By", "value": "olincloud-hello"}]),
        "the response headers the function set, in order"
    );
    let failed = rows.iter().find(|e| e["invocation_id"] == ids[20].as_str()).unwrap();
    assert_eq!((failed["outcome"].as_str(), failed["exit_code"].as_i64()), (Some("GUEST_ERROR"), Some(2)));
    assert_eq!(failed["headers"], json!([]));
    let (s, shown) = admin.call("GET", &format!("/executions/{}", ids[0]), None).await;
    assert_eq!((s, shown["invocation_id"].as_str()), (StatusCode::OK, Some(ids[0].as_str())));
    let (_, page) = admin.call("GET", "/functions/rec/executions?limit=5", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let (_, next) = admin
        .call("GET", &format!("/functions/rec/executions?limit=5&after={}", page["next"].as_str().unwrap()), None)
        .await;
    assert!(next["items"][0]["invocation_id"].as_str() < page["items"][4]["invocation_id"].as_str());
    let (_, none) = admin.call("GET", "/functions/rec/executions?outcome=TIMEOUT", None).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (s, _) = admin.call("GET", "/functions/rec/executions?since=yesterday", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, usage) = admin.call("GET", "/functions/rec/usage", None).await;
    assert_eq!(usage["calls"].as_u64(), Some(rows.len() as u64), "{usage}");
    assert_eq!(usage["errors"], 1);
    assert_eq!(usage["errors_by_outcome"], json!({"GUEST_ERROR": 1}));
    // The functions list carries the same counts as the call rate.
    let (_, list) = admin.call("GET", "/functions", None).await;
    let listed = list["items"].as_array().unwrap().iter().find(|f| f["name"] == "rec").unwrap();
    assert_eq!(listed["last_hour"], json!({"calls": rows.len(), "errors": 1}), "{listed}");
    assert!(
        usage["wall_us"]["p50"].as_i64().unwrap() > 0
            && usage["wall_us"]["p99"].as_i64() >= usage["wall_us"]["p50"].as_i64()
    );
    assert!(usage["bytes_in"].as_i64().unwrap() >= 80, "20 bodies of 4 bytes at least: {usage}");
    let (_, mine) = admin.call("GET", "/usage", None).await;
    assert_eq!(mine["calls"], usage["calls"]);

    // The same calls as a series of buckets over the last hour: they add up.
    let (st, series) = admin.call("GET", "/functions/rec/usage/series?buckets=6", None).await;
    assert_eq!(st, StatusCode::OK, "{series}");
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    assert_eq!(series["step_seconds"], 4.0 * 3600.0);
    let total: u64 = points.iter().map(|p| p["calls"].as_u64().unwrap()).sum();
    assert_eq!(Some(total), usage["calls"].as_u64(), "{series}");
    let last = points.last().unwrap();
    assert_eq!(last["calls"].as_u64(), usage["calls"].as_u64(), "the calls are recent: {series}");
    assert!(last["wall_us"]["p99"].as_i64() >= last["wall_us"]["p50"].as_i64());
    assert!(points[0]["wall_us"]["p50"].is_null(), "an empty bucket has no percentile");
    let (st, _) = admin.call("GET", "/functions/rec/usage/series?buckets=0", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, empty) = admin.call("GET", "/functions/rec/usage/series?since=2100-01-01T00:00:00Z", None).await;
    assert_eq!(st, StatusCode::OK, "since after until: an empty window");
    assert_eq!(empty["points"], json!([]), "{empty}");
    let future = "2100-01-01T00:00:00Z";
    let (_, later) = admin.call("GET", &format!("/functions/rec/usage?since={future}"), None).await;
    assert_eq!(later["calls"], 0);

    // Bob sees none of it.
    assert_eq!(bob.call("GET", &format!("/executions/{}", ids[0]), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(bob.call("GET", "/functions/rec/executions", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(bob.call("GET", "/functions/rec/usage", None).await.0, StatusCode::NOT_FOUND);
    let (_, theirs) = bob.call("GET", "/usage", None).await;
    assert_eq!(theirs["calls"], 0);

    let metrics = http.get(control.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let public = http.get(format!("{}/metrics", control.url())).send().await.unwrap();
    assert_eq!(public.status(), 404, "metrics are on the admin listener only");
    assert!(
        metrics.contains(
            r#"olin_control_requests_total{method="GET",route="/v1/functions/{name}/executions",status="200"}"#
        ),
        "{metrics}"
    );
    let ingested = metrics
        .lines()
        .find_map(|l| l.strip_prefix("olin_control_events_ingested_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(ingested >= 20, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn try_it_calls_the_function_through_the_gateway() {
    let s = Stack::start(2).await;
    let http = s.http.clone();
    let admin = Api { http: http.clone(), base: s.control.v1(""), token: s.admin_token().await };
    admin.call("POST", "/users", Some(json!({"username": "eve", "password": "password-2"}))).await;
    let eve = Api { http: http.clone(), base: s.control.v1(""), token: s.login("eve", "password-2").await };
    admin.call("POST", "/functions", Some(json!({"name": "svc"}))).await;
    let v = admin.upload("svc", fixtures::ECHO_WASM).await;
    admin.call("POST", "/functions/svc/deployments", Some(json!({"version": v}))).await;
    until_served(&http, &s.gateway.function_url("svc", "/"), "echo").await;

    let (st, r) = admin
        .call("POST", "/functions/svc/invoke", Some(json!({"method": "POST", "path": "/x?y=1", "body": "ping"})))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["body"], "ping");
    assert_eq!(r["truncated"], false);
    assert!(r["headers"].as_array().unwrap().iter().any(|h| h["name"] == "olin-invocation-id"), "{r}");

    // Bad input is refused before anything is sent; another user's function is a 404.
    let (st, _) = admin.call("POST", "/functions/svc/invoke", Some(json!({"path": "no-slash"}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    // A method outside the document's enum is not a TryIt at all.
    let (st, body) = admin.call("POST", "/functions/svc/invoke", Some(json!({"method": "BREW"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("BREW"), "{body}");
    let (st, _) = eve.call("POST", "/functions/svc/invoke", Some(json!({}))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A private function answers 401 without its key and runs with it.
    admin.call("PATCH", "/functions/svc", Some(json!({"visibility": "private"}))).await;
    let (_, k) = admin.call("POST", "/functions/svc/keys", Some(json!({"name": "panel"}))).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let (_, r) = admin.call("POST", "/functions/svc/invoke", Some(json!({"body": "x"}))).await;
        if r["status"] == 401 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never private: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, r) = admin
        .call("POST", "/functions/svc/invoke", Some(json!({"method": "POST", "body": "with key", "invoke_key": key})))
        .await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["body"], "with key");
}

/// The status, `Olin-Error` and `Retry-After` of one call.
async fn called(http: &reqwest::Client, url: &str) -> (StatusCode, Option<String>, Option<u64>) {
    let r = http.get(url).send().await.unwrap();
    let code = r.headers().get("olin-error").map(|v| v.to_str().unwrap().to_owned());
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (r.status(), code, retry)
}

/// Calls until an answer has status `want` (routes reach the gateway
/// asynchronously); returns it and how many calls were answered 200 first.
async fn until_status(
    http: &reqwest::Client,
    url: &str,
    want: StatusCode,
) -> ((StatusCode, Option<String>, Option<u64>), usize) {
    let started = Instant::now();
    let mut ok = 0;
    loop {
        let got = called(http, url).await;
        if got.0 == want {
            return (got, ok);
        }
        assert_eq!(got.0, StatusCode::OK, "{got:?}");
        ok += 1;
        assert!(started.elapsed() < Duration::from_secs(20), "never answered {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_and_monthly_quotas_refuse_calls_with_429() {
    let s = Stack::start_with(2, |c| {
        c.quota_check_ms = 200;
        c.max_concurrency = 50;
    })
    .await;
    let (control, gateway, http) = (&s.control, &s.gateway, s.http.clone());
    let admin = Api { http: http.clone(), base: control.v1(""), token: s.login("admin", ADMIN_PASSWORD).await };
    let new_user = json!({"username": "carol", "password": "password-1"});
    assert_eq!(admin.call("POST", "/users", Some(new_user)).await.0, StatusCode::CREATED);
    let carol = Api { http: http.clone(), base: control.v1(""), token: s.login("carol", "password-1").await };

    // A quota of 5 calls a month, set by an admin only.
    let quota = json!({"quota": {"calls_per_month": 5}});
    assert_eq!(carol.call("PATCH", "/users/carol", Some(quota.clone())).await.0, StatusCode::FORBIDDEN);
    assert_eq!(admin.call("PATCH", "/users/nobody", Some(quota.clone())).await.0, StatusCode::NOT_FOUND);
    let (st, user) = admin.call("PATCH", "/users/carol", Some(quota)).await;
    assert_eq!((st, &user["quota"]), (StatusCode::OK, &json!({"calls_per_month": 5, "fuel_per_month": null})));

    assert_eq!(carol.call("POST", "/functions", Some(json!({"name": "lim"}))).await.0, StatusCode::CREATED);
    let v = carol.upload("lim", fixtures::HELLO_WASM).await;
    let (st, _) = carol.call("POST", "/functions/lim/deployments", Some(json!({"version": v}))).await;
    assert_eq!(st, StatusCode::CREATED);
    let url = gateway.function_url("lim", "/");
    until_served(&http, &url, "hello").await;

    // Calls go through until the usage counted at ingestion reaches the
    // quota, then every call is refused until the month ends.
    let ((_, code, retry), _) = until_status(&http, &url, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code.as_deref(), Some("QUOTA_EXCEEDED"));
    assert!(retry.unwrap() >= 1, "Retry-After: when the month ends");
    let (_, usage) = carol.call("GET", "/usage", None).await;
    let q = &usage["quota"];
    assert_eq!((q["calls_per_month"].as_i64(), q["exceeded"].as_str()), (Some(5), Some("calls")), "{usage}");
    assert!(q["calls"].as_i64().unwrap() >= 5, "{usage}");
    println!("refused after {} calls this month", q["calls"]);

    // Cleared: served again at once. A fuel quota already spent: refused at once.
    let clear = json!({"quota": {"calls_per_month": 0}});
    assert_eq!(admin.call("PATCH", "/users/carol", Some(clear)).await.0, StatusCode::OK);
    assert_eq!(called(&http, &url).await.0, StatusCode::OK);
    let fuel = json!({"quota": {"fuel_per_month": 1}});
    assert_eq!(admin.call("PATCH", "/users/carol", Some(fuel)).await.0, StatusCode::OK);
    let (st, code, _) = called(&http, &url).await;
    assert_eq!((st, code.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("QUOTA_EXCEEDED")));
    let (_, usage) = carol.call("GET", "/usage", None).await;
    assert_eq!(usage["quota"]["exceeded"], "fuel", "{usage}");
    let clear = json!({"quota": {"fuel_per_month": 0}});
    assert_eq!(admin.call("PATCH", "/users/carol", Some(clear)).await.0, StatusCode::OK);

    // The owner's rate limit, within the operator's maxima.
    let (_, f) = carol.call("GET", "/functions/lim", None).await;
    assert_eq!((&f["rate_limit"], &f["max_concurrency"]), (&Value::Null, &json!(50)), "the operator's maximum");
    let (st, err) = carol.call("PATCH", "/functions/lim", Some(json!({"max_concurrency": 51}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err["error"]["message"].as_str().unwrap().contains("maximum 50"), "{err}");
    let too_fast = json!({"rate_limit": {"per_second": 1, "burst": 0}});
    assert_eq!(carol.call("PATCH", "/functions/lim", Some(too_fast)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let limited = json!({"rate_limit": {"per_second": 1, "burst": 2}, "max_concurrency": 3});
    let (st, f) = carol.call("PATCH", "/functions/lim", Some(limited)).await;
    assert_eq!(st, StatusCode::OK, "{f}");
    assert_eq!((&f["rate_limit"], &f["max_concurrency"]), (&json!({"per_second": 1, "burst": 2}), &json!(3)));
    let ((_, code, retry), _) = until_status(&http, &url, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!((code.as_deref(), retry), (Some("RATE_LIMITED"), Some(1)));
    // A token a second: one call goes through after the wait it was told.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(called(&http, &url).await.0, StatusCode::OK);
    let (_, f) = carol.call("PATCH", "/functions/lim", Some(json!({"rate_limit": {"per_second": 0}}))).await;
    assert_eq!(f["rate_limit"], Value::Null);
}
