//! The panel in a real browser (Debian's chromium driven by playwright-core)
//! against a real stack: Postgres, nats-server, S3, control (serving the
//! embedded panel), a worker and the gateway. The browser script is
//! `panel/e2e/panel.e2e.mjs`; screenshots land in `target/panel-e2e/`.
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `panel/` (scripts/test
//! sees to all three); without them this test fails, saying what to install.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use olin_test_support::{ADMIN_PASSWORD, Stack};
use serde_json::json;

/// The repository, the panel's folder and chromium, once each is known to
/// be there.
fn prerequisites() -> (std::path::PathBuf, std::path::PathBuf, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let panel = root.join("panel");
    assert!(
        std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()),
        "node is not installed: apt-get install -y nodejs npm (scripts/test installs it)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install -y chromium (scripts/test installs it)"
    );
    assert!(
        panel.join("node_modules/playwright-core").exists(),
        "panel/node_modules is missing: run `npm ci` in panel/ (scripts/test does)"
    );
    (root, panel, chromium)
}

/// Runs the browser script `script` of `panel/e2e` with `vars`; screenshots
/// go to `artifacts`. Fails the test, with the script's output, if it fails.
async fn run_script(panel: &Path, chromium: &str, script: &str, artifacts: &Path, vars: &[(&str, String)]) {
    let _ = std::fs::remove_dir_all(artifacts);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(format!("e2e/{script}"))
        .current_dir(panel)
        .env("ARTIFACTS", artifacts)
        .env("CHROMIUM", chromium)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    let out =
        tokio::time::timeout(Duration::from_secs(180), cmd.output()).await.expect("the browser test hung").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_panel_works_in_a_browser() {
    let (root, panel, chromium) = prerequisites();
    let stack = Stack::start(2).await;
    let admin = stack.admin_token().await;
    let http = &stack.http;
    let r = http
        .post(stack.control.v1("/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "bob", "password": "bob-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A quota: bob's functions page shows this month's calls against it.
    let r = http
        .patch(stack.control.v1("/users/bob"))
        .bearer_auth(&admin)
        .json(&json!({"quota": {"calls_per_month": 1000}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bob = stack.login("bob", "bob-password-1").await;
    let r = http
        .post(stack.control.v1("/functions"))
        .bearer_auth(&bob)
        .json(&json!({"name": "bobs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let artifacts = root.join("target/panel-e2e");
    let path = |p: &str| root.join(p).display().to_string();
    let vars = [
        ("CONTROL_URL", stack.control.url()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("OTHER_USER", "bob".to_owned()),
        ("OTHER_PASSWORD", "bob-password-1".to_owned()),
        ("OTHER_FUNCTION", "bobs".to_owned()),
        ("WASM_V1", path("examples/hello/hello.wasm")),
        ("WASM_V2", path("examples/echo/echo.wasm")),
    ];
    run_script(&panel, &chromium, "panel.e2e.mjs", &artifacts, &vars).await;
    for shot in [
        "01-login",
        "02-functions",
        "03-function",
        "04-try-it",
        "05-executions",
        "06-execution",
        "07-rolled-back",
        "08-usage",
        "09-settings-phone",
        "09a-users",
        "09b-audit",
        "10-isolation-function",
        "11-isolation-execution",
        "12-account",
    ] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "no screenshot {shot}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_panel_signs_in_through_the_organisations_provider() {
    let (root, panel, chromium) = prerequisites();
    let provider = olin_test_support::OidcProvider::start().await;
    let config = provider.control_config("corp");
    let stack = Stack::start_with(1, |c| c.oidc_config = Some(config)).await;
    provider.allow_redirects(&[stack.control.v1("/auth/sso/corp/callback")]).await;
    let artifacts = root.join("target/panel-e2e-sso");
    let vars =
        [("CONTROL_URL", stack.control.url()), ("WASM", root.join("examples/hello/hello.wasm").display().to_string())];
    run_script(&panel, &chromium, "sso.e2e.mjs", &artifacts, &vars).await;
    for shot in ["sso-01-login", "sso-02-provider", "sso-04-deployed", "sso-06-isolation", "sso-07-logged-out"] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "no screenshot {shot}");
    }
}
