//! `olinctl executions`, `logs` and `usage`: what a function's calls did.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::{check_name, known_function, on_not_found};
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Table, cell};
use crate::progress::human_bytes;
use crate::session::Global;

/// Time window flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Window {
    /// From this time: RFC 3339, or a duration ago (15m, 1h, 7d).
    #[arg(long, env = "OLIN_SINCE")]
    pub since: Option<String>,
    /// Until this time: RFC 3339, or a duration ago.
    #[arg(long, env = "OLIN_UNTIL")]
    pub until: Option<String>,
}

impl Window {
    fn query(&self) -> Result<Vec<(&'static str, String)>> {
        let now = Utc::now();
        let mut q = Vec::new();
        for (key, v) in [("since", &self.since), ("until", &self.until)] {
            if let Some(s) = v {
                let t = crate::parse::since(s, now).map_err(|e| {
                    CliError::usage(format!("--{key}: {e}"), "e.g. --since 1h or --since 2026-11-30T09:00:00Z")
                })?;
                q.push((key, t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
            }
        }
        Ok(q)
    }
}

/// `olinctl executions`: records of recent calls, newest first.
#[derive(Debug, Clone, clap::Args)]
pub struct Executions {
    /// The function (or pass --id).
    #[arg(required_unless_present = "id")]
    pub function: Option<String>,
    /// Show one call by its invocation id (the `Olin-Invocation-Id` header).
    #[arg(long, env = "OLIN_EXECUTION_ID", conflicts_with = "function")]
    pub id: Option<String>,
    /// Only calls with this outcome (OK, GUEST_ERROR, TIMEOUT, ...).
    #[arg(long, env = "OLIN_OUTCOME")]
    pub outcome: Option<String>,
    /// Time window.
    #[command(flatten)]
    pub window: Window,
    /// Most calls to list.
    #[arg(long, env = "OLIN_LIMIT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
}

fn wall(e: &Value) -> String {
    let us = e["usage"]["wall_us"].as_u64().unwrap_or(0);
    if us >= 10_000 { format!("{} ms", us / 1000) } else { format!("{:.2} ms", us as f64 / 1000.0) }
}

fn execution_row(e: &Value) -> Vec<String> {
    vec![
        cell(&e["invocation_id"]),
        output::time(&e["started_at"]),
        cell(&e["outcome"]),
        cell(&e["status"]),
        wall(e),
        cell(&e["usage"]["fuel"]),
        format!("{} {}", cell(&e["method"]), cell(&e["path"])),
    ]
}

async fn list(client: &Client, name: &str, query: Vec<(&str, String)>) -> Result<Vec<Value>> {
    let page = client.get(&format!("/functions/{name}/executions"), &query).await.map_err(known_function(name))?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

impl Executions {
    /// Lists calls, or shows one.
    ///
    /// # Errors
    /// Unknown function or invocation (exit 2), bad flags (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        if let Some(id) = &self.id {
            let e = client.get(&format!("/executions/{id}"), &[]).await.map_err(on_not_found(
                format!("no recorded call {id}"),
                "records appear a moment after the call".to_owned(),
            ))?;
            let u = &e["usage"];
            output::object(
                g.output,
                &e,
                &[
                    ("invocation", cell(&e["invocation_id"])),
                    ("function", cell(&e["function"])),
                    ("request", format!("{} {}", cell(&e["method"]), cell(&e["path"]))),
                    ("outcome", cell(&e["outcome"])),
                    ("status", cell(&e["status"])),
                    ("exit code", cell(&e["exit_code"])),
                    ("error", cell(&e["error"])),
                    ("started", cell(&e["started_at"])),
                    ("wall time", wall(&e)),
                    ("fuel", cell(&u["fuel"])),
                    ("peak memory", human_bytes(u["peak_memory_bytes"].as_u64().unwrap_or(0))),
                    ("bytes in/out", format!("{} / {}", cell(&u["bytes_in"]), cell(&u["bytes_out"]))),
                    ("worker", cell(&e["worker_id"])),
                    ("headers", headers(&e["headers"])),
                    ("stderr", format!("\n{}", cell(&e["stderr_tail"]))),
                ],
            );
            return Ok(());
        }
        let name = self.function.unwrap_or_default();
        check_name(&name)?;
        let mut q = self.window.query()?;
        q.push(("limit", self.limit.to_string()));
        if let Some(o) = &self.outcome {
            q.push(("outcome", o.to_ascii_uppercase()));
        }
        let items = list(&client, &name, q).await?;
        let mut t = Table::new(&["invocation", "started", "outcome", "status", "wall", "fuel", "request"]);
        for e in &items {
            t.row(execution_row(e));
        }
        output::listing(g.output, &Value::Array(items), t, &format!("No recorded calls of {name} (yet)."));
        Ok(())
    }
}

/// The response headers of a call, one `Name: value` per line.
fn headers(list: &Value) -> String {
    let lines: Vec<String> = list
        .as_array()
        .map(|a| a.iter().map(|h| format!("\n  {}: {}", cell(&h["name"]), cell(&h["value"]))).collect())
        .unwrap_or_default();
    if lines.is_empty() { "none".to_owned() } else { lines.concat() }
}

/// `olinctl logs`: the outcomes and stderr tails of recent calls.
#[derive(Debug, Clone, clap::Args)]
pub struct Logs {
    /// The function.
    pub function: String,
    /// Keep printing new calls as they are recorded (Ctrl-C stops).
    #[arg(long, short = 'f', env = "OLIN_FOLLOW")]
    pub follow: bool,
    /// How many recent calls to start with.
    #[arg(long, short = 'n', env = "OLIN_LINES", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub lines: u32,
    /// Only calls since (RFC 3339 or a duration ago).
    #[arg(long, env = "OLIN_SINCE")]
    pub since: Option<String>,
}

/// One call as log text: a header line, then its stderr indented.
fn log_entry(e: &Value) -> String {
    let mut out = format!(
        "{} {} {} {} {} {} {}\n",
        output::time(&e["started_at"]),
        cell(&e["invocation_id"]),
        cell(&e["outcome"]),
        cell(&e["status"]),
        wall(e),
        cell(&e["method"]),
        cell(&e["path"])
    );
    let err = cell(&e["error"]);
    if !err.is_empty() && err != "-" {
        out.push_str(&format!("  error: {err}\n"));
    }
    for line in e["stderr_tail"].as_str().unwrap_or_default().lines() {
        out.push_str(&format!("  | {line}\n"));
    }
    out
}

impl Logs {
    /// Prints recent calls, then (with `--follow`) new ones every second.
    ///
    /// # Errors
    /// Unknown function (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        check_name(&self.function)?;
        let client = g.client()?;
        let name = &self.function;
        let window = Window { since: self.since.clone(), until: None };
        let mut q = window.query()?;
        q.push(("limit", self.lines.to_string()));
        let mut items = list(&client, name, q).await?;
        items.reverse();
        let mut last = items.last().map(|e| cell(&e["invocation_id"]));
        emit(g, &items);
        if !self.follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut fresh = list(&client, name, vec![("limit", "500".to_owned())]).await?;
            fresh.retain(|e| last.as_deref().is_none_or(|l| cell(&e["invocation_id"]).as_str() > l));
            if fresh.len() == 500 {
                eprintln!("olinctl: more than 500 calls in a second; some are not shown");
            }
            fresh.reverse();
            if let Some(e) = fresh.last() {
                last = Some(cell(&e["invocation_id"]));
            }
            emit(g, &fresh);
        }
    }
}

fn emit(g: &Global, items: &[Value]) {
    match g.output {
        // One JSON object per line, so a follower can stream them.
        output::Format::Json => {
            for e in items {
                output::print(&format!("{e}\n"));
            }
        }
        output::Format::Table => {
            for e in items {
                output::print(&log_entry(e));
            }
        }
    }
}

/// `olinctl usage`: calls, errors, latency, fuel and bytes over a window.
#[derive(Debug, Clone, clap::Args)]
pub struct Usage {
    /// One function (default: all of yours).
    pub function: Option<String>,
    /// Time window (default: everything).
    #[command(flatten)]
    pub window: Window,
}

impl Usage {
    /// Prints the usage summary.
    ///
    /// # Errors
    /// Unknown function (exit 2), bad flags (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        let q = self.window.query()?;
        let u = match &self.function {
            Some(name) => {
                check_name(name)?;
                client.get(&format!("/functions/{name}/usage"), &q).await.map_err(known_function(name))?
            }
            None => client.get("/usage", &q).await?,
        };
        let by_outcome = u["errors_by_outcome"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".to_owned());
        let ms = |v: &Value| v.as_f64().map_or_else(|| "-".to_owned(), |us| format!("{:.2} ms", us / 1000.0));
        let scope =
            u["function"].as_str().map_or_else(|| format!("all functions of {}", cell(&u["user"])), str::to_owned);
        output::object(
            g.output,
            &u,
            &[
                ("scope", scope),
                ("window", format!("{} .. {}", output::time(&u["since"]), output::time(&u["until"]))),
                ("calls", cell(&u["calls"])),
                ("errors", format!("{} ({by_outcome})", cell(&u["errors"]))),
                ("wall p50", ms(&u["wall_us"]["p50"])),
                ("wall p99", ms(&u["wall_us"]["p99"])),
                ("fuel", cell(&u["fuel"])),
                ("bytes in", human_bytes(u["bytes_in"].as_u64().unwrap_or(0))),
                ("bytes out", human_bytes(u["bytes_out"].as_u64().unwrap_or(0))),
            ]
            .into_iter()
            .chain(u.get("quota").map(|q| ("this month", quota_line(q))))
            .collect::<Vec<_>>(),
        );
        Ok(())
    }
}

/// `12 of 1000 calls, 5400 fuel (no quota); resets 2027-01-01 ...`, and
/// `QUOTA EXCEEDED (calls)` when one is spent.
fn quota_line(q: &Value) -> String {
    let of = |used: &Value, quota: &Value, what: &str| match quota.as_i64() {
        Some(max) => format!("{} of {max} {what}", cell(used)),
        None => format!("{} {what} (no quota)", cell(used)),
    };
    let mut line = format!(
        "{}, {}; resets {}",
        of(&q["calls"], &q["calls_per_month"], "calls"),
        of(&q["fuel"], &q["fuel_per_month"], "fuel"),
        output::time(&q["resets_at"])
    );
    if let Some(what) = q["exceeded"].as_str() {
        line.push_str(&format!("; QUOTA EXCEEDED ({what}): calls are refused"));
    }
    line
}
