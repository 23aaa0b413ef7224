//! The Kubernetes manifests cannot drift from the code: every environment
//! variable a manifest gives an Olincloud container is a flag twin that
//! container's binary accepts, every key of the shared ConfigMap and of the
//! generated Secrets is accepted by some binary, and the autoscaler's query
//! reads metrics the workers export.

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

fn documents() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s"), &mut files);
    assert!(files.len() >= 8, "manifests not found: {files:?}");
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if !v.is_null() {
                docs.push((f.clone(), v));
            }
        }
    }
    docs
}

use serde::Deserialize as _;

fn str_of(v: &Value) -> &str {
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

#[test]
fn the_autoscaler_reads_metrics_the_workers_export() {
    let health =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/src/health.rs")).unwrap();
    let mut queries = 0;
    for (_, doc) in documents() {
        if str_of(&doc["kind"]) != "ScaledObject" {
            continue;
        }
        for t in doc["spec"]["triggers"].as_sequence().unwrap() {
            let query = str_of(&t["metadata"]["query"]);
            for metric in
                query.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("olin_"))
            {
                // Registered under the prefix, counters without `_total`.
                let name = metric.strip_prefix("olin_worker_").unwrap_or(metric);
                let name = name.strip_suffix("_total").unwrap_or(name);
                assert!(
                    health.contains("\"olin_worker\"") && health.contains(&format!("\"{name}\"")),
                    "the autoscaler reads {metric}, which workers do not export"
                );
                queries += 1;
            }
        }
    }
    assert!(queries >= 2, "no autoscaler query found");
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
