//! A real OpenID provider per test (`oidc/provider.mjs`: panva's
//! `oidc-provider` under Node.js), and a [`Browser`] that signs in through
//! its own pages without a browser engine: it follows redirects, keeps
//! cookies per origin, and submits the provider's forms.

use std::collections::HashMap;
use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::AsyncBufReadExt as _;

/// The client a test's control plane is registered as.
pub const OIDC_CLIENT_ID: &str = "olincloud";
/// Its secret.
pub const OIDC_CLIENT_SECRET: &str = "olincloud-test-client-secret";

/// A running provider; killed when dropped.
pub struct OidcProvider {
    child: tokio::process::Child,
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Starts the provider with [`OIDC_CLIENT_ID`] registered (its redirect
    /// URIs set later, with [`OidcProvider::allow_redirects`]).
    pub async fn start() -> OidcProvider {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: run `npm ci` in {} (scripts/test does)",
            dir.display()
        );
        let config = serde_json::json!({"port": 0, "clients": clients(&[])});
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("OIDC_TEST_CONFIG", config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the test OpenID provider (node, Node.js 20.19+ on PATH): {e}"));
        let stdout = child.stdout.take().expect("provider stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the test OpenID provider did not start within 30 s")
            .expect("reading the provider's output")
            .expect("the test OpenID provider exited before listening");
        let started: serde_json::Value = serde_json::from_str(&first).expect("the provider's first line");
        let issuer = started["issuer"].as_str().expect("issuer").to_owned();
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        OidcProvider { child, issuer, http: reqwest::Client::new() }
    }

    /// Registers `uris` as the client's redirect URIs.
    pub async fn allow_redirects(&self, uris: &[String]) {
        self.hook("/__test/clients", clients(uris)).await;
    }

    /// The next token answer's ID token is altered: `signature`, `audience`,
    /// `expired`, `nonce` or `issuer`.
    pub async fn tamper_next(&self, mode: &str) {
        self.hook("/__test/tamper", serde_json::json!({"mode": mode})).await;
    }

    /// Replaces the provider's signing key; returns the new key id.
    pub async fn rotate_keys(&self) -> String {
        let resp = self.hook("/__test/rotate", serde_json::json!({})).await;
        let v: serde_json::Value = serde_json::from_str(&resp).expect("rotate answer");
        v["kid"].as_str().expect("kid").to_owned()
    }

    async fn hook(&self, path: &str, body: serde_json::Value) -> String {
        let resp = self
            .http
            .post(format!("{}{path}", self.issuer))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("provider test hook");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.text().await.unwrap_or_default()
    }

    /// A `CONTROL_OIDC_CONFIG` document with this provider as `id`, whose
    /// group `olincloud-admins` makes admins (users whose login starts with
    /// `admin` are in it).
    pub fn control_config(&self, id: &str) -> String {
        serde_json::json!({"providers": [{
            "id": id,
            "name": "Test SSO",
            "issuer": self.issuer,
            "client_id": OIDC_CLIENT_ID,
            "client_secret": OIDC_CLIENT_SECRET,
            "scopes": ["openid", "profile", "email", "groups"],
            "admin_claim": "groups",
            "admin_values": ["olincloud-admins"],
        }]})
        .to_string()
    }

    /// Stops the provider.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn clients(redirect_uris: &[String]) -> serde_json::Value {
    serde_json::json!([{
        "client_id": OIDC_CLIENT_ID,
        "client_secret": OIDC_CLIENT_SECRET,
        "redirect_uris": if redirect_uris.is_empty() { vec!["http://127.0.0.1/unset".to_owned()] } else { redirect_uris.to_vec() },
    }])
}

/// Where a browser's walk ended.
#[derive(Debug)]
pub struct Landing {
    /// The last answer's status.
    pub status: StatusCode,
    /// Its `Location`, for a redirect that left the sign-in.
    pub location: Option<String>,
    /// Its body.
    pub body: String,
    /// Its `Set-Cookie` headers.
    pub set_cookies: Vec<String>,
}

/// A browser without an engine: cookies per origin, redirects followed by
/// hand, forms submitted.
pub struct Browser {
    http: reqwest::Client,
    cookies: std::sync::Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            cookies: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The cookie `name` this browser holds for `url`'s origin.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let origin = origin(url);
        let jar = self.cookies.lock().expect("jar");
        jar.get(&origin)?.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Sends a request as this browser (its cookies for `url`'s origin);
    /// keeps the cookies the answer sets.
    pub async fn send(&self, method: reqwest::Method, url: &str, form: Option<&[(String, String)]>) -> Landing {
        let origin = origin(url);
        let mut req = self.http.request(method, url);
        let cookie = {
            let jar = self.cookies.lock().expect("jar");
            jar.get(&origin).map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
        };
        if let Some(c) = cookie.filter(|c| !c.is_empty()) {
            req = req.header("cookie", c);
        }
        if let Some(form) = form {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(form).expect("form"));
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status();
        let set_cookies: Vec<String> =
            resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        {
            let mut jar = self.cookies.lock().expect("jar");
            let entry = jar.entry(origin).or_default();
            for sc in &set_cookies {
                let first = sc.split(';').next().unwrap_or_default();
                let Some((k, v)) = first.split_once('=') else { continue };
                entry.retain(|(name, _)| name != k.trim());
                let deleted = sc.to_ascii_lowercase().contains("max-age=0");
                if !deleted {
                    entry.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
        }
        let location =
            resp.headers().get("location").and_then(|v| v.to_str().ok()).map(|l| {
                reqwest::Url::parse(url).and_then(|base| base.join(l)).map(String::from).unwrap_or(l.to_owned())
            });
        let body = resp.text().await.unwrap_or_default();
        Landing { status, location, body, set_cookies }
    }

    /// Walks from `start` through the provider's pages (`issuer`), signing
    /// in as `login` and entering `user_code` where asked, following every
    /// redirect that stays with the provider or control's sign-in routes;
    /// returns the first answer that leaves them (or that has no form).
    pub async fn sign_in(&self, start: &str, issuer: &str, login: &str, user_code: Option<&str>) -> Landing {
        let mut next = (reqwest::Method::GET, start.to_owned(), None::<Vec<(String, String)>>);
        for _ in 0..20 {
            let (method, url, form) = next;
            let landing = self.send(method, &url, form.as_deref()).await;
            if landing.status.is_redirection() {
                let location = landing.location.clone().expect("a redirect with a Location");
                let within = location.starts_with(issuer) || location.contains("/v1/auth/sso/");
                if !within {
                    return landing;
                }
                next = (reqwest::Method::GET, location, None);
                continue;
            }
            let Some((action, mut fields)) = parse_form(&landing.body) else { return landing };
            for (name, value) in &mut fields {
                match name.as_str() {
                    "login" => *value = login.to_owned(),
                    "password" => *value = "any password".to_owned(),
                    "user_code" if value.is_empty() => *value = user_code.unwrap_or_default().to_owned(),
                    _ => {}
                }
            }
            let action = reqwest::Url::parse(&url).and_then(|b| b.join(&action)).map(String::from).expect("action");
            next = (reqwest::Method::POST, action, Some(fields));
        }
        panic!("the sign-in did not end within 20 steps");
    }
}

/// `scheme://host:port` of `url`.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

/// The first form of `html`: its action and its inputs' names and values.
fn parse_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>").map_or(html.len(), |e| start + e);
    let form = &html[start..end];
    let tag_end = form.find('>')?;
    let action = attr(&form[..tag_end], "action").unwrap_or_default();
    let mut fields = Vec::new();
    let mut rest = &form[tag_end..];
    while let Some(i) = rest.find("<input") {
        let tag = &rest[i..];
        let close = tag.find('>').unwrap_or(tag.len());
        let tag_text = &tag[..close];
        if let Some(name) = attr(tag_text, "name") {
            fields.push((name, attr(tag_text, "value").unwrap_or_default()));
        }
        rest = &tag[close..];
    }
    Some((action, fields))
}

/// The value of `name="..."` in a tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let at = from + i;
        // A whole attribute name, not the end of another (`data-name=`).
        if at == 0 || tag.as_bytes()[at - 1].is_ascii_whitespace() {
            let v = &tag[at + needle.len()..];
            let v = &v[..v.find('"')?];
            return Some(v.replace("&amp;", "&").replace("&quot;", "\"").replace("&#x2F;", "/").replace("&#x3D;", "="));
        }
        from = at + needle.len();
    }
    None
}
