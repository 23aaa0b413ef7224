//! The Kubernetes manifests cannot drift from the code: every environment
//! variable a manifest gives an Olincloud container is a flag twin that
//! container's binary accepts, every key of the shared ConfigMap and of the
//! generated Secrets is accepted by some binary (the metrics the
//! autoscaler and the alerts read are checked in `monitoring`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use serde_yaml::Value;

/// Variables read by every binary besides its flags (the log filter).
const ALWAYS: &[&str] = &["RUST_LOG"];

fn env_names(cmd: &clap::Command, into: &mut BTreeSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(env) = arg.get_env() {
            into.insert(env.to_string_lossy().into_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        env_names(sub, into);
    }
}

/// Accepted variables per image name.
fn accepted() -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (image, cmd) in [
        ("olincloud/worker", olin_worker::Config::command()),
        ("olincloud/gateway", olin_gateway::Config::command()),
        ("olincloud/control", olin_control::Config::command()),
        ("olincloud/migrations", olin_migrations::cli::Cli::command()),
    ] {
        let mut names: BTreeSet<String> = ALWAYS.iter().map(|s| (*s).to_owned()).collect();
        env_names(&cmd, &mut names);
        out.insert(image, names);
    }
    out
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The YAML documents of one file (empty ones left out).
pub(crate) fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn documents() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s"), &mut files);
    assert!(files.len() >= 8, "manifests not found: {files:?}");
    files.into_iter().flat_map(|f| yaml_documents(&f).into_iter().map(move |v| (f.clone(), v))).collect()
}

use serde::Deserialize as _;

/// The object of `kind` named `name` (the base's: overlays patch them).
fn object<'a>(docs: &'a [(PathBuf, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| str_of(&d["kind"]) == kind && str_of(&d["metadata"]["name"]) == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the manifests"))
}

pub(crate) fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[test]
fn every_env_name_in_the_manifests_is_a_flag_twin() {
    let accepted = accepted();
    let all: BTreeSet<&String> = accepted.values().flatten().collect();
    let mut config_keys: BTreeSet<String> = BTreeSet::new();
    let mut config_readers: BTreeSet<String> = BTreeSet::new();
    let mut checked = 0;
    let mut generated = Vec::new();
    // Secret keys the NATS servers read (their users' passwords).
    let mut read_by_others: BTreeSet<String> = BTreeSet::new();
    for (file, doc) in documents() {
        let kind = str_of(&doc["kind"]);
        if kind == "ConfigMap" && str_of(&doc["metadata"]["name"]) == "olincloud-config" {
            for key in doc["data"].as_mapping().unwrap().keys() {
                config_keys.insert(str_of(key).to_owned());
            }
        }
        if kind == "Kustomization" {
            for generator in ["configMapGenerator", "secretGenerator"] {
                for g in doc[generator].as_sequence().into_iter().flatten() {
                    for lit in g["literals"].as_sequence().into_iter().flatten() {
                        let key = str_of(lit).split_once('=').unwrap().0.to_owned();
                        generated.push((file.clone(), generator, key));
                    }
                }
            }
        }
        let pod = match kind {
            "Deployment" | "StatefulSet" | "Job" => &doc["spec"]["template"]["spec"],
            _ => continue,
        };
        for c in pod["containers"].as_sequence().unwrap() {
            let image = str_of(&c["image"]);
            let Some(names) = accepted.get(image) else {
                assert!(!image.starts_with("olincloud/"), "{}: unknown Olincloud image {image}", file.display());
                for e in c["env"].as_sequence().into_iter().flatten() {
                    read_by_others.insert(str_of(&e["valueFrom"]["secretKeyRef"]["key"]).to_owned());
                }
                continue;
            };
            for e in c["env"].as_sequence().into_iter().flatten() {
                let name = str_of(&e["name"]);
                assert!(names.contains(name), "{}: {image} is given {name}, which it does not accept", file.display());
                checked += 1;
            }
            for from in c["envFrom"].as_sequence().into_iter().flatten() {
                assert_eq!(str_of(&from["configMapRef"]["name"]), "olincloud-config", "{}", file.display());
                config_readers.insert(image.to_owned());
            }
        }
    }
    for (file, generator, key) in generated {
        assert!(
            all.contains(&key) || read_by_others.contains(&key),
            "{}: {generator} key {key} is no binary's flag twin",
            file.display()
        );
        checked += 1;
    }
    assert!(!config_keys.is_empty(), "the shared ConfigMap was not found");
    for key in &config_keys {
        let read_by: Vec<&String> = config_readers.iter().filter(|i| accepted[i.as_str()].contains(key)).collect();
        assert!(!read_by.is_empty(), "olincloud-config key {key} is accepted by none of {config_readers:?}");
        checked += 1;
    }
    assert!(checked > 30, "only {checked} names checked");
}

/// The NATS servers' users are the rendering of `olin_proto::access`, and
/// each Olincloud container connects as its own role with that role's
/// password. `OLIN_BLESS=1` rewrites the rendered block.
#[test]
fn nats_users_are_the_roles_of_the_code() {
    use olin_proto::access::{Password, Role, authorization_conf};
    let users: Vec<_> = [Role::Gateway, Role::Worker, Role::Control, Role::Operator]
        .into_iter()
        .map(|r| (r, Password::Env(r.password_env())))
        .collect();
    let rendered = authorization_conf(&users);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s/base/nats.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("  auth.conf: |\n").expect("nats.yaml has auth.conf") + "  auth.conf: |\n".len();
    let end = start + text[start..].find("\n---\n").expect("auth.conf ends the ConfigMap") + 1;
    let indented: String =
        rendered.lines().map(|l| if l.is_empty() { "\n".to_owned() } else { format!("    {l}\n") }).collect();
    if std::env::var_os("OLIN_BLESS").is_some() {
        std::fs::write(&path, format!("{}{indented}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    assert_eq!(
        &text[start..end],
        indented,
        "nats.yaml's auth.conf is stale: run OLIN_BLESS=1 cargo test -p olin-test-support --test all k8s_env"
    );

    let roles = [
        ("olincloud/gateway", Role::Gateway),
        ("olincloud/worker", Role::Worker),
        ("olincloud/control", Role::Control),
    ];
    let mut seen = 0;
    for (file, doc) in documents() {
        if str_of(&doc["kind"]) != "Deployment" {
            continue;
        }
        for c in doc["spec"]["template"]["spec"]["containers"].as_sequence().unwrap() {
            let Some((_, role)) = roles.iter().find(|(image, _)| str_of(&c["image"]) == *image) else { continue };
            let env = c["env"].as_sequence().unwrap();
            let get = |name: &str| {
                env.iter()
                    .find(|e| str_of(&e["name"]) == name)
                    .unwrap_or_else(|| panic!("{}: no {name}", file.display()))
            };
            assert_eq!(str_of(&get("NATS_USER")["value"]), role.user(), "{}", file.display());
            assert_eq!(
                str_of(&get("NATS_PASSWORD")["valueFrom"]["secretKeyRef"]["key"]),
                role.password_env(),
                "{}",
                file.display()
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 3, "gateway, worker and control each connect as themselves");
}

/// Bytes of a Kubernetes or NATS quantity (`20Gi`, `512Mi`, `18G`).
fn quantity(q: &str) -> u64 {
    let q = q.trim().trim_matches('"');
    let (digits, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = digits.parse().unwrap_or_else(|_| panic!("not a quantity: {q}"));
    n * match unit {
        "" => 1,
        "Ki" | "K" | "k" => 1 << 10,
        "Mi" | "M" => 1 << 20,
        "Gi" | "G" => 1 << 30,
        "Ti" | "T" => 1 << 40,
        other => panic!("unit {other} of {q}"),
    }
}

/// Every `nats.conf` of the manifests (the base's and the overlays'
/// replacements).
fn nats_confs() -> Vec<(PathBuf, String)> {
    let mut confs = Vec::new();
    for (path, doc) in documents() {
        if str_of(&doc["kind"]) == "ConfigMap" && str_of(&doc["metadata"]["name"]) == "nats-config" {
            confs.push((path.clone(), str_of(&doc["data"]["nats.conf"]).to_owned()));
        }
        if str_of(&doc["kind"]) == "Kustomization" {
            for patch in doc["patches"].as_sequence().into_iter().flatten() {
                let Ok(ops) = serde_yaml::from_str::<Value>(str_of(&patch["patch"])) else { continue };
                for op in ops.as_sequence().into_iter().flatten() {
                    if str_of(&op["path"]) == "/data/nats.conf" {
                        confs.push((path.clone(), str_of(&op["value"]).to_owned()));
                    }
                }
            }
        }
    }
    confs
}

/// The NATS servers survive what a cluster does to them: one per node
/// (required, or one node's loss takes the quorum), lame-duck mode before
/// SIGTERM (clients and leaders move first) within the grace period, a
/// startup probe that lets a long JetStream recovery finish before
/// liveness counts, and a store limit below the volume.
#[test]
fn nats_servers_spread_step_down_and_stay_below_their_volume() {
    let docs = documents();
    let nats = object(&docs, "StatefulSet", "nats");
    let pod = &nats["spec"]["template"]["spec"];
    let required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_sequence()
        .expect("required pod anti-affinity");
    assert!(
        required.iter().any(|t| str_of(&t["topologyKey"]) == "kubernetes.io/hostname"
            && t["labelSelector"]["matchLabels"] == pod_labels(nats)),
        "NATS servers may share a node: {required:?}"
    );
    let container = &pod["containers"][0];
    let pre_stop = container["lifecycle"]["preStop"]["exec"]["command"].as_sequence().expect("a preStop command");
    let pre_stop: Vec<&str> = pre_stop.iter().map(str_of).collect();
    assert!(pre_stop.iter().any(|a| a.starts_with("ldm=")), "preStop does not enter lame-duck mode: {pre_stop:?}");
    let pid_file = pre_stop.iter().find_map(|a| a.strip_prefix("ldm=")).unwrap();
    assert!(container["startupProbe"]["httpGet"].is_mapping(), "no startup probe");
    let startup = &container["startupProbe"];
    let patience = startup["periodSeconds"].as_u64().unwrap() * startup["failureThreshold"].as_u64().unwrap();
    assert!(patience >= 300, "a JetStream recovery gets only {patience} s before liveness counts");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let volume = quantity(str_of(&nats["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]));

    let confs = nats_confs();
    assert!(confs.len() >= 2, "the base's and the dev overlay's nats.conf: {confs:?}");
    for (path, conf) in confs {
        let setting = |key: &str| {
            conf.lines().find_map(|l| l.trim().strip_prefix(key)?.trim_start().strip_prefix(':')).map(str::trim)
        };
        let store =
            quantity(setting("max_file_store").unwrap_or_else(|| panic!("{}: no max_file_store", path.display())));
        assert!(
            store * 10 <= volume * 9,
            "{}: max_file_store {store} leaves under 10% of the volume {volume}",
            path.display()
        );
        assert_eq!(
            setting("pid_file"),
            Some(pid_file),
            "{}: lame duck is signalled through another pid file",
            path.display()
        );
        let secs = |key: &str| {
            setting(key)
                .and_then(|v| v.strip_suffix('s'))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{}: {key} missing (in seconds)", path.display()))
        };
        let lame_duck = secs("lame_duck_duration") + secs("lame_duck_grace_period");
        assert!(
            lame_duck + 10 <= grace,
            "{}: lame duck takes {lame_duck} s of a {grace} s grace period",
            path.display()
        );
    }
}

fn pod_labels(workload: &Value) -> Value {
    workload["spec"]["template"]["metadata"]["labels"].clone()
}

/// Every Deployment a Service sends traffic to (not the metrics-only and
/// headless ones) keeps serving for a moment after it is told to stop,
/// while its endpoint is being removed: no refused connections in
/// rollouts.
#[test]
fn every_deployment_with_traffic_has_a_pre_stop() {
    let docs = documents();
    let services: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| str_of(&d["kind"]) == "Service")
        .filter(|d| str_of(&d["spec"]["clusterIP"]) != "None" && !str_of(&d["metadata"]["name"]).ends_with("-metrics"))
        .collect();
    let mut checked = 0;
    for (path, d) in &docs {
        if str_of(&d["kind"]) != "Deployment" {
            continue;
        }
        let labels = pod_labels(d);
        let served = services.iter().any(|s| {
            let selector = s["spec"]["selector"].as_mapping().unwrap();
            selector.iter().all(|(k, v)| labels[k] == *v)
        });
        if !served {
            continue;
        }
        let pre_stop = &d["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"];
        assert!(
            pre_stop["sleep"]["seconds"].as_u64().is_some_and(|s| s >= 3) || pre_stop["exec"].is_mapping(),
            "{} ({}): no preStop while its endpoint goes",
            str_of(&d["metadata"]["name"]),
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 2, "gateway and control: {checked} checked");
}

/// The worker's container limit is derived from its own settings as the
/// manifests give them: the calls' memory budget (which admission holds
/// running calls to) covers every slot running a default call and the
/// largest call allowed, and the limit covers that budget, the compiled
/// module cache and the process. No mix of tenants gets the pod
/// OOM-killed.
#[test]
fn the_worker_memory_limit_covers_its_admission_budget() {
    let docs = documents();
    let worker = object(&docs, "Deployment", "worker");
    let config = object(&docs, "ConfigMap", "olincloud-config");
    let container = &worker["spec"]["template"]["spec"]["containers"][0];
    // The worker's settings as it parses them from the manifests' values.
    let mut values: Vec<(String, String)> = config["data"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (str_of(k).to_owned(), str_of(v).to_owned()))
        .collect();
    for e in container["env"].as_sequence().unwrap() {
        if let Some(v) = e["value"].as_str() {
            values.push((str_of(&e["name"]).to_owned(), v.to_owned()));
        }
    }
    let cmd = olin_worker::Config::command();
    let mut args = vec!["olin-worker".to_owned()];
    for (name, value) in &values {
        if let Some(arg) = cmd.get_arguments().find(|a| a.get_env().is_some_and(|e| e.to_string_lossy() == *name)) {
            args.push(format!("--{}={value}", arg.get_long().unwrap()));
        }
    }
    let cfg = <olin_worker::Config as clap::Parser>::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("the worker does not parse the manifests' settings {args:?}: {e}"));
    assert!(cfg.memory_budget_mib.is_some(), "WORKER_MEMORY_BUDGET_MIB is set, not guessed from the cgroup");
    let budget = cfg.memory_budget();
    let default_call = cfg.defaults().reservation_bytes();
    let largest_call = cfg.maxima().reservation_bytes();
    let slots = cfg.concurrency() as u64;
    assert!(
        budget >= slots * default_call,
        "{slots} slots of default calls ({default_call} B each) need {} B; the budget is {budget}",
        slots * default_call
    );
    assert!(budget >= largest_call, "the largest call allowed ({largest_call} B) never fits the budget {budget}");
    let needed = budget + (cfg.cache_memory_mib << 20) + olin_worker::admission::PROCESS_OVERHEAD;
    let limit = quantity(str_of(&container["resources"]["limits"]["memory"]));
    assert!(limit >= needed, "the container's limit {limit} B is below budget + cache + process = {needed} B");
}

/// The tests run the nats-server release the manifests deploy
/// (`scripts/services.sh` installs it for `scripts/test`).
#[test]
fn the_tests_run_the_nats_release_the_manifests_deploy() {
    let services =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh")).unwrap();
    let tested = services.lines().find_map(|l| l.strip_prefix("OLIN_NATS_VERSION=")).expect("OLIN_NATS_VERSION");
    let mut images = 0;
    for (path, doc) in documents() {
        for c in doc["spec"]["template"]["spec"]["containers"].as_sequence().into_iter().flatten() {
            if let Some(tag) = str_of(&c["image"]).strip_prefix("nats:") {
                let version = tag.split('-').next().unwrap();
                assert_eq!(version, tested, "{} deploys nats {version}; the tests run {tested}", path.display());
                images += 1;
            }
        }
    }
    assert!(images >= 1, "no nats image found");
}

/// The panel's try-it: control calls the gateway at `CONTROL_GATEWAY_URL`.
/// Where that is the gateway's Service inside the cluster (the dev
/// overlay), control's egress policy lets it reach the gateway's pods on
/// the port the Service targets; where it is a public host, on 443.
#[test]
fn control_may_reach_the_gateway_it_is_configured_with() {
    let docs = documents();
    let policy = object(&docs, "NetworkPolicy", "control");
    let control = object(&docs, "Deployment", "control");
    let gateway = object(&docs, "Deployment", "gateway");
    let service = object(&docs, "Service", "gateway");
    let target = str_of(&service["spec"]["ports"][0]["targetPort"]);
    let pod_port = gateway["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| str_of(&p["name"]) == target)
        .and_then(|p| p["containerPort"].as_u64())
        .expect("the gateway Service's target port");
    let mut urls = 0;
    for (path, doc) in &docs {
        let literals = doc["configMapGenerator"].as_sequence().into_iter().flatten().flat_map(|g| {
            g["literals"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|l| str_of(l).strip_prefix("CONTROL_GATEWAY_URL="))
        });
        let data = doc["data"]["CONTROL_GATEWAY_URL"].as_str();
        for url in literals.chain(data) {
            let host = url.split("://").nth(1).unwrap().split(['/', ':']).next().unwrap();
            let (labels, port) = if host.starts_with("gateway.") && host.ends_with(".svc") {
                (pod_labels(gateway), pod_port)
            } else {
                assert!(url.starts_with("https://"), "{}: {url} is neither the Service nor https", path.display());
                (serde_yaml::from_str("{app.kubernetes.io/name: outside}").unwrap(), 443)
            };
            assert!(
                allows(&[policy], "Egress", &pod_labels(control), &labels, port),
                "{}: control cannot reach {url}",
                path.display()
            );
            urls += 1;
        }
    }
    assert!(urls >= 2, "CONTROL_GATEWAY_URL of the base and the overlays: {urls}");
}

/// Whether a label selector (`matchLabels` and `In` expressions) selects
/// pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_labels = selector["matchLabels"].as_mapping().is_none_or(|m| m.iter().all(|(k, v)| labels[k] == *v));
    let by_expressions = selector["matchExpressions"].as_sequence().into_iter().flatten().all(|e| {
        assert_eq!(str_of(&e["operator"]), "In", "only In expressions are understood here");
        e["values"].as_sequence().unwrap().iter().any(|v| labels[&e["key"]] == *v)
    });
    by_labels && by_expressions
}

/// Whether a rule's peers (`to` or `from`; none: everyone) include pods
/// labelled `labels` of the same namespace.
fn peers_include(peers: &Value, labels: &Value) -> bool {
    peers.as_sequence().is_none_or(|peers| {
        peers
            .iter()
            .any(|p| p["namespaceSelector"].is_null() && p["ipBlock"].is_null() && selects(&p["podSelector"], labels))
    })
}

fn rule_has_port(rule: &Value, port: u64) -> bool {
    rule["ports"].as_sequence().is_none_or(|ports| ports.iter().any(|p| p["port"].as_u64() == Some(port)))
}

/// Whether the policies let pods labelled `pod` open (`Egress`) or accept
/// (`Ingress`) connections with pods labelled `peer` on `port`: none of the
/// policies selecting `pod` restricts that direction, or one of them has a
/// rule that allows it. (A rule's peers of another namespace or an IP block
/// never include pods here.)
fn allows(policies: &[&Value], kind: &str, pod: &Value, peer: &Value, port: u64) -> bool {
    let (rules, peers) = if kind == "Egress" { ("egress", "to") } else { ("ingress", "from") };
    let selecting: Vec<&&Value> = policies.iter().filter(|p| selects(&p["spec"]["podSelector"], pod)).collect();
    let restricted =
        selecting.iter().any(|p| p["spec"]["policyTypes"].as_sequence().unwrap().iter().any(|t| str_of(t) == kind));
    !restricted
        || selecting.iter().any(|p| {
            p["spec"][rules]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|r| peers_include(&r[peers], peer) && rule_has_port(r, port))
        })
}

/// Whether pods `from` may open connections to pods `to` on `port`: out of
/// the one, into the other.
fn policies_allow(policies: &[&Value], from: &Value, to: &Value, port: u64) -> bool {
    allows(policies, "Egress", from, to, port) && allows(policies, "Ingress", to, from, port)
}

/// The dev overlay runs as shipped: every address its workloads are given
/// (the database, the module store, NATS, the gateway for the panel's
/// try-it) is a Service of the overlay that selects a workload of the
/// overlay listening on the Service's target port, and the overlay's
/// NetworkPolicies let the workload that uses it through, both ways.
#[test]
fn the_dev_overlay_holds_every_service_it_uses_and_lets_its_pods_reach_them() {
    let dev: Vec<(PathBuf, Value)> = documents()
        .into_iter()
        .filter(|(p, _)| {
            let p = p.to_string_lossy();
            p.contains("/base/") || p.contains("/overlays/dev/") || p.contains("/components/cpu-autoscaling/")
        })
        .collect();
    let kustomization = dev
        .iter()
        .map(|(_, d)| d)
        .find(|d| str_of(&d["kind"]) == "Kustomization" && str_of(&d["namespace"]) == "olincloud-dev")
        .expect("the dev overlay");
    // Every setting's value: the base ConfigMap, then the overlay's literals.
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut config_keys = BTreeSet::new();
    for (k, v) in object(&dev, "ConfigMap", "olincloud-config")["data"].as_mapping().unwrap() {
        values.insert(str_of(k).to_owned(), str_of(v).to_owned());
        config_keys.insert(str_of(k).to_owned());
    }
    for generator in ["configMapGenerator", "secretGenerator"] {
        for g in kustomization[generator].as_sequence().into_iter().flatten() {
            for lit in g["literals"].as_sequence().into_iter().flatten() {
                let (k, v) = str_of(lit).split_once('=').unwrap();
                values.insert(k.to_owned(), v.to_owned());
                if str_of(&g["name"]) == "olincloud-config" {
                    config_keys.insert(k.to_owned());
                }
            }
        }
    }
    let policies: Vec<&Value> = dev.iter().map(|(_, d)| d).filter(|d| str_of(&d["kind"]) == "NetworkPolicy").collect();
    let workloads: Vec<&Value> = dev
        .iter()
        .map(|(_, d)| d)
        .filter(|d| matches!(str_of(&d["kind"]), "Deployment" | "StatefulSet" | "Job"))
        .collect();
    let accepted = accepted();
    let mut checked = BTreeSet::new();
    for w in &workloads {
        let container = &w["spec"]["template"]["spec"]["containers"][0];
        // The settings it reads: its env references, and the whole ConfigMap.
        let mut reads: BTreeSet<String> = container["env"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|e| [&e["valueFrom"]["secretKeyRef"]["key"], &e["valueFrom"]["configMapKeyRef"]["key"]])
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        if container["envFrom"].as_sequence().is_some_and(|f| !f.is_empty()) {
            // The ConfigMap's keys its binary takes (all of them, for others).
            let takes = accepted.get(str_of(&container["image"]));
            reads.extend(config_keys.iter().filter(|k| takes.is_none_or(|t| t.contains(*k))).cloned());
        }
        for key in ["DATABASE_URL", "S3_ENDPOINT", "NATS_URL", "CONTROL_GATEWAY_URL"] {
            if !reads.contains(key) {
                continue;
            }
            let url = &values[key];
            let (scheme, rest) = url.split_once("://").unwrap();
            let authority = rest.split('/').next().unwrap().rsplit('@').next().unwrap();
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, p.parse::<u64>().unwrap()),
                None => (
                    authority,
                    match scheme {
                        "https" => 443,
                        "postgres" => 5432,
                        "tls" | "nats" => 4222,
                        _ => 80,
                    },
                ),
            };
            let name = host.split('.').next().unwrap();
            assert!(
                host == name
                    || host.ends_with(".olincloud-dev.svc")
                    || host.ends_with(".olincloud-dev.svc.cluster.local"),
                "{key}={url} points outside the dev overlay"
            );
            let service = object(&dev, "Service", name);
            let sp = service["spec"]["ports"].as_sequence().unwrap().iter().find(|p| p["port"].as_u64() == Some(port));
            let sp = sp.unwrap_or_else(|| panic!("{key}: Service {name} has no port {port}"));
            let target = workloads
                .iter()
                .find(|t| {
                    let labels = pod_labels(t);
                    service["spec"]["selector"].as_mapping().unwrap().iter().all(|(k, v)| labels[k] == *v)
                })
                .unwrap_or_else(|| panic!("{key}: Service {name} selects no workload of the overlay"));
            let target_port = target["spec"]["template"]["spec"]["containers"][0]["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|p| p["name"] == sp["targetPort"] || p["containerPort"] == sp["targetPort"])
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{key}: Service {name} targets a port its pods do not have"));
            let user = str_of(&w["metadata"]["name"]);
            assert!(
                policies_allow(&policies, &pod_labels(w), &pod_labels(target), target_port),
                "{user} cannot reach {name}:{target_port} ({key}={url}) under the dev overlay's policies"
            );
            checked.insert(format!("{user} -> {name}:{target_port}"));
        }
    }
    for needed in [
        "control -> postgres:5432",
        "olincloud-migrations -> postgres:5432",
        "worker -> minio:9000",
        "control -> minio:9000",
        "minio-bucket -> minio:9000",
        "control -> gateway:8080",
        "worker -> nats:4222",
    ] {
        assert!(checked.contains(needed), "{needed} not checked: {checked:?}");
    }
}

/// The Ingress example: functions and control never share a host, every
/// rule's host has TLS, backends are Services with the named port, and the
/// gateway's host routing domain is the wildcard the Ingress serves.
#[test]
fn the_ingresses_keep_functions_and_control_on_their_own_tls_hosts() {
    let docs = documents();
    let mut hosts: BTreeMap<String, String> = BTreeMap::new();
    for name in ["gateway", "control"] {
        let ingress = object(&docs, "Ingress", name);
        let tls: BTreeSet<&str> = ingress["spec"]["tls"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|t| t["hosts"].as_sequence().unwrap())
            .map(str_of)
            .collect();
        for rule in ingress["spec"]["rules"].as_sequence().unwrap() {
            let host = str_of(&rule["host"]);
            assert!(tls.contains(host), "{name}: {host} has no TLS");
            for path in rule["http"]["paths"].as_sequence().unwrap() {
                let backend = &path["backend"]["service"];
                assert_eq!(str_of(&backend["name"]), name, "{host}");
                let service = object(&docs, "Service", name);
                let port = str_of(&backend["port"]["name"]);
                assert!(
                    service["spec"]["ports"].as_sequence().unwrap().iter().any(|p| str_of(&p["name"]) == port),
                    "{host}: Service {name} has no port {port}"
                );
            }
            if let Some(other) = hosts.insert(host.to_owned(), name.to_owned()) {
                assert_eq!(
                    other, name,
                    "{host} serves both {other} and {name}: one origin for functions and the panel"
                );
            }
        }
    }
    let production = docs
        .iter()
        .map(|(_, d)| d)
        .find(|d| str_of(&d["kind"]) == "Kustomization" && str_of(&d["namespace"]) == "olincloud")
        .expect("the production overlay");
    let domain = production["configMapGenerator"][0]["literals"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|l| str_of(l).strip_prefix("GATEWAY_BASE_DOMAIN="))
        .expect("GATEWAY_BASE_DOMAIN in the production overlay");
    assert_eq!(hosts.get(&format!("*.{domain}")).map(String::as_str), Some("gateway"), "{hosts:?}");
    assert_eq!(hosts.get(domain).map(String::as_str), Some("gateway"), "{hosts:?}");
}
