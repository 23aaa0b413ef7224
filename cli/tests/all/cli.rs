//! End-to-end tests of the real `olinctl` binary against a started stack
//! (Postgres, nats-server, in-process S3, control, worker, gateway).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use olin_test_support::{ADMIN_PASSWORD, Stack, fixtures};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

/// One run of olinctl.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "olinctl failed: {self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// Exit 2 with `error: ...` and one `hint: ...` line.
    fn usage_error(self, about: &str) {
        assert_eq!(self.code, 2, "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "one error line and one hint line: {self:?}");
        assert!(lines[0].starts_with("error: ") && lines[0].contains(about), "{self:?}");
        assert!(lines[1].starts_with("hint: "), "{self:?}");
    }
}

/// olinctl with its own config file, pointed at `url`.
struct Olinctl {
    dir: tempfile::TempDir,
    url: String,
}

impl Olinctl {
    fn new(url: &str) -> Olinctl {
        Olinctl { dir: tempfile::tempdir().unwrap(), url: url.to_owned() }
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("config.json")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_olinctl"));
        for var in ["OLIN_TOKEN", "OLIN_CONTEXT", "OLIN_OUTPUT", "OLIN_USERNAME", "OLIN_INVOKE_KEY", "OLIN_GATEWAY_URL"]
        {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .env("OLIN_CONFIG", self.config())
            .env("OLIN_URL", &self.url)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = self.command(args).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None).await
    }

    async fn login(&self) {
        self.run_with(&["login", "--username", "admin", "--password-stdin"], Some(&format!("{ADMIN_PASSWORD}\n")))
            .await
            .ok();
    }

    /// Invokes until the answer contains `want` (routes reach the gateway asynchronously).
    async fn invoke_until(&self, args: &[&str], want: &str) -> Out {
        let started = Instant::now();
        loop {
            let out = self.run(args).await;
            if out.code == 0 && out.stdout.contains(want) {
                return out;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never answered {want:?}: {out:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn example(path: &str) -> String {
    format!("{}/../examples/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_workflow() {
    let stack = Stack::start(2).await;
    let ctl = Olinctl::new(&stack.control.url());

    // Log in: the token is kept in a private file.
    ctl.login().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(ctl.config()).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let me = ctl.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");

    // Create, deploy v1 with the progress output, invoke.
    ctl.run(&["fn", "create", "hello"]).await.ok();
    let hello = example("hello/hello.wasm");
    let out = ctl.run(&["deploy", "hello", &hello]).await.ok();
    // Not a terminal: no bar, one summary line.
    let size = olin_cli::progress::human_bytes(std::fs::metadata(&hello).unwrap().len());
    assert!(out.stderr.contains(&format!("uploading hello.wasm: {size} of {size} sent\n")), "{out:?}");
    assert!(!out.stderr.contains('\r'), "{out:?}");
    assert!(out.stderr.contains("Deployed hello v1"), "{out:?}");
    assert_eq!(out.stdout.trim(), format!("{}/f/hello/", stack.gateway.url()));
    let out = ctl.invoke_until(&["invoke", "hello", "/world?greeting=hi"], "Hello from Olincloud!").await;
    assert!(out.stdout.contains("path: /world"), "{out:?}");
    let out = ctl.run(&["invoke", "-i", "hello", "/"]).await.ok();
    assert!(out.stdout.starts_with("HTTP/1.1 200 OK\n"), "{out:?}");
    assert!(out.stdout.to_ascii_lowercase().contains("olin-invocation-id: "), "{out:?}");

    // The call shows up in executions and logs.
    let started = Instant::now();
    let calls = loop {
        let calls = ctl.run(&["executions", "hello", "-o", "json"]).await.ok().json();
        if calls.as_array().unwrap().len() >= 2 {
            break calls;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no execution records: {calls}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(calls[0]["outcome"], "OK");
    let id = calls[0]["invocation_id"].as_str().unwrap().to_owned();
    let one = ctl.run(&["executions", "--id", &id, "-o", "json"]).await.ok().json();
    assert_eq!(one["function"], "hello");
    let shown = ctl.run(&["executions", "--id", &id]).await.ok();
    assert!(shown.stdout.contains("\n  X-Powered-By: olincloud-hello"), "the response headers: {shown:?}");
    let table = ctl.run(&["executions", "hello"]).await.ok();
    assert!(table.stdout.starts_with("INVOCATION"), "{table:?}");
    assert!(table.stdout.contains(&id), "{table:?}");
    ctl.run(&["invoke", "hello", "/fail"]).await.ok();
    let started = Instant::now();
    loop {
        let logs = ctl.run(&["logs", "hello"]).await.ok();
        if logs.stdout.contains("GUEST_ERROR") {
            assert!(logs.stdout.contains("  | hello: asked to fail"), "{logs:?}");
            assert!(logs.stdout.contains(" OK 200 "), "{logs:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the failure never reached the logs: {logs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // --follow prints calls as they are recorded.
    let mut follow = ctl.command(&["logs", "hello", "--follow", "-n", "1"]);
    let mut follower = follow.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    ctl.run(&["invoke", "hello", "/followed"]).await.ok();
    let started = Instant::now();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await.unwrap().unwrap().unwrap();
        if line.contains("GET /followed") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "--follow never showed the new call");
    }
    follower.kill().await.unwrap();

    let usage = ctl.run(&["usage", "hello", "-o", "json"]).await.ok().json();
    assert!(usage["calls"].as_u64().unwrap() >= 4, "{usage}");
    assert_eq!(usage["errors_by_outcome"]["GUEST_ERROR"], 1);

    // v2 replaces v1; rollback brings v1 back.
    let out = ctl.run(&["deploy", "hello", &example("echo/echo.wasm")]).await.ok();
    assert!(out.stderr.contains("Deployed hello v2"), "{out:?}");
    ctl.invoke_until(&["invoke", "hello", "-d", "ping"], "ping").await;
    let versions = ctl.run(&["versions", "hello", "-o", "json"]).await.ok().json();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let table = ctl.run(&["versions", "hello"]).await.ok();
    assert!(table.stdout.lines().any(|l| l.starts_with("v2") && l.contains("yes")), "{table:?}");
    let out = ctl.run(&["rollback", "hello"]).await.ok();
    assert!(out.stderr.contains("hello now serves v1"), "{out:?}");
    ctl.invoke_until(&["invoke", "hello", "/"], "Hello from Olincloud!").await;

    // Listings parse as JSON and show the deployment.
    let fns = ctl.run(&["fn", "list", "-o", "json"]).await.ok().json();
    assert_eq!(fns[0]["name"], "hello");
    assert_eq!(fns[0]["deployment"]["version"], 1);
    let table = ctl.run(&["fn", "list"]).await.ok();
    assert!(table.stdout.contains("hello") && table.stdout.contains("v1"), "{table:?}");
    assert!(table.stdout.starts_with("NAME   DEPLOYED  CALLS 1H"), "{table:?}");
    assert!(table.stdout.lines().any(|l| l.starts_with("hello") && l.contains(" (1 failed) ")), "{table:?}");

    // Environment (secrets masked) and limits.
    ctl.run(&["env", "set", "hello", "MODE=test", "PLAIN=a=b"]).await.ok();
    ctl.run(&["env", "set", "hello", "--secret", "API_KEY=s3cr3t"]).await.ok();
    let env = ctl.run(&["env", "list", "hello"]).await.ok();
    assert!(env.stdout.contains("PLAIN") && env.stdout.contains("a=b"), "{env:?}");
    assert!(env.stdout.contains("(secret)") && !env.stdout.contains("s3cr3t"), "{env:?}");
    ctl.run(&["env", "unset", "hello", "MODE"]).await.ok();
    let env = ctl.run(&["env", "list", "hello", "-o", "json"]).await.ok().json();
    assert_eq!(env.as_array().unwrap().len(), 2);
    let f = ctl.run(&["limits", "set", "hello", "--memory", "64MiB", "--wall", "5s", "-o", "json"]).await.ok().json();
    assert_eq!(f["limits"]["memory_bytes"], 64 << 20);
    assert_eq!(f["limits"]["wall_ms"], 5000);
    let out = ctl.run(&["limits", "set", "hello", "--memory", "64GiB"]).await;
    assert_eq!(out.code, 1, "above the server maximum is the server's refusal: {out:?}");
    assert!(out.stderr.contains("maximum"), "{out:?}");
    let f = ctl.run(&["limits", "set", "hello", "--rate", "20", "--burst", "40", "--concurrency", "2"]).await.ok();
    assert!(f.stdout.contains("20/s (burst 40)") && f.stdout.contains("concurrency:  2"), "{f:?}");
    let f = ctl.run(&["limits", "set", "hello", "--rate", "0", "--concurrency", "0", "-o", "json"]).await.ok().json();
    assert_eq!((&f["rate_limit"], &f["max_concurrency"]), (&Value::Null, &Value::Null));
    // Quotas: the admin sets them, the owner sees them in their usage.
    let u = ctl.run(&["users", "quota", "admin", "--calls", "1000000", "-o", "json"]).await.ok().json();
    assert_eq!(u["quota"]["calls_per_month"], 1_000_000);
    let users = ctl.run(&["users", "list"]).await.ok();
    assert!(users.stdout.lines().any(|l| l.starts_with("admin") && l.contains("1000000")), "{users:?}");
    let usage = ctl.run(&["usage"]).await.ok();
    assert!(usage.stdout.contains("of 1000000 calls"), "{usage:?}");
    ctl.run(&["users", "quota", "nobody", "--calls", "1"]).await.usage_error("no user named \"nobody\"");
    ctl.run(&["users", "quota", "admin", "--calls", "0"]).await.ok();

    // Private functions need a key.
    let out = ctl.run(&["deploy", "--private", "secret", &hello]).await.ok();
    assert!(out.stderr.contains("Created function secret"), "{out:?}");
    let key = ctl.run(&["keys", "create", "secret", "--name", "ci"]).await.ok().stdout.trim().to_owned();
    assert!(key.starts_with("oik_"), "{key}");
    ctl.invoke_until(&["invoke", "secret", "--key", &key, "/"], "Hello from Olincloud!").await;
    let out = ctl.run(&["invoke", "--fail", "secret", "/"]).await;
    assert_eq!(out.code, 1, "{out:?}");

    // Completions and delete.
    let comp = ctl.run(&["completions", "bash"]).await.ok();
    assert!(comp.stdout.contains("olinctl"), "{comp:?}");
    ctl.run(&["fn", "delete", "hello", "--yes"]).await.ok();
    ctl.run(&["fn", "show", "hello"]).await.usage_error("no function named \"hello\"");

    // Logout revokes the token.
    let token =
        serde_json::from_str::<Value>(&std::fs::read_to_string(ctl.config()).unwrap()).unwrap()["contexts"]["default"]
            ["token"]
            .as_str()
            .unwrap()
            .to_owned();
    ctl.run(&["logout"]).await.ok();
    let r = stack.http.get(stack.control.v1("/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    ctl.run(&["whoami"]).await.usage_error("not logged in");
    let _ = fixtures::HELLO_WASM;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_use_exits_2_with_a_hint() {
    let stack = Stack::start(1).await;
    let ctl = Olinctl::new(&stack.control.url());
    let hello = example("hello/hello.wasm");

    // Not logged in.
    ctl.run(&["fn", "list"]).await.usage_error("not logged in");
    ctl.run(&["deploy", "hello", &hello]).await.usage_error("not logged in");
    let out = ctl.run_with(&["login", "--username", "admin", "--password-stdin"], Some("wrong\n")).await;
    out.usage_error("refused the username or password");
    ctl.login().await;

    // Missing file, not WebAssembly, a disallowed import: all caught before upload.
    ctl.run(&["deploy", "hello", "/no/such/file.wasm"]).await.usage_error("cannot read /no/such/file.wasm");
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just some text\n").unwrap();
    ctl.run(&["deploy", "hello", text.to_str().unwrap()]).await.usage_error("cannot be deployed");
    let evil = dir.path().join("evil.wasm");
    std::fs::write(
        &evil,
        wat::parse_str(r#"(module (import "env" "socket_open" (func)) (func (export "_start")))"#).unwrap(),
    )
    .unwrap();
    ctl.run(&["deploy", "hello", evil.to_str().unwrap()]).await.usage_error("env::socket_open");
    let fns = ctl.run(&["fn", "list", "-o", "json"]).await.ok().json();
    assert_eq!(fns, serde_json::json!([]), "nothing reached the server");

    // Unknown functions, bad names, bad flags.
    ctl.run(&["invoke", "nope"]).await.usage_error("no function named \"nope\"");
    ctl.run(&["versions", "nope"]).await.usage_error("no function named \"nope\"");
    ctl.run(&["logs", "nope"]).await.usage_error("no function named \"nope\"");
    ctl.run(&["fn", "create", "Bad_Name"]).await.usage_error("not a valid function name");
    ctl.run(&["limits", "set", "nope"]).await.usage_error("nothing to set");
    let out = ctl.run(&["limits", "set", "x", "--memory", "lots"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = ctl.run(&["no-such-command"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    ctl.run(&["executions", "hello", "--since", "yesterday"]).await.usage_error("--since");

    // An unreachable control plane is a remote failure (exit 1) with a hint.
    let far = Olinctl::new("http://127.0.0.1:9");
    let out = far.run(&["--token", "x", "fn", "list"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("hint: is the control plane running there?"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_are_administered_from_the_command_line() {
    let stack = Stack::start(1).await;
    let admin = Olinctl::new(&stack.control.url());
    admin.login().await;
    admin.run_with(&["users", "create", "bob", "--password-stdin"], Some("password-1\n")).await.ok();
    let bob = Olinctl::new(&stack.control.url());
    bob.run_with(&["login", "--username", "bob", "--password-stdin"], Some("password-1\n")).await.ok();
    bob.run(&["deploy", "bobs", &example("hello/hello.wasm")]).await.ok();
    let call = || async {
        let r = stack.http.get(stack.gateway.function_url("bobs", "/")).send().await.unwrap();
        r.status().as_u16()
    };
    bob.invoke_until(&["invoke", "bobs", "/"], "Hello from Olincloud!").await;

    // Disabled: bob is out at once, his public function keeps serving.
    let out = admin.run(&["users", "disable", "bob"]).await.ok();
    assert!(out.stdout.contains("disabled"), "{out:?}");
    bob.run(&["fn", "list"]).await.usage_error("this account is disabled");
    assert_eq!(call().await, 200, "a disabled user's public function keeps serving");
    let users = admin.run(&["users", "list"]).await.ok();
    assert!(users.stdout.lines().any(|l| l.starts_with("bob") && l.contains("disabled")), "{users:?}");
    admin.run(&["users", "enable", "bob"]).await.ok();
    bob.run(&["fn", "list"]).await.ok();

    // His own password: the current one, then the new one.
    let out = bob.run_with(&["passwd", "--password-stdin"], Some("wrong-one\nnew-pass-1\n")).await;
    out.usage_error("current password is wrong");
    let out = bob.run_with(&["passwd", "--password-stdin"], Some("password-1\nnew-pass-1\n")).await.ok();
    assert!(out.stderr.contains("0 other token(s) revoked"), "{out:?}");
    bob.run(&["fn", "list"]).await.ok();

    // Tokens, reset, role.
    let tokens = admin.run(&["users", "tokens", "bob", "-o", "json"]).await.ok().json();
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    let out =
        admin.run_with(&["users", "reset-password", "bob", "--password-stdin"], Some("reset-pass-1\n")).await.ok();
    assert!(out.stderr.contains("1 token(s) revoked"), "{out:?}");
    bob.run(&["fn", "list"]).await.usage_error("invalid, expired or revoked");
    bob.run_with(&["login", "--username", "bob", "--password-stdin"], Some("reset-pass-1\n")).await.ok();
    let out = admin.run(&["users", "revoke-tokens", "bob"]).await.ok();
    assert!(out.stderr.contains("1 token(s) of bob revoked"), "{out:?}");
    let u = admin.run(&["users", "set-role", "bob", "admin", "-o", "json"]).await.ok().json();
    assert_eq!(u["role"], "admin");
    let out = admin.run(&["users", "set-role", "bob", "boss"]).await;
    assert!(out.code == 2 && out.stderr.contains("not a role"), "{out:?}");
    admin.run(&["users", "disable", "nobody"]).await.usage_error("no user named \"nobody\"");

    // Deleting him needs --cascade while he owns a function; then it stops.
    admin.run(&["users", "delete", "bob"]).await.usage_error("owns 1 function");
    assert_eq!(call().await, 200);
    admin.run(&["users", "delete", "bob", "--cascade"]).await.ok();
    let started = Instant::now();
    while call().await != 404 {
        assert!(started.elapsed() < Duration::from_secs(10), "the deleted user's function still serves");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let users = admin.run(&["users", "list", "-o", "json"]).await.ok().json();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");

    // The audit log tells the story, refusals included.
    let log = admin.run(&["audit", "--target", "bob", "-o", "json"]).await.ok().json();
    let actions: Vec<&str> = log.as_array().unwrap().iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "user_created",
            "login",
            "user_updated",
            "user_updated",
            "password_changed",
            "password_reset",
            "login",
            "tokens_revoked",
            "user_updated",
            "DELETE /v1/users/{name}",
            "user_deleted"
        ],
        "{log}"
    );
    let table = admin.run(&["audit", "--actor", "admin", "--action", "user_deleted"]).await.ok();
    assert!(table.stdout.starts_with("TIME") && table.stdout.contains("127.0.0.1"), "{table:?}");
    assert_eq!(table.stdout.lines().count(), 2, "{table:?}");
    admin.run(&["audit", "--since", "yesterday-ish"]).await.usage_error("--since");
}

/// Reads `child`'s stderr until a line contains `marker`; returns what was read.
async fn stderr_until(child: &mut tokio::process::Child, marker: &str) -> String {
    let stderr = child.stderr.as_mut().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(marker) {
                return;
            }
        }
        panic!("olinctl ended before printing {marker:?}: {seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("olinctl did not print {marker:?} within 30 s"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn olinctl_signs_in_through_the_organisations_provider() {
    let provider = olin_test_support::OidcProvider::start().await;
    // The same provider twice: with its device flow, and without (a browser
    // and a loopback redirect to olinctl).
    let mut cfg: Value = serde_json::from_str(&provider.control_config("corp")).unwrap();
    let mut web = cfg["providers"][0].clone();
    web["id"] = "web".into();
    web["device_flow"] = false.into();
    cfg["providers"].as_array_mut().unwrap().push(web);
    let stack = Stack::start_with(1, |c| c.oidc_config = Some(cfg.to_string())).await;
    provider
        .allow_redirects(&[stack.control.v1("/auth/sso/corp/callback"), stack.control.v1("/auth/sso/web/callback")])
        .await;
    let cli = Olinctl::new(&stack.control.url());
    cli.run(&["login", "--sso"]).await.usage_error("several sign-in providers");
    cli.run(&["login", "--sso", "nope"]).await.usage_error("no sign-in provider \"nope\"");

    // Device flow: olinctl shows a URL and a code; the person signs in.
    let mut child = cli.command(&["login", "--sso", "corp"]).spawn().unwrap();
    let said = stderr_until(&mut child, "Waiting for you").await;
    let url = said.split_whitespace().find(|w| w.starts_with("http") && w.contains("user_code=")).unwrap().to_owned();
    let browser = olin_test_support::Browser::new();
    let done = browser.sign_in(&url, &provider.issuer, "dev-user", None).await;
    assert_eq!(done.status, reqwest::StatusCode::OK, "{}", done.body);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let me = cli.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(me["username"], "dev-user", "{me}");

    // Loopback: the browser comes back to olinctl with the token.
    let mut child = cli.command(&["login", "--sso", "web", "--context", "web"]).spawn().unwrap();
    let said = stderr_until(&mut child, "/login?return_to=").await;
    let url = said.lines().find(|l| l.starts_with("http")).unwrap().trim().to_owned();
    let browser = olin_test_support::Browser::new();
    let back = browser.sign_in(&url, &provider.issuer, "web-user", None).await;
    let location = back.location.clone().unwrap_or_else(|| panic!("{back:?}"));
    assert!(location.starts_with("http://127.0.0.1:") && location.contains("/callback?code="), "{location}");
    let answer = browser.send(reqwest::Method::GET, &location, None).await;
    assert_eq!(answer.status, reqwest::StatusCode::OK);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let me = cli.run(&["whoami", "-o", "json", "--context", "web"]).await.ok().json();
    assert_eq!(me["username"], "web-user", "{me}");
}
