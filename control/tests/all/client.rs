//! A caller of the `/v1` API with a bearer token, shared by the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use olin_test_support::ControlHandle;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `method` `/v1<path>` at `control`, with `token` if given and a JSON
/// body if given; the answer as JSON (null if empty, a string if not JSON).
pub(crate) async fn call(
    http: &reqwest::Client,
    control: &ControlHandle,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method.parse().unwrap(), control.v1(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

/// One user's view of the API.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Api {
    /// Logs `user` in at `control`.
    pub(crate) async fn login(http: &reqwest::Client, control: &ControlHandle, user: &str, password: &str) -> Api {
        let r = http.post(control.v1("/tokens")).json(&json!({"username": user, "password": password}));
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "login {user}");
        let token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
        Api { http: http.clone(), base: control.v1(""), token }
    }

    /// `method path` with a JSON body, answered as JSON (null if not).
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req =
            self.http.request(method.parse().unwrap(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Uploads `wasm` as a new version of `function`; returns its number.
    pub(crate) async fn upload(&self, function: &str, wasm: &[u8]) -> i64 {
        let r = self
            .http
            .post(format!("{}/functions/{function}/versions", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(wasm.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["number"].as_i64().unwrap()
    }
}
