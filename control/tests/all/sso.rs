//! Signing in through a real OpenID provider (`oidc-provider` under
//! Node.js, started per test): the authorization-code flow with PKCE through
//! the provider's own pages, provisioning by issuer and subject, the admin
//! role from a group claim, browser sessions and their refresh, the device
//! flow, tampered ID tokens, and the provider's key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olin_test_support::{
    ADMIN_PASSWORD, Browser, ControlHandle, NatsServer, OidcProvider, S3Server, TestDb, spawn_control,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Env {
    _db: TestDb,
    _nats: NatsServer,
    _s3: S3Server,
    provider: OidcProvider,
    control: ControlHandle,
    http: reqwest::Client,
}

async fn env(edit: impl FnOnce(&mut olin_control::Config)) -> Env {
    let provider = OidcProvider::start().await;
    let db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let cfg = provider.control_config("corp");
    let control = spawn_control(db.url(), &nats.url(), s3.store_args(), |c| {
        c.oidc_config = Some(cfg);
        edit(c);
    })
    .await;
    provider.allow_redirects(&[control.v1("/auth/sso/corp/callback")]).await;
    Env { _db: db, _nats: nats, _s3: s3, provider, control, http: reqwest::Client::new() }
}

impl Env {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        crate::client::call(&self.http, &self.control, method, path, token, body).await
    }

    /// Signs `login` in through the provider's pages in a new browser;
    /// returns the browser and where it landed.
    async fn sign_in(&self, login: &str) -> (Browser, olin_test_support::oidc::Landing) {
        let browser = Browser::new();
        let start = self.control.v1("/auth/sso/corp/login?return_to=/functions");
        let landing = browser.sign_in(&start, &self.provider.issuer, login, None).await;
        (browser, landing)
    }

    /// A token of `browser`'s session (`POST /v1/auth/session`).
    async fn session_token(&self, browser: &Browser) -> (StatusCode, Value) {
        let l = browser.send(Method::POST, &self.control.v1("/auth/session"), None).await;
        (l.status, serde_json::from_str(&l.body).unwrap_or(Value::Null))
    }

    /// Signs `login` in and returns a token of the session.
    async fn signed_in(&self, login: &str) -> (Browser, String) {
        let (browser, landing) = self.sign_in(login).await;
        assert_eq!(landing.status, StatusCode::SEE_OTHER, "{login}: {}", landing.body);
        let (s, t) = self.session_token(&browser).await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        (browser, t["token"].as_str().unwrap().to_owned())
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("not the error shape: {v}"))
}

#[tokio::test]
async fn users_sign_in_through_the_provider_and_get_short_sessions() {
    let e = env(|_| {}).await;
    let (s, methods) = e.call("GET", "/auth/providers", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        methods,
        json!({"local_passwords": true, "providers": [{"id": "corp", "name": "Test SSO", "device_flow": true}]})
    );

    // The code flow through the provider's own login page: back to the
    // path asked for, with a session cookie only /v1/auth/session sees.
    let (browser, landing) = e.sign_in("alice").await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
    assert_eq!(
        landing.location.as_deref(),
        Some(e.control.url().trim_end_matches('/').to_owned() + "/functions").as_deref()
    );
    let session = landing.set_cookies.iter().find(|c| c.starts_with("olin_session=")).expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/v1/auth/session"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(landing.set_cookies.iter().any(|c| c.starts_with("olin_sso=;")), "the sign-in cookie is cleared");
    let (s, t) = e.session_token(&browser).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap().to_owned();
    let expires_at: chrono::DateTime<chrono::Utc> = t["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires_at - chrono::Utc::now();
    assert!(left <= chrono::Duration::minutes(15) && left > chrono::Duration::minutes(13), "a short token: {left}");
    let (_, me) = e.call("GET", "/me", Some(&token), None).await;
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("alice"), Some("user")));
    // A refresh cookie is not a bearer token.
    let refresh = browser.cookie(&e.control.url(), "olin_session").unwrap();
    assert_eq!(e.call("GET", "/me", Some(&refresh), None).await.0, StatusCode::UNAUTHORIZED);

    // Signing in again finds the same user (by issuer and subject).
    let (_, again) = e.signed_in("alice").await;
    let (_, me2) = e.call("GET", "/me", Some(&again), None).await;
    assert_eq!(me2["id"], me["id"]);

    // The admin role comes from the group claim only.
    let (_, root) = e.signed_in("admin-root").await;
    let (_, me) = e.call("GET", "/me", Some(&root), None).await;
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("admin-root"), Some("admin")));
    let (_, users) = e.call("GET", "/users", Some(&root), None).await;
    let names: Vec<&str> = users["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "alice").count(), 1, "{names:?}");
    assert_eq!(e.call("GET", "/users", Some(&token), None).await.0, StatusCode::FORBIDDEN);

    // A disabled user's session and tokens end at once, and sign-in is refused.
    let (s, _) = e.call("PATCH", "/users/alice", Some(&root), Some(json!({"disabled": true}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e.call("GET", "/me", Some(&token), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(e.session_token(&browser).await.0, StatusCode::UNAUTHORIZED);
    let (_, refused) = e.sign_in("alice").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(refused.body.contains("disabled"), "{}", refused.body);
    e.call("PATCH", "/users/alice", Some(&root), Some(json!({"disabled": false}))).await;
    assert_eq!(e.call("GET", "/me", Some(&token), None).await.0, StatusCode::OK);

    // Logging out ends the session and the tokens it bought.
    let l = browser.send(Method::DELETE, &e.control.v1("/auth/session"), None).await;
    assert_eq!(l.status, StatusCode::NO_CONTENT);
    assert!(l.set_cookies.iter().any(|c| c.starts_with("olin_session=;") && c.contains("Max-Age=0")));
    assert_eq!(e.call("GET", "/me", Some(&token), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(e.session_token(&browser).await.0, StatusCode::UNAUTHORIZED);

    // Password logins can ask for a browser session too.
    let resp = e
        .http
        .post(e.control.v1("/tokens"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD, "session": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("olin_session=")));

    // The audit log has the sign-ins, with their provider.
    let (_, log) = e.call("GET", "/audit?actor=alice&limit=50", Some(&root), None).await;
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"user_provisioned") && actions.contains(&"login"), "{actions:?}");
    let login = log["items"].as_array().unwrap().iter().find(|a| a["action"] == "login").unwrap();
    assert_eq!((login["detail"]["provider"].as_str(), login["outcome"].as_str()), (Some("corp"), Some("ok")));
}

#[tokio::test]
async fn tampered_id_tokens_and_forged_callbacks_are_refused() {
    let e = env(|_| {}).await;
    // Each tampered token: 401 with a code that names what is wrong, and
    // nobody is signed in.
    for (mode, expected) in [
        ("signature", "id_token_signature"),
        ("audience", "id_token_audience"),
        ("expired", "id_token_expired"),
        ("nonce", "id_token_nonce"),
        ("issuer", "id_token_issuer"),
    ] {
        e.provider.tamper_next(mode).await;
        let (browser, landing) = e.sign_in("mallory").await;
        assert_eq!(landing.status, StatusCode::UNAUTHORIZED, "{mode}: {}", landing.body);
        let body: Value = serde_json::from_str(&landing.body).unwrap();
        assert_eq!(code(&body), expected, "{mode}: {body}");
        assert_eq!(e.session_token(&browser).await.0, StatusCode::UNAUTHORIZED, "{mode}");
    }
    let admin = {
        let (s, t) =
            e.call("POST", "/tokens", None, Some(json!({"username": "admin", "password": ADMIN_PASSWORD}))).await;
        assert_eq!(s, StatusCode::CREATED);
        t["token"].as_str().unwrap().to_owned()
    };
    let (_, users) = e.call("GET", "/users", Some(&admin), None).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "nobody was provisioned: {users}");

    // A callback this browser did not start, or with another state.
    let stranger = Browser::new();
    let l = stranger.send(Method::GET, &e.control.v1("/auth/sso/corp/callback?code=x&state=y"), None).await;
    assert_eq!((l.status, code(&serde_json::from_str(&l.body).unwrap())), (StatusCode::UNAUTHORIZED, "sso_state"));
    // A person's browser gets a page saying so, with the same status.
    let page = e
        .http
        .get(e.control.v1("/auth/sso/corp/callback?code=x&state=y"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<code>sso_state</code>") && html.contains("href=\"/#/login\""), "{html}");
    let browser = Browser::new();
    let l = browser.send(Method::GET, &e.control.v1("/auth/sso/corp/login"), None).await;
    assert_eq!(l.status, StatusCode::SEE_OTHER);
    let to = reqwest::Url::parse(l.location.as_deref().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["code_challenge"].len() >= 43 && !q["nonce"].is_empty());
    let l = browser.send(Method::GET, &e.control.v1("/auth/sso/corp/callback?code=x&state=not-the-state"), None).await;
    assert_eq!((l.status, code(&serde_json::from_str(&l.body).unwrap())), (StatusCode::UNAUTHORIZED, "sso_state"));
    // Never an open redirect.
    for bad in ["https://evil.example/", "//evil.example/x", "http://10.0.0.1:80/"] {
        let url = format!("{}?return_to={}", e.control.v1("/auth/sso/corp/login"), urlencode(bad));
        assert_eq!(browser.send(Method::GET, &url, None).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(e.call("GET", "/auth/sso/nobody/login", None, None).await.0, StatusCode::NOT_FOUND);

    // The provider rotates its keys: the next sign-in still works (control
    // fetched the new key set when the token named a key it did not know).
    let kid = e.provider.rotate_keys().await;
    assert!(!kid.is_empty());
    let (_, landing) = e.sign_in("after-rotation").await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
}

#[tokio::test]
async fn olinctl_signs_in_with_the_device_flow() {
    let e = env(|_| {}).await;
    let (s, start) = e.call("POST", "/auth/sso/corp/device", None, None).await;
    assert_eq!(s, StatusCode::CREATED, "{start}");
    let device_code = start["device_code"].as_str().unwrap();
    let poll = json!({"device_code": device_code});
    let (s, pending) = e.call("POST", "/auth/sso/corp/device/token", None, Some(poll.clone())).await;
    assert_eq!((s, code(&pending)), (StatusCode::BAD_REQUEST, "authorization_pending"));

    // The person types the code at the provider's page and signs in.
    let browser = Browser::new();
    let user_code = start["user_code"].as_str().unwrap();
    let page = start["verification_uri"].as_str().unwrap();
    let done = browser.sign_in(page, &e.provider.issuer, "admin-dev", Some(user_code)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);

    // Polled too soon after the last poll, the provider may say slow down.
    let token = loop {
        let (s, t) = e.call("POST", "/auth/sso/corp/device/token", None, Some(poll.clone())).await;
        match s {
            StatusCode::CREATED => break t["token"].as_str().unwrap().to_owned(),
            StatusCode::BAD_REQUEST if code(&t) == "slow_down" => {
                tokio::time::sleep(std::time::Duration::from_secs(start["interval"].as_u64().unwrap())).await;
            }
            _ => panic!("{s}: {t}"),
        }
    };
    let (_, me) = e.call("GET", "/me", Some(&token), None).await;
    assert_eq!((me["username"].as_str(), me["role"].as_str()), (Some("admin-dev"), Some("admin")));
    // A device code is good for one sign-in.
    let (s, again) = e.call("POST", "/auth/sso/corp/device/token", None, Some(poll)).await;
    assert!(s.is_client_error() || s == StatusCode::BAD_GATEWAY, "{s}: {again}");
    assert_ne!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn password_logins_can_be_turned_off() {
    let e = env(|c| c.local_passwords = false).await;
    let (s, methods) = e.call("GET", "/auth/providers", None, None).await;
    assert_eq!((s, &methods["local_passwords"]), (StatusCode::OK, &json!(false)));
    let (s, refused) =
        e.call("POST", "/tokens", None, Some(json!({"username": "admin", "password": ADMIN_PASSWORD}))).await;
    assert_eq!((s, code(&refused)), (StatusCode::FORBIDDEN, "forbidden"));
    let (_, token) = e.signed_in("admin-ops").await;
    assert_eq!(e.call("GET", "/users", Some(&token), None).await.0, StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn a_loopback_sign_in_pays_out_only_to_the_program_that_started_it() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let e = env(|_| {}).await;
    let login = e.control.v1("/auth/sso/corp/login");
    let back = "http://127.0.0.1:9/callback";
    // A loopback return_to without a challenge is refused before anything.
    let url = format!("{login}?return_to={}", urlencode(back));
    assert_eq!(e.call("GET", &url[e.control.v1("").len()..], None, None).await.0, StatusCode::BAD_REQUEST);

    let verifier = "a-secret-only-olinctl-knows-0123456789abcdef";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let url = format!("{login}?return_to={}&challenge={challenge}", urlencode(back));
    let browser = Browser::new();
    let landing = browser.sign_in(&url, &e.provider.issuer, "loop", None).await;
    let location = reqwest::Url::parse(landing.location.as_deref().unwrap()).unwrap();
    assert!(location.as_str().starts_with(back), "{location}");
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert!(!pairs.contains_key("token"), "no token in a URL: {location}");
    let code = pairs["code"].clone();

    // The code is worth nothing without the secret, or as a bearer token.
    assert_eq!(e.call("GET", "/me", Some(&code), None).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = e
        .call("POST", "/auth/sso/exchange", None, Some(json!({"code": code, "verifier": "a guess at the secret"})))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, t) = e.call("POST", "/auth/sso/exchange", None, Some(json!({"code": code, "verifier": verifier}))).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (_, me) = e.call("GET", "/me", Some(t["token"].as_str().unwrap()), None).await;
    assert_eq!(me["username"], "loop");
    // A minute later the code is spent.
    e.control.advance_clock(std::time::Duration::from_secs(61));
    let (s, _) = e.call("POST", "/auth/sso/exchange", None, Some(json!({"code": code, "verifier": verifier}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
