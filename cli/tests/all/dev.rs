//! `olinctl dev --demo`: the whole stack from one command. Every printed
//! `curl` line gives its example's answer, olinctl is logged in to it,
//! Ctrl-C leaves no process behind, and a restart serves the same
//! functions again from the SQLite database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use olin_cli::dev::EXAMPLES;

struct Dev {
    child: Child,
    lines: Vec<String>,
}

impl Dev {
    fn start(data: &std::path::Path, config: &std::path::Path, demo: bool) -> Dev {
        Dev::start_with(data, config, demo, &[])
    }

    fn start_with(data: &std::path::Path, config: &std::path::Path, demo: bool, extra: &[&str]) -> Dev {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_olinctl"));
        cmd.args(["dev", "--gateway", "127.0.0.1:0", "--control", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("OLIN_CONFIG", config)
            .env_remove("OLIN_URL")
            .env_remove("OLIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if demo {
            cmd.arg("--demo");
        }
        cmd.args(extra);
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let started = Instant::now();
        loop {
            let line = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("no banner: {lines:?}"));
            let done = line.starts_with("Press Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "{lines:?}");
        }
        Dev { child, lines }
    }

    fn field(&self, name: &str) -> String {
        let prefix = format!("  {name}:");
        let line =
            self.lines.iter().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{name}: {:?}", self.lines));
        line[prefix.len()..].trim().to_owned()
    }

    /// SIGINT, as Ctrl-C; returns the exit code.
    fn interrupt(mut self) -> i32 {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(started.elapsed() < Duration::from_secs(30), "olinctl dev did not stop on Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// Runs a printed `curl ...` line with the shell until it gives `want`.
fn curl_until(line: &str, want: &str) -> String {
    let started = Instant::now();
    loop {
        let out = Command::new("sh").args(["-c", line]).output().unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.contains(want) {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "`{line}` never gave {want:?}; last: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_demo_serves_every_example_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let config = dir.path().join("config.json");
    let dev = Dev::start(&data, &config, true);

    let tries: Vec<String> =
        dev.lines.iter().filter_map(|l| l.trim_start().strip_prefix("try:").map(|c| c.trim().to_owned())).collect();
    assert_eq!(tries.len(), EXAMPLES.len(), "{:?}", dev.lines);
    for (line, ex) in tries.iter().zip(EXAMPLES) {
        assert!(line.starts_with("curl -s"), "{line}");
        assert!(line.contains(&format!("/f/{}", ex.name)), "{line}");
        curl_until(line, ex.expect);
    }

    // olinctl is logged in to the dev stack: the examples are listed.
    let out = Command::new(env!("CARGO_BIN_EXE_olinctl"))
        .args(["fn", "list", "-o", "json"])
        .env("OLIN_CONFIG", &config)
        .env_remove("OLIN_URL")
        .env_remove("OLIN_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let fns: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = fns.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    let mut want: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
    want.sort_unstable();
    assert_eq!(names, want);

    // Ctrl-C stops everything: no process mentions the data directory.
    let needle = data.to_string_lossy().into_owned();
    assert!(!processes_mentioning(&needle).is_empty(), "nats-server runs under the data directory");
    assert_eq!(dev.interrupt(), 0);
    assert!(processes_mentioning(&needle).is_empty(), "left behind: {:?}", processes_mentioning(&needle));

    // A restart serves the deployed functions again (state in SQLite, routes republished).
    let dev = Dev::start(&data, &config, false);
    let gateway = dev.field("gateway").trim_end_matches("/f/<function>/").to_owned();
    curl_until(&format!("curl -s '{gateway}/f/hello/'"), "Hello from Olincloud!");
    assert_eq!(dev.interrupt(), 0);
    assert!(processes_mentioning(&needle).is_empty());
}

#[test]
fn dev_cluster_runs_on_three_nats_servers_and_survives_losing_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let config = dir.path().join("config.json");
    let dev = Dev::start_with(&data, &config, true, &["--cluster"]);
    assert!(dev.field("nats").contains("three nodes, streams R3"), "{:?}", dev.lines);
    let hello = dev.lines.iter().find_map(|l| l.trim_start().strip_prefix("try:").filter(|c| c.contains("/f/hello")));
    let hello = hello.unwrap_or_else(|| panic!("{:?}", dev.lines)).trim().to_owned();
    curl_until(&hello, "Hello from Olincloud!");

    // Three servers run under the data directory; one is killed, and calls
    // are answered again once NATS has elected new leaders.
    let needle = data.to_string_lossy().into_owned();
    let servers: Vec<String> =
        processes_mentioning(&needle).into_iter().filter(|c| c.contains("nats-server")).collect();
    assert_eq!(servers.len(), 3, "{servers:?}");
    let pid = pid_of_command_containing(&format!("{needle}/nats/n0"));
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    let started = Instant::now();
    loop {
        let out = Command::new("sh").args(["-c", &hello]).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("Hello from Olincloud!") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no answer 30 s after losing a NATS server");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("answered again {:?} after a NATS server was killed", started.elapsed());
    assert_eq!(dev.interrupt(), 0);
    assert!(processes_mentioning(&needle).is_empty(), "left behind: {:?}", processes_mentioning(&needle));
}

/// The pid of the process whose command line contains `needle`.
fn pid_of_command_containing(needle: &str) -> u32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else { continue };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle)
        {
            return pid;
        }
    }
    panic!("no process mentions {needle}");
}
