//! The `/v1` API over HTTP against real Postgres (a fresh database), a real
//! `nats-server` and the in-process S3 server: accounts and tokens,
//! functions, uploads; isolation between users; bad input refused with the
//! right status and nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olin_test_support::{ADMIN_PASSWORD, ControlHandle, NatsServer, S3Server, TestDb, fixtures, spawn_control, wait};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde_json::{Value, json};

struct Env {
    db: TestDb,
    nats: NatsServer,
    s3: S3Server,
    control: ControlHandle,
    http: reqwest::Client,
}

async fn env() -> Env {
    let db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let control = spawn_control(db.url(), &nats.url(), s3.store_args(), |c| c.max_module_bytes = 1 << 20).await;
    Env { db, nats, s3, control, http: reqwest::Client::new() }
}

impl Env {
    async fn login(&self, user: &str, password: &str) -> String {
        let r = self.call("POST", "/tokens", None, Some(json!({"username": user, "password": password}))).await;
        assert_eq!(r.0, StatusCode::CREATED, "login {user}: {}", r.1);
        r.1["token"].as_str().unwrap().to_owned()
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        crate::client::call(&self.http, &self.control, method, path, token, body).await
    }

    async fn raw(&self, method: &str, path: &str, token: &str, ctype: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .http
            .request(method.parse().unwrap(), self.control.v1(path))
            .bearer_auth(token)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Admin creates `name`; returns their token.
    async fn user(&self, admin: &str, name: &str) -> String {
        let r =
            self.call("POST", "/users", Some(admin), Some(json!({"username": name, "password": "password-1"}))).await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
        self.login(name, "password-1").await
    }
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {v}"))
}

#[tokio::test]
async fn accounts_functions_and_uploads() {
    let e = env().await;
    let admin = e.login("admin", ADMIN_PASSWORD).await;
    let (s, me) = e.call("GET", "/me", Some(&admin), None).await;
    assert_eq!((s, me["username"].as_str(), me["role"].as_str()), (StatusCode::OK, Some("admin"), Some("admin")));

    let ada = e.user(&admin, "ada").await;
    let (s, f) = e.call("POST", "/functions", Some(&ada), Some(json!({"name": "hello"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(f["visibility"], "public");
    assert!(f["url"].as_str().unwrap().ends_with("/f/hello"));

    // Raw upload, then multipart; numbered 1 and 2; module stored by hash in S3.
    let (s, v1) =
        e.raw("POST", "/functions/hello/versions", &ada, "application/wasm", fixtures::HELLO_WASM.to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{v1}");
    assert_eq!((v1["number"].as_i64(), v1["abi"].as_str()), (Some(1), Some("wasi_p1")));
    let sha = v1["sha256"].as_str().unwrap();
    let stored = olin_module_store::get_module(e.s3.store_args().open().unwrap().as_ref(), sha).await.unwrap();
    assert_eq!(&stored[..], fixtures::HELLO_WASM);
    let mut form =
        b"--b0undary\r\nContent-Disposition: form-data; name=\"module\"; filename=\"echo.wasm\"\r\n\r\n".to_vec();
    form.extend_from_slice(fixtures::ECHO_WASM);
    form.extend_from_slice(b"\r\n--b0undary--\r\n");
    let (s, v2) =
        e.raw("POST", "/functions/hello/versions", &ada, "multipart/form-data; boundary=b0undary", form).await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!((v2["number"].as_i64(), v2["abi"].as_str()), (Some(2), Some("olin")));
    let (_, list) = e.call("GET", "/functions/hello/versions", Some(&ada), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Paginated listing.
    for name in ["a-1", "a-2", "a-3"] {
        assert_eq!(e.call("POST", "/functions", Some(&ada), Some(json!({"name": name}))).await.0, StatusCode::CREATED);
    }
    let (_, p1) = e.call("GET", "/functions?limit=2", Some(&ada), None).await;
    let names: Vec<_> = p1["items"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a-1", "a-2"]);
    let (_, p2) =
        e.call("GET", &format!("/functions?limit=2&after={}", p1["next"].as_str().unwrap()), Some(&ada), None).await;
    let names: Vec<_> = p2["items"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a-3", "hello"]);

    // Delete: gone for good.
    assert_eq!(e.call("DELETE", "/functions/a-3", Some(&ada), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(e.call("GET", "/functions/a-3", Some(&ada), None).await.0, StatusCode::NOT_FOUND);

    // The audit log has the logins, the user creation, the uploads and the deletion.
    let db = e.db.connect().await;
    let sql = "SELECT action FROM audit_log ORDER BY id";
    let rows = db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
    let actions: Vec<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    for want in ["login", "user_created", "function_created", "version_uploaded", "function_deleted"] {
        assert!(actions.iter().any(|a| a == want), "no {want} in the audit log: {actions:?}");
    }
}

#[tokio::test]
async fn another_users_resources_are_404_and_bad_tokens_401() {
    let e = env().await;
    let admin = e.login("admin", ADMIN_PASSWORD).await;
    let ada = e.user(&admin, "ada").await;
    let bob = e.user(&admin, "bob").await;
    assert_eq!(e.call("POST", "/functions", Some(&ada), Some(json!({"name": "secret"}))).await.0, StatusCode::CREATED);
    let wasm = fixtures::HELLO_WASM.to_vec();
    assert_eq!(
        e.raw("POST", "/functions/secret/versions", &ada, "application/wasm", wasm.clone()).await.0,
        StatusCode::CREATED
    );

    // Every route about a function, from the API's own description: 404 for Bob.
    let doc: Value = e.http.get(e.control.v1("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(rest) = path.strip_prefix("/v1") else { continue };
        // `{name}` of a user: admins only (below).
        if !rest.contains("{name}") || rest.starts_with("/users/") {
            continue;
        }
        let rest = rest.replace("{name}", "secret").replace("{id}", "k").replace("{var}", "A");
        for method in item.as_object().unwrap().keys() {
            let body = match method.as_str() {
                "post" | "put" | "patch" => {
                    Some(json!({"version": 1, "value": "x", "name": "k", "visibility": "private"}))
                }
                _ => None,
            };
            let (s, resp) = e.call(&method.to_uppercase(), &rest, Some(&bob), body).await;
            assert_eq!((s, error_code(&resp)), (StatusCode::NOT_FOUND, "not_found"), "{method} {rest}: {resp}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} function routes checked");
    let (s, _) = e.call("POST", "/functions/secret/deployments", Some(&bob), Some(json!({"version": 1}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "deploying a version of another user's function");
    let (s, _) = e.raw("POST", "/functions/secret/versions", &bob, "application/wasm", wasm).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, bobs) = e.call("GET", "/functions", Some(&bob), None).await;
    assert!(bobs["items"].as_array().unwrap().is_empty(), "bob lists none of ada's: {bobs}");
    // Only admins manage users.
    let (s, _) = e.call("POST", "/users", Some(&bob), Some(json!({"username": "eve", "password": "password-1"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let quota = json!({"quota": {"calls_per_month": 1}});
    assert_eq!(e.call("PATCH", "/users/bob", Some(&bob), Some(quota)).await.0, StatusCode::FORBIDDEN);
    // Bob cannot revoke Ada's token.
    let (_, ada_me) = e.call("GET", "/me", Some(&ada), None).await;
    let ada_token_id = ada_me["token_id"].as_str().unwrap();
    assert_eq!(e.call("DELETE", &format!("/tokens/{ada_token_id}"), Some(&bob), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(e.call("GET", "/me", Some(&ada), None).await.0, StatusCode::OK);

    // Revoked: 401 at once. Expired: 401. Missing, garbage: 401.
    assert_eq!(e.call("DELETE", &format!("/tokens/{ada_token_id}"), Some(&ada), None).await.0, StatusCode::NO_CONTENT);
    let (s, body) = e.call("GET", "/me", Some(&ada), None).await;
    assert_eq!((s, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, short) = e
        .call("POST", "/tokens", None, Some(json!({"username": "bob", "password": "password-1", "expires_in": 1})))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(e.call("GET", "/me", short["token"].as_str(), None).await.0, StatusCode::OK);
    // A second later by the control plane's clock (moved, not waited for).
    e.control.advance_clock(std::time::Duration::from_millis(1_100));
    assert_eq!(e.call("GET", "/me", short["token"].as_str(), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(e.call("GET", "/functions", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(e.call("GET", "/functions", Some("not.a.jwt"), None).await.0, StatusCode::UNAUTHORIZED);
    let (s, body) = e.call("POST", "/tokens", None, Some(json!({"username": "bob", "password": "wrong-pass"}))).await;
    assert_eq!((s, error_code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = e.call("POST", "/tokens", None, Some(json!({"username": "nobody", "password": "wrong-pass"}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let e = env().await;
    let admin = e.login("admin", ADMIN_PASSWORD).await;
    let ada = e.user(&admin, "ada").await;
    assert_eq!(e.call("POST", "/functions", Some(&ada), Some(json!({"name": "fn"}))).await.0, StatusCode::CREATED);

    // Malformed JSON, unknown fields.
    let r = e.raw("POST", "/functions", &ada, "application/json", b"{\"name\": ".to_vec()).await;
    assert_eq!((r.0, error_code(&r.1)), (StatusCode::BAD_REQUEST, "bad_request"));
    let r = e.call("POST", "/functions", Some(&ada), Some(json!({"name": "x", "colour": "red"}))).await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
    assert!(r.1["error"]["message"].as_str().unwrap().contains("colour"), "{}", r.1);
    // Invalid and duplicate names.
    for bad in ["", "UPPER", "-dash", "dash-", "a.b", "under_score", &"x".repeat(64)] {
        let r = e.call("POST", "/functions", Some(&ada), Some(json!({"name": bad}))).await;
        assert_eq!((r.0, error_code(&r.1)), (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"), "{bad:?}");
    }
    let r = e.call("POST", "/functions", Some(&ada), Some(json!({"name": "fn"}))).await;
    assert_eq!((r.0, error_code(&r.1)), (StatusCode::CONFLICT, "conflict"));
    // Objects only where the document says object (serde alone would take
    // a struct from an array).
    for bad in [json!(["fn"]), json!({"limits": [1, 2]}), json!({"rate_limit": [5]}), json!({"max_concurrency": -1})] {
        let r = e.call("PATCH", "/functions/fn", Some(&ada), Some(bad.clone())).await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST, "{bad}: {}", r.1);
    }
    for (bad, why) in [
        (json!({"rate_limit": {"per_second": 100_001}}), "maximum 100000"),
        (json!({"rate_limit": {"per_second": 5, "burst": 0}}), "burst must be 1 to"),
        (json!({"max_concurrency": 1001}), "maximum 1000"),
    ] {
        let r = e.call("PATCH", "/functions/fn", Some(&ada), Some(bad.clone())).await;
        assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.1);
        assert!(r.1["error"]["message"].as_str().unwrap().contains(why), "{bad}: {}", r.1);
    }
    let r = e.call("PATCH", "/users/ada", Some(&admin), Some(json!({"quota": [null, null]}))).await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{}", r.1);
    let r = e.call("PATCH", "/users/ada", Some(&admin), Some(json!({"quota": {"fuel_per_month": u64::MAX}}))).await;
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.1);
    // Passwords: 8 to 1024 characters, counted as characters (a 1024-char
    // multibyte one is 2 KiB, and fits; 1025 do not).
    {
        let (e, admin, ada) = (&e, &admin, &ada);
        let user = |name: &str, password: String| {
            let body = json!({"username": name, "password": password});
            async move { e.call("POST", "/users", Some(admin), Some(body)).await.0 }
        };
        assert_eq!(user("pw-long", "é".repeat(1025)).await, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(user("pw-short", "é".repeat(7)).await, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(user("pw-max", "é".repeat(1024)).await, StatusCode::CREATED);
        // Environment values: 8192 characters at most.
        let set = |value: String| async move {
            e.call("PUT", "/functions/fn/env/BIG", Some(ada), Some(json!({"value": value}))).await.0
        };
        assert_eq!(set("é".repeat(8193)).await, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(set("é".repeat(8192)).await, StatusCode::NO_CONTENT);
    }

    // Egress allow-lists name hosts: a wildcard or an address (loopback, the
    // cloud metadata service) is refused unless the operator allows literals.
    for bad in ["*", "127.0.0.1", "169.254.169.254", "[::1]:80", "10.0.0.1:8080", "bad host", "a..b"] {
        let r = e.call("PATCH", "/functions/fn", Some(&ada), Some(json!({"egress_allow": [bad]}))).await;
        assert_eq!((r.0, error_code(&r.1)), (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"), "{bad:?}");
        assert!(r.1["error"]["message"].as_str().unwrap().contains("egress_allow entry"), "{}", r.1);
    }
    let (_, f) = e.call("GET", "/functions/fn", Some(&ada), None).await;
    assert_eq!(f["egress_allow"], json!([]), "nothing was stored: {f}");
    let r = e.call("PATCH", "/functions/fn", Some(&ada), Some(json!({"egress_allow": ["api.example.com:443"]}))).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);

    // Uploads: too large, not wasm, disallowed import, no _start, huge memory, wrong media type.
    let upload = |body: Vec<u8>| e.raw("POST", "/functions/fn/versions", &ada, "application/wasm", body);
    let r = upload(vec![0; (1 << 20) + 1]).await;
    assert_eq!((r.0, error_code(&r.1)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let r = upload(b"#!/bin/sh\necho hi\n".to_vec()).await;
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY);
    let wat = |src: &str| wat::parse_str(src).unwrap();
    let r = upload(wat(r#"(module (import "env" "system" (func)) (func (export "_start")))"#)).await;
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.1["error"]["message"].as_str().unwrap().contains("env::system"), "{}", r.1);
    let r = upload(wat(r#"(module (func (export "main")))"#)).await;
    assert!(r.1["error"]["message"].as_str().unwrap().contains("_start"), "{}", r.1);
    let r = upload(wat(r#"(module (memory 60000) (func (export "_start")))"#)).await;
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.1["error"]["message"].as_str().unwrap().contains("60000 pages"), "{}", r.1);
    // The sandbox's feature set and bounds, refused at upload with what is wrong.
    for (name, why) in [
        ("table_initial", "10000000 entries"),
        ("memories", "multiple memories"),
        ("shared_wait", "threads"),
        ("memory64", "memory64"),
        ("wrong_signature", "(func (param i32 i32 i32 i32) (result i32))"),
        ("reserved_export", "reserved"),
    ] {
        let r = upload(fixtures::wat(&format!("hostile/{name}.wat"))).await;
        assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {}", r.1);
        assert!(r.1["error"]["message"].as_str().unwrap().contains(why), "{name}: {}", r.1);
    }
    let r = e.raw("POST", "/functions/fn/versions", &ada, "text/plain", fixtures::ECHO_WASM.to_vec()).await;
    assert_eq!(r.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, versions) = e.call("GET", "/functions/fn/versions", Some(&ada), None).await;
    assert!(versions["items"].as_array().unwrap().is_empty(), "no version was recorded: {versions}");
    let (_, fns) = e.call("GET", "/functions", Some(&ada), None).await;
    assert_eq!(fns["items"].as_array().unwrap().len(), 1, "no function was created: {fns}");

    // Unknown routes and methods answer in the one error shape.
    let r = e.call("GET", "/nope", Some(&ada), None).await;
    assert_eq!((r.0, error_code(&r.1)), (StatusCode::NOT_FOUND, "not_found"));
    let r = e.call("PUT", "/functions", Some(&ada), None).await;
    assert_eq!((r.0, error_code(&r.1)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let r = e.http.put(e.control.v1("/functions")).bearer_auth(&ada).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "POST, GET", "405 names what is allowed");
    let r = e.call("GET", "/functions?limit=0", Some(&ada), None).await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
    // A digits-only function name (a valid DNS label) pages like any other.
    assert_eq!(e.call("POST", "/functions", Some(&ada), Some(json!({"name": "123"}))).await.0, StatusCode::CREATED);
    let (st, page) = e.call("GET", "/functions?limit=1&after=123", Some(&ada), None).await;
    assert_eq!(st, StatusCode::OK, "{page}");
}

#[tokio::test]
async fn the_openapi_document_parses_and_lists_every_route_the_server_answers() {
    let e = env().await;
    let r = e.http.get(e.control.v1("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).expect("a valid OpenAPI 3.1 document");
    assert!(parsed.paths.paths.len() >= 15);
    assert_eq!(doc["openapi"], "3.1.0");
    let admin = e.login("admin", ADMIN_PASSWORD).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{name}", "nope").replace("{id}", "nope").replace("{var}", "NOPE");
            let url = format!("{}{concrete}", e.control.url());
            let r =
                e.http.request(method.to_uppercase().parse().unwrap(), &url).bearer_auth(&admin).send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let no_route = body["error"]["message"].as_str().is_some_and(|m| m.starts_with("no route"));
            assert!(status != StatusCode::METHOD_NOT_ALLOWED && !no_route, "{method} {path}: {status} {body}");
        }
    }
}

/// The embedded default (`olinctl dev`): the same API on a SQLite file.
#[tokio::test]
async fn the_api_runs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("olin.db").display());
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    // Without sealing keys, as an operator who has not set them runs it.
    let control = spawn_control(&url, &nats.url(), s3.store_args(), |c| c.secrets_keys = None).await;
    let http = reqwest::Client::new();
    let r = http.post(control.v1("/tokens")).json(&json!({"username": "admin", "password": ADMIN_PASSWORD})).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let r =
        http.post(control.v1("/functions")).bearer_auth(&token).json(&json!({"name": "lite"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert!(created["created_at"].as_str().unwrap().starts_with("20"), "{created}");
    let r = http
        .post(control.v1("/functions/lite/versions"))
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(fixtures::ECHO_WASM.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = http.post(control.v1("/functions/lite/deployments")).bearer_auth(&token).json(&json!({"version": 1}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED);
    // A secret value needs a key to be sealed under; a plain one does not.
    let put = |body: Value| http.put(control.v1("/functions/lite/env/TOKEN")).bearer_auth(&token).json(&body).send();
    let r = put(json!({"value": "v", "secret": true})).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("OLIN_SECRETS_KEYS"));
    assert_eq!(put(json!({"value": "v"})).await.unwrap().status(), StatusCode::NO_CONTENT);
    let r = http.patch(control.v1("/functions/lite")).bearer_auth(&token).json(&json!({"visibility": "private"}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    let (_, history) = {
        let r = http.get(control.v1("/functions/lite/deployments")).bearer_auth(&token).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    let r = http.get(control.v1("/functions/lite/usage")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["calls"], 0);
}

#[tokio::test]
async fn the_panel_is_served_with_a_strict_csp_and_caching() {
    let e = env().await;
    let http = reqwest::Client::new();
    let r = http.get(e.control.url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'; script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let page = r.text().await.unwrap();

    // Every asset the page names is served, hashed and cached for good.
    let assets: Vec<&str> = page.split('"').filter(|s| s.starts_with("/assets/")).collect();
    assert!(assets.len() >= 2, "a script and a stylesheet: {page}");
    for a in assets {
        let r = http.get(format!("{}{a}", e.control.url())).send().await.unwrap();
        assert_eq!(r.status(), 200, "{a}");
        assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable", "{a}");
        let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/javascript") || kind.starts_with("text/css"), "{a}: {kind}");
        assert!(r.headers().contains_key("content-security-policy"));
    }
    let r = http.get(format!("{}/assets/nope.js", e.control.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The API is untouched by the panel's routes.
    let r = http.get(e.control.v1("/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_requests_are_closed_and_the_connection_cap_holds() {
    use olin_test_support::slow_client::{half_sent, idle, keep_asking, still_open_after, unprompted_answer};
    use std::time::{Duration, Instant};
    let db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let control = spawn_control(db.url(), &nats.url(), s3.store_args(), |c| {
        c.header_timeout_ms = 1_000;
        c.max_connections = 600;
    })
    .await;
    // A fresh connection per request: the server may close an idle pooled one.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let started = Instant::now();
    let stalled = half_sent(control.addr(), 500).await;
    let checks = keep_asking(control.v1("/openapi.json"), 200, Duration::from_millis(2_500));
    let open = still_open_after(stalled, Duration::from_millis(1_000 + 2_000)).await;
    println!("500 half-sent requests: {open} still open {:?} after they started", started.elapsed());
    assert_eq!(open, 0, "every half-sent request is closed within the header timeout + 2 s");
    assert!(checks.await.unwrap() > 10);
    drop(control);

    let capped = spawn_control(db.url(), &nats.url(), s3.store_args(), |c| c.max_connections = 20).await;
    let holding = idle(capped.addr(), 20).await;
    let open = |n: f64| {
        let metrics = capped.admin_url("/metrics");
        async move { wait::metric(&metrics, "olin_control_connections_open", &[]).await == Some(n) }
    };
    wait::until_true("control holds 20 connections", Duration::from_secs(5), || open(20.0)).await;
    let refused = unprompted_answer(capped.addr(), Duration::from_secs(2)).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert_eq!(http.get(capped.admin_url("/readyz")).send().await.unwrap().status(), 200, "the probe still answers");
    drop(holding);
    wait::until_true("the held connections are closed", Duration::from_secs(5), || open(0.0)).await;
    assert_eq!(http.get(capped.v1("/openapi.json")).send().await.unwrap().status(), 200);
}

/// Sends a login whose user name is `size` bytes, declaring the length
/// (`chunked`: false) or not; returns the status line and how many body
/// bytes went out before the answer came.
/// Sends a login with a `size`-byte body; returns the status line, the
/// bytes sent before the answer, and whether the answer closes the connection.
async fn huge_login(addr: std::net::SocketAddr, size: usize, chunked: bool) -> (String, usize, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let framing =
        if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {}", size + 40) };
    let head = format!("POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    c.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = c.into_split();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = tokio::spawn({
        let sent = sent.clone();
        async move {
            let chunk = vec![b'a'; 64 << 10];
            let _ = wr.write_all(if chunked { b"" } else { b"{\"username\":\"" }).await;
            while sent.load(std::sync::atomic::Ordering::SeqCst) < size {
                let part = if chunked {
                    [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat()
                } else {
                    chunk.clone()
                };
                if wr.write_all(&part).await.is_err() {
                    break;
                }
                sent.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), rd.read(&mut answer)).await.unwrap().unwrap_or(0);
    writer.abort();
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    let closes = text.to_ascii_lowercase().contains("\r\nconnection: close\r\n");
    (text.lines().next().unwrap_or_default().to_owned(), sent, closes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_anonymous_login_is_refused_unread_and_stores_nothing() {
    let e = env().await;
    let db = e.db.connect().await;
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    let size_sql = "SELECT pg_database_size(current_database())";
    let audit_sql = "SELECT count(*) FROM audit_log";
    let (size_before, audit_before) = (count(size_sql).await, count(audit_sql).await);
    for chunked in [false, true, false] {
        let (status, sent, closes) = huge_login(e.control.addr(), 30 << 20, chunked).await;
        assert!(closes, "an answer sent before the body was read keeps the connection open");
        println!("30 MB login (chunked: {chunked}): {status:?} after {} KiB sent", sent >> 10);
        assert!(status.contains(" 413 "), "{status}");
        assert!(sent < 30 << 20, "answered before the body was read in full ({sent} bytes sent)");
    }
    // A malformed name (too long, or outside the rules) is refused before
    // any lookup or audit write.
    let r = e.call("POST", "/tokens", None, Some(json!({"username": "x".repeat(65), "password": "whatever-1"}))).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    let r =
        e.call("POST", "/tokens", None, Some(json!({"username": "Robert'); DROP", "password": "whatever-1"}))).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    let (size_after, audit_after) = (count(size_sql).await, count(audit_sql).await);
    assert_eq!(audit_after, audit_before, "nothing was written to the audit log");
    assert!(size_after - size_before < 5 << 10, "the database grew by {} bytes", size_after - size_before);
    // A well-formed failed login is still audited.
    let r = e.call("POST", "/tokens", None, Some(json!({"username": "nobody", "password": "whatever-1"}))).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    assert_eq!(count(audit_sql).await, audit_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_are_throttled_and_a_login_flood_leaves_the_api_responsive() {
    use std::time::{Duration, Instant};
    let db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    // Behind a proxy that says who the client is.
    let control =
        spawn_control(db.url(), &nats.url(), s3.store_args(), |c| c.client_ip_header = Some("x-real-ip".into())).await;
    let http = reqwest::Client::new();
    let login = |user: &str, password: &str, from: &str| {
        http.post(control.v1("/tokens"))
            .header("x-real-ip", from)
            .json(&json!({"username": user, "password": password}))
            .send()
    };
    let admin = login("admin", ADMIN_PASSWORD, "192.0.2.1").await.unwrap().json::<Value>().await.unwrap();
    let admin = admin["token"].as_str().unwrap().to_owned();
    for name in ["bob", "carol"] {
        let r = http
            .post(control.v1("/users"))
            .bearer_auth(&admin)
            .json(&json!({"username": name, "password": "password-2"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    // Ten wrong passwords for admin are refused; the eleventh is throttled.
    for i in 0..10 {
        let r = login("admin", "wrong-password", "198.51.100.1").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    let r = login("admin", "wrong-password", "198.51.100.1").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    // Throttled by name: even the right password, from elsewhere, waits.
    assert_eq!(login("admin", ADMIN_PASSWORD, "203.0.113.9").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // Another user from another address is unaffected.
    assert_eq!(login("bob", "password-2", "198.51.100.2").await.unwrap().status(), StatusCode::CREATED);
    // An address that fails for many names is throttled too.
    for i in 0..30 {
        let r = login(&format!("guess{i}"), "wrong-password", "198.51.100.66").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login("someone-new", "wrong-password", "198.51.100.66").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "by address");

    // 200 logins at once: hashes run on a bounded pool (the rest are told to
    // come back), and an authenticated request is answered all along.
    let bob = login("bob", "password-2", "198.51.100.2").await.unwrap().json::<Value>().await.unwrap();
    let bob = bob["token"].as_str().unwrap().to_owned();
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let req = login("carol", "password-2", &format!("10.9.{}.{}", i / 200, i % 200));
            tokio::spawn(async move { req.await.map(|r| r.status().as_u16()).unwrap_or(0) })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let r = http.get(control.v1("/functions")).bearer_auth(&bob).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = std::collections::BTreeMap::new();
    for f in flood {
        *statuses.entry(f.await.unwrap()).or_insert(0) += 1;
    }
    println!("200 concurrent logins: {statuses:?}; the slowest GET /v1/functions meanwhile took {slowest:?}");
    assert!(slowest < Duration::from_millis(1_000), "{slowest:?}");
    assert!(statuses.keys().all(|s| [201, 503].contains(s)), "created or told to come back: {statuses:?}");
}

/// Part `i` of a JWT (0: header, 1: claims), decoded.
fn jwt_part(token: &str, i: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    jwt_part(token, 0)["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_signing_key_is_rotated_without_logging_anyone_out() {
    let env = env().await;
    let old_token = env.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(kid(&old_token), olin_control::auth::key_id(olin_test_support::JWT_SECRET));
    let works = |control: &ControlHandle, token: &str| {
        let request = env.http.get(control.v1("/functions")).bearer_auth(token).send();
        async move { request.await.unwrap().status() }
    };
    let new_secret = "rotated-secret-rotated-secret-rotated-0123";

    // Step 2 of the rotation: the new key signs, the old one still verifies.
    let rotated = spawn_control(env.db.url(), &env.nats.url(), env.s3.store_args(), |c| {
        c.jwt_verify_secrets = vec![c.jwt_secret.clone()];
        c.jwt_secret = new_secret.into();
    })
    .await;
    assert_eq!(works(&rotated, &old_token).await, StatusCode::OK, "a token of the old key keeps working");
    let new_token = {
        let login = json!({"username": "admin", "password": ADMIN_PASSWORD});
        let r = env.http.post(rotated.v1("/tokens")).json(&login).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    };
    assert_eq!(kid(&new_token), olin_control::auth::key_id(new_secret), "new tokens carry the new kid");
    assert_eq!(works(&rotated, &new_token).await, StatusCode::OK);
    assert_eq!(works(&env.control, &new_token).await, StatusCode::UNAUTHORIZED, "a replica without the new key");

    // Step 3: the old key removed from the configuration.
    let retired =
        spawn_control(env.db.url(), &env.nats.url(), env.s3.store_args(), |c| c.jwt_secret = new_secret.into()).await;
    assert_eq!(works(&retired, &old_token).await, StatusCode::UNAUTHORIZED, "the old key's tokens end with it");
    assert_eq!(works(&retired, &new_token).await, StatusCode::OK);
    // Revocation still holds across keys: the token's row decides.
    let jti = jwt_part(&new_token, 1)["jti"].as_str().unwrap().to_owned();
    let revoked = env.http.delete(retired.v1(&format!("/tokens/{jti}"))).bearer_auth(&new_token).send().await.unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(works(&retired, &new_token).await, StatusCode::UNAUTHORIZED);
}

/// The actions of `audit_log` about `target`, oldest first.
async fn audited(env: &Env, target: &str) -> Vec<String> {
    let db = env.db.connect().await;
    let sql = format!("SELECT action FROM audit_log WHERE target = '{target}' ORDER BY created_at, id");
    let rows = db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
    rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect()
}

#[tokio::test]
async fn admins_disable_reset_and_delete_accounts_and_users_change_their_password() {
    let env = env().await;
    let admin = env.login("admin", ADMIN_PASSWORD).await;
    let bob = env.user(&admin, "bob").await;
    let bob_laptop = env.login("bob", "password-1").await;
    let (status, _) = env.call("POST", "/functions", Some(&bob), Some(json!({"name": "bobs"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let env = &env;
    let me = |token: &str| {
        let token = token.to_owned();
        async move { env.call("GET", "/me", Some(&token), None).await }
    };

    // Only admins administer.
    for (method, path, body) in [
        ("PATCH", "/users/admin", Some(json!({"disabled": true}))),
        ("PUT", "/users/admin/password", Some(json!({"password": "whatever-123"}))),
        ("DELETE", "/users/admin", None),
        ("GET", "/users/admin/tokens", None),
        ("DELETE", "/users/admin/tokens", None),
    ] {
        let (status, body) = env.call(method, path, Some(&bob), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }

    // Disabled: every token fails at once, logins are refused; enabling
    // brings the tokens back.
    let (status, user) = env.call("PATCH", "/users/bob", Some(&admin), Some(json!({"disabled": true}))).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert!(user["disabled_at"].is_string(), "{user}");
    let (status, body) = me(&bob).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("disabled"), "{body}");
    let (status, _) =
        env.call("POST", "/tokens", None, Some(json!({"username": "bob", "password": "password-1"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a disabled user cannot log in");
    let (status, user) = env.call("PATCH", "/users/bob", Some(&admin), Some(json!({"disabled": false}))).await;
    assert_eq!((status, &user["disabled_at"]), (StatusCode::OK, &Value::Null));
    assert_eq!(me(&bob).await.0, StatusCode::OK, "enabled again: the same token works");

    // Changing one's password needs the current one and revokes the
    // other tokens, not this one.
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, _) = env.call("PUT", "/me/password", Some(&bob), Some(change("wrong-password", "new-pass-1"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = env.call("PUT", "/me/password", Some(&bob), Some(change("password-1", "short"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, revoked) = env.call("PUT", "/me/password", Some(&bob), Some(change("password-1", "new-pass-1"))).await;
    assert_eq!((status, revoked["revoked"].as_u64()), (StatusCode::OK, Some(1)), "{revoked}");
    assert_eq!(me(&bob).await.0, StatusCode::OK);
    assert_eq!(me(&bob_laptop).await.0, StatusCode::UNAUTHORIZED, "the other token is revoked");
    let (status, _) =
        env.call("POST", "/tokens", None, Some(json!({"username": "bob", "password": "password-1"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bob_new = env.login("bob", "new-pass-1").await;

    // An admin sees them, resets the password (every token revoked).
    let (status, tokens) = env.call("GET", "/users/bob/tokens", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let items = tokens["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{tokens}");
    assert_eq!(items.iter().filter(|t| t["revoked_at"].is_null()).count(), 2, "{tokens}");
    let reset = json!({"password": "reset-pass-1"});
    let (status, revoked) = env.call("PUT", "/users/bob/password", Some(&admin), Some(reset)).await;
    assert_eq!((status, revoked["revoked"].as_u64()), (StatusCode::OK, Some(2)), "{revoked}");
    assert_eq!(me(&bob).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&bob_new).await.0, StatusCode::UNAUTHORIZED);
    let bob = env.login("bob", "reset-pass-1").await;
    let (status, revoked) = env.call("DELETE", "/users/bob/tokens", Some(&admin), None).await;
    assert_eq!((status, revoked["revoked"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(me(&bob).await.0, StatusCode::UNAUTHORIZED);

    // Roles; and there is always an enabled admin.
    for (method, path, body) in [
        ("PATCH", "/users/admin", Some(json!({"disabled": true}))),
        ("PATCH", "/users/admin", Some(json!({"role": "user"}))),
        ("DELETE", "/users/admin", None),
    ] {
        let (status, body) = env.call(method, path, Some(&admin), body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("last enabled admin"), "{body}");
    }
    let (status, user) = env.call("PATCH", "/users/bob", Some(&admin), Some(json!({"role": "admin"}))).await;
    assert_eq!((status, user["role"].as_str()), (StatusCode::OK, Some("admin")));
    let bob = env.login("bob", "reset-pass-1").await;
    assert_eq!(env.call("GET", "/users", Some(&bob), None).await.0, StatusCode::OK, "bob administers now");
    let (status, _) = env.call("PATCH", "/users/bob", Some(&admin), Some(json!({"role": "user"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        env.call("GET", "/users", Some(&bob), None).await.0,
        StatusCode::FORBIDDEN,
        "the role is read per request"
    );

    // Deleting a user who owns functions needs cascade.
    let (status, body) = env.call("DELETE", "/users/bob", Some(&admin), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("cascade"), "{body}");
    assert_eq!(env.call("GET", "/functions/bobs", Some(&bob), None).await.0, StatusCode::OK);
    let (status, _) = env.call("DELETE", "/users/bob?cascade=true", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&bob).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.call("GET", "/users/bob/tokens", Some(&admin), None).await.0, StatusCode::NOT_FOUND);
    let db = env.db.connect().await;
    let left = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COUNT(*) FROM functions WHERE name = 'bobs'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.try_get_by_index::<i64>(0).unwrap(), 0);
    // A user without functions goes without cascade.
    env.user(&admin, "carol").await;
    assert_eq!(env.call("DELETE", "/users/carol", Some(&admin), None).await.0, StatusCode::NO_CONTENT);

    // Every action is in the audit log, with its actor; no secret is.
    assert_eq!(
        audited(env, "bob").await,
        [
            "user_created",
            "login",
            "login",
            "user_updated",
            "login_refused_disabled",
            "user_updated",
            "password_changed",
            "login_failed",
            "login",
            "password_reset",
            "login",
            "tokens_revoked",
            "user_updated",
            "login",
            "user_updated",
            "DELETE /v1/users/{name}",
            "user_deleted",
        ]
    );
    let all =
        db.query_all_raw(Statement::from_string(DbBackend::Postgres, "SELECT detail FROM audit_log")).await.unwrap();
    for row in all {
        let detail = row.try_get_by_index::<String>(0).unwrap();
        for secret in ["password-1", "new-pass-1", "reset-pass-1"] {
            assert!(!detail.contains(secret), "{detail}");
        }
    }
}

#[tokio::test]
async fn the_audit_log_is_filtered_paged_and_shows_each_user_their_own() {
    let env = env().await;
    let admin = env.login("admin", ADMIN_PASSWORD).await;
    let bob = env.user(&admin, "bob").await;
    let carol = env.user(&admin, "carol").await;
    assert_eq!(env.call("POST", "/functions", Some(&bob), Some(json!({"name": "bobs"}))).await.0, StatusCode::CREATED);
    let secret = json!({"value": "hunter2-hunter2", "secret": true});
    assert!(env.call("PUT", "/functions/bobs/env/TOKEN", Some(&bob), Some(secret)).await.0.is_success());
    let quota = json!({"quota": {"calls_per_month": 10}});
    assert_eq!(env.call("PATCH", "/users/bob", Some(&admin), Some(quota)).await.0, StatusCode::OK);
    // Refused changes are recorded too, with their status.
    assert_eq!(env.call("DELETE", "/functions/bobs", Some(&carol), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(env.call("DELETE", "/users/bob", Some(&carol), None).await.0, StatusCode::FORBIDDEN);

    let read = |token: &str, query: &str| {
        let (token, query) = (token.to_owned(), query.to_owned());
        let env = &env;
        async move {
            let (status, body) = env.call("GET", &format!("/audit{query}"), Some(&token), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let summary = |body: &Value| -> Vec<(String, String, String, String)> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
                (s("actor"), s("action"), s("target"), s("outcome"))
            })
            .rev()
            .collect()
    };
    let t = |a: &str, b: &str, c: &str, d: &str| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned());

    // Bob: his own actions, and what was done to his account and function.
    let bobs = read(&bob, "").await;
    assert_eq!(
        summary(&bobs),
        [
            t("admin", "user_created", "bob", "ok"),
            t("bob", "login", "bob", "ok"),
            t("bob", "function_created", "bobs", "ok"),
            t("bob", "env_set", "bobs", "ok"),
            t("admin", "user_updated", "bob", "ok"),
        ]
    );
    let first = &bobs["items"].as_array().unwrap()[0];
    assert_eq!(first["source"], "127.0.0.1", "{first}");
    assert_eq!(first["detail"]["quota"]["calls_per_month"], 10, "{first}");
    assert!(!bobs.to_string().contains("hunter2"), "no secret in the log: {bobs}");
    // Carol: her own, refusals included; nothing of Bob's.
    assert_eq!(
        summary(&read(&carol, "").await),
        [
            t("admin", "user_created", "carol", "ok"),
            t("carol", "login", "carol", "ok"),
            t("carol", "DELETE /v1/functions/{name}", "bobs", "404"),
            t("carol", "DELETE /v1/users/{name}", "bob", "403"),
        ]
    );
    // A user's filters only narrow what they may see.
    assert!(read(&carol, "?actor=bob").await["items"].as_array().unwrap().is_empty());

    // Admins see everything, filtered and paged.
    let all = summary(&read(&admin, "?limit=500").await);
    assert_eq!(all.len(), 10, "{all:?}");
    let logins = summary(&read(&admin, "?action=login").await);
    assert_eq!(logins.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["admin", "bob", "carol"]);
    assert_eq!(summary(&read(&admin, "?target=bobs").await).len(), 3);
    assert_eq!(summary(&read(&admin, "?actor=bob&action=env_set").await), [t("bob", "env_set", "bobs", "ok")]);
    let mut paged = Vec::new();
    let mut query = "?limit=5".to_owned();
    loop {
        let page = read(&admin, &query).await;
        let mut items = summary(&page);
        items.reverse();
        assert!(items.len() <= 5);
        paged.extend(items);
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=5&after={next}"),
            None => break,
        }
    }
    paged.reverse();
    assert_eq!(paged, all, "pages join up to the whole log, each entry once");
    assert!(read(&admin, "?since=2999-01-01T00:00:00Z").await["items"].as_array().unwrap().is_empty());
    assert_eq!(summary(&read(&admin, "?until=2999-01-01T00:00:00Z&limit=500").await).len(), 10);
    for bad in ["?limit=0", "?since=yesterday", "?colour=blue"] {
        let (status, body) = env.call("GET", &format!("/audit{bad}"), Some(&admin), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// A stolen token is no faster a way to guess its owner's password than
/// logging in: `PUT /v1/me/password` counts wrong current passwords in the
/// login throttle, and past it refuses even the right one.
#[tokio::test]
async fn changing_a_password_with_a_stolen_token_is_throttled_like_a_login() {
    let e = env().await;
    let admin = e.login("admin", ADMIN_PASSWORD).await;
    let ada = e.user(&admin, "ada").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "a-new-password"});
    for i in 0..10 {
        let (s, body) = e.call("PUT", "/me/password", Some(&ada), Some(change(&format!("guess-{i}")))).await;
        assert_eq!((s, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "guess {i}");
    }
    let r =
        e.http.put(e.control.v1("/me/password")).bearer_auth(&ada).json(&change("password-1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the right password too, once throttled");
    assert!(r.headers().get("retry-after").is_some());
    // The same bucket as logins by name: logging in is throttled too, and
    // the password is unchanged.
    let (s, _) = e.call("POST", "/tokens", None, Some(json!({"username": "ada", "password": "password-1"}))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, _) = e.call("GET", "/me", Some(&ada), None).await;
    assert_eq!(s, StatusCode::OK, "the token still works: nothing changed");
}
