//! The shipped monitoring (deploy/k8s/components/monitoring and keda)
//! against the real tools:
//! - a real Prometheus scrapes two real workers the way the PodMonitor
//!   tells the Prometheus Operator to, and the exact query of the KEDA
//!   ScaledObject rises above its threshold under a backlog and falls back
//!   after it;
//! - the alert rules pass `promtool check rules`, and `promtool test rules`
//!   runs a firing and a quiet case of every alert;
//! - every Olincloud metric the alerts, the dashboard and the autoscaler
//!   read is one a service exports (the autoscaler's, the workers').
//!
//! Prometheus and promtool come from Debian's `prometheus` package
//! (`scripts/test` installs it); without them these tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use olin_test_support::{GatewayBuilder, NatsServer, S3Server, WorkerBuilder, deploy_route, fixtures, wait};
use serde_yaml::Value;

use crate::k8s_env::{str_of, yaml_documents};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(path: &str) -> Vec<Value> {
    yaml_documents(&repo().join(path))
}

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "{name} is not installed: `apt-get install -y prometheus` (scripts/test does)"
    );
    Command::new(name)
}

/// The KEDA trigger on the backlog: its query (for namespace `ns`, as the
/// overlay's replacements write it) and its threshold.
fn autoscaler_query(ns: &str) -> (String, f64) {
    let docs = yaml("deploy/k8s/components/keda/scaledobject.yaml");
    let trigger = docs[0]["spec"]["triggers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| str_of(&t["type"]) == "prometheus")
        .expect("a prometheus trigger")
        .clone();
    let query = str_of(&trigger["metadata"]["query"]);
    assert_eq!(query.matches("namespace=\"NAMESPACE\"").count(), 2, "the overlay replaces two placeholders: {query}");
    let threshold = str_of(&trigger["metadata"]["threshold"]).parse().unwrap();
    (query.replace("NAMESPACE", ns), threshold)
}

/// A Prometheus server on loopback, stopped (and its data deleted) on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(config: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tool("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
        let ready = format!("{}/-/ready", p.url);
        wait::until("prometheus is ready", Duration::from_secs(30), || async {
            reqwest::get(&ready).await.ok().filter(|r| r.status().is_success()).map(drop)
        })
        .await;
        p
    }

    /// The value of an instant query with one result (None: no result).
    async fn value(&self, query: &str) -> Option<f64> {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = r.json().await.ok()?;
        assert_eq!(body["status"], "success", "{query}: {body}");
        let result = body["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{query} has several results: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scrape configuration the Prometheus Operator renders from the
/// PodMonitor for `pods` (name, admin address) of namespace `ns`: the
/// endpoint whose port the pods have, its path, and the `namespace` and
/// `pod` labels it adds to every series.
fn scrape_config(ns: &str, pods: &[(String, std::net::SocketAddr)]) -> String {
    let monitor = &yaml("deploy/k8s/components/monitoring/podmonitor.yaml")[0];
    assert_eq!(str_of(&monitor["kind"]), "PodMonitor");
    // The pods it selects: the worker's template labels must match.
    let worker = yaml("deploy/k8s/base/worker.yaml")
        .into_iter()
        .find(|d| str_of(&d["kind"]) == "Deployment")
        .expect("the worker Deployment");
    let pod = &worker["spec"]["template"]["spec"];
    let label = str_of(&worker["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]).to_owned();
    let selected = monitor["spec"]["selector"]["matchExpressions"].as_sequence().unwrap().iter().any(|e| {
        str_of(&e["key"]) == "app.kubernetes.io/name"
            && str_of(&e["operator"]) == "In"
            && e["values"].as_sequence().unwrap().iter().any(|v| str_of(v) == label)
    });
    assert!(selected, "the PodMonitor does not select the worker pods ({label})");
    let ports: Vec<&str> =
        pod["containers"][0]["ports"].as_sequence().unwrap().iter().map(|p| str_of(&p["name"])).collect();
    let endpoint = monitor["spec"]["podMetricsEndpoints"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| ports.contains(&str_of(&e["port"])))
        .unwrap_or_else(|| panic!("no PodMonitor endpoint names a worker port ({ports:?})"));
    // The worker's admin listener is that port: its probes use it too.
    assert_eq!(str_of(&pod["containers"][0]["readinessProbe"]["httpGet"]["port"]), str_of(&endpoint["port"]));
    let path = str_of(&endpoint["path"]);
    let mut targets = String::new();
    for (name, addr) in pods {
        targets.push_str(&format!(
            "      - targets: [\"{addr}\"]\n        labels: {{namespace: \"{ns}\", pod: \"{name}\"}}\n"
        ));
    }
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: \"{ns}/olincloud\"\n    metrics_path: \"{path}\"\n    static_configs:\n{targets}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_autoscaler_query_rises_under_a_backlog_through_a_real_prometheus() {
    let ns = "olincloud-test";
    let (query, threshold) = autoscaler_query(ns);
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    // `nap` sleeps 200 ms: two workers with one slot each answer 10 calls/s.
    deploy_route(&nats.client().await, &s3.store_args(), "nap", &fixtures::wat("nap.wat"), |_| {}).await;
    let fast_backlog = |c: &mut olin_worker::Config| c.backlog_interval_ms = 250;
    let workers = [
        WorkerBuilder::new(&nats.url(), s3.store_args()).slots(1).config(fast_backlog).start().await,
        WorkerBuilder::new(&nats.url(), s3.store_args()).slots(1).config(fast_backlog).start().await,
    ];
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    gateway.wait_for_route(&http, "nap").await;

    let pods: Vec<(String, std::net::SocketAddr)> =
        workers.iter().enumerate().map(|(i, w)| (format!("worker-{i}"), w.addr)).collect();
    let prometheus = Prometheus::start(&scrape_config(ns, &pods)).await;
    let scraped = format!("count(up{{namespace=\"{ns}\"}} == 1)");
    wait::until("both workers are scraped", Duration::from_secs(30), || async {
        (prometheus.value(&scraped).await == Some(2.0)).then_some(())
    })
    .await;
    let idle = prometheus.value(&query).await;
    assert!(idle.is_some_and(|v| v < threshold), "idle, the query reads {idle:?}");

    // 80 calls at once: 8 s of work for two slots.
    let calls: Vec<_> = (0..80)
        .map(|i| {
            let (http, url) = (http.clone(), gateway.function_url("nap", &format!("/?{i}")));
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let peak = wait::until("the autoscaler's query rises above its threshold", Duration::from_secs(8), || async {
        prometheus.value(&query).await.filter(|v| *v > threshold)
    })
    .await;
    println!("under a backlog of 80 calls the query reads {peak} (threshold {threshold})");
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 200);
    }
    let after = wait::until("the query falls back once the backlog is gone", Duration::from_secs(15), || async {
        prometheus.value(&query).await.filter(|v| *v == 0.0)
    })
    .await;
    assert_eq!(after, 0.0);
}

/// The rules of the PrometheusRule as a plain rule file.
fn rule_file() -> (String, Vec<String>) {
    let rule = &yaml("deploy/k8s/components/monitoring/prometheusrule.yaml")[0];
    assert_eq!(str_of(&rule["kind"]), "PrometheusRule");
    let groups = &rule["spec"]["groups"];
    let alerts = groups
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .map(|r| str_of(&r["alert"]).to_owned())
        .collect();
    let mut file = serde_yaml::Mapping::new();
    file.insert("groups".into(), groups.clone());
    (serde_yaml::to_string(&file).unwrap(), alerts)
}

#[test]
fn the_alert_rules_pass_promtool_and_each_alert_fires_and_stays_quiet() {
    let (rules, alerts) = rule_file();
    assert!(alerts.len() >= 7, "{alerts:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.rules.yaml"), rules).unwrap();
    let tests = "deploy/k8s/components/monitoring/alerts.test.yaml";
    std::fs::copy(repo().join(tests), dir.path().join("alerts.test.yaml")).unwrap();
    for (what, file) in [("check", "alerts.rules.yaml"), ("test", "alerts.test.yaml")] {
        let out = tool("promtool").args([what, "rules", file]).current_dir(dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {what} rules:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every alert has a case where it fires and one where it does not.
    let cases = &yaml(tests)[0]["tests"];
    for alert in &alerts {
        let (mut fires, mut quiet) = (false, false);
        for t in cases.as_sequence().unwrap() {
            for case in t["alert_rule_test"].as_sequence().into_iter().flatten() {
                if str_of(&case["alertname"]) == alert {
                    let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                    fires |= expected > 0;
                    quiet |= expected == 0;
                }
            }
        }
        assert!(fires && quiet, "{alert}: fires tested {fires}, quiet tested {quiet}");
    }
}

/// Olincloud metric names in `text` (`olin_<service>_<name>`).
fn olin_metrics(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("olin_") && w.len() > "olin_".len())
        .map(str::to_owned)
        .collect()
}

#[test]
fn alerts_dashboard_and_autoscaler_read_metrics_the_services_export() {
    let source = |path: &str| std::fs::read_to_string(repo().join(path)).unwrap();
    let exporters = [
        ("olin_gateway_", source("gateway/src/metrics.rs")),
        ("olin_worker_", source("worker/src/health.rs")),
        ("olin_control_", source("control/src/metrics.rs")),
    ];
    let autoscaler = olin_metrics(&source("deploy/k8s/components/keda/scaledobject.yaml"));
    assert!(autoscaler.len() >= 2, "no autoscaler query found: {autoscaler:?}");
    let mut read = autoscaler;
    for path in
        ["deploy/k8s/components/monitoring/prometheusrule.yaml", "deploy/k8s/components/monitoring/dashboard.json"]
    {
        read.extend(olin_metrics(&source(path)));
    }
    assert!(read.len() >= 12, "{read:?}");
    for metric in &read {
        let (prefix, code) = exporters
            .iter()
            .find(|(p, _)| metric.starts_with(p))
            .unwrap_or_else(|| panic!("{metric}: no service exports olin metrics under this prefix"));
        // Registered under the prefix; counters and histograms get suffixes.
        let name = metric.strip_prefix(prefix).unwrap();
        let name = ["_total", "_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(code.contains(&format!("\"{name}\"")), "{metric} is read but not exported");
    }
    // The dashboard is JSON Grafana can load: every panel has a query.
    let dashboard: serde_json::Value =
        serde_json::from_str(&source("deploy/k8s/components/monitoring/dashboard.json")).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(panel["targets"][0]["expr"].as_str().is_some_and(|e| !e.is_empty()), "{}", panel["title"]);
    }
}
