//! `olinctl executions`, `logs` and `usage`: what a function's calls did.

use std::time::Duration;

use chrono::Utc;
use olin_api::{Execution, ExecutionFilter, ExecutionList, Header, QuotaStanding};

use super::{check_name, known_function, on_not_found};
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Table};
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
    pub(crate) fn query(&self) -> Result<olin_api::Window> {
        let now = Utc::now();
        let time = |key: &str, v: &Option<String>| -> Result<Option<String>> {
            v.as_deref()
                .map(|s| {
                    let t = crate::parse::since(s, now).map_err(|e| {
                        CliError::usage(format!("--{key}: {e}"), "e.g. --since 1h or --since 2026-11-30T09:00:00Z")
                    })?;
                    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                })
                .transpose()
        };
        Ok(olin_api::Window { since: time("since", &self.since)?, until: time("until", &self.until)? })
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

fn wall(e: &Execution) -> String {
    let us = e.usage.wall_us;
    if us >= 10_000 { format!("{} ms", us / 1000) } else { format!("{:.2} ms", us as f64 / 1000.0) }
}

fn execution_row(e: &Execution) -> Vec<String> {
    vec![
        e.invocation_id.clone(),
        output::time(&e.started_at),
        e.outcome.clone(),
        e.status.to_string(),
        wall(e),
        e.usage.fuel.to_string(),
        format!("{} {}", e.method, e.path),
    ]
}

async fn list(client: &Client, name: &str, filter: &ExecutionFilter) -> Result<Vec<Execution>> {
    let page: ExecutionList =
        client.get_with(&format!("/functions/{name}/executions"), filter).await.map_err(known_function(name))?;
    Ok(page.items)
}

impl Executions {
    /// Lists calls, or shows one.
    ///
    /// # Errors
    /// Unknown function or invocation (exit 2), bad flags (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        if let Some(id) = &self.id {
            let e: Execution = client.get(&format!("/executions/{id}")).await.map_err(on_not_found(
                format!("no recorded call {id}"),
                "records appear a moment after the call".to_owned(),
            ))?;
            let u = &e.usage;
            output::object(
                g.output,
                &e,
                &[
                    ("invocation", e.invocation_id.clone()),
                    ("function", e.function.clone()),
                    ("request", format!("{} {}", e.method, e.path)),
                    ("outcome", e.outcome.clone()),
                    ("status", e.status.to_string()),
                    ("exit code", e.exit_code.to_string()),
                    ("error", e.error.clone()),
                    ("started", e.started_at.to_rfc3339()),
                    ("wall time", wall(&e)),
                    ("fuel", u.fuel.to_string()),
                    ("peak memory", human_bytes(u64::try_from(u.peak_memory_bytes).unwrap_or(0))),
                    ("bytes in/out", format!("{} / {}", u.bytes_in, u.bytes_out)),
                    ("worker", e.worker_id.clone()),
                    ("headers", headers(&e.headers)),
                    ("stderr", format!("\n{}", e.stderr_tail)),
                ],
            );
            return Ok(());
        }
        let name = self.function.unwrap_or_default();
        check_name(&name)?;
        let window = self.window.query()?;
        let filter = ExecutionFilter {
            outcome: self.outcome.as_deref().map(str::to_ascii_uppercase),
            since: window.since,
            until: window.until,
            limit: u64::from(self.limit),
            after: None,
        };
        let items = list(&client, &name, &filter).await?;
        let mut t = Table::new(&["invocation", "started", "outcome", "status", "wall", "fuel", "request"]);
        for e in &items {
            t.row(execution_row(e));
        }
        output::listing(g.output, &items, t, &format!("No recorded calls of {name} (yet)."));
        Ok(())
    }
}

/// The response headers of a call, one `Name: value` per line.
fn headers(list: &[Header]) -> String {
    let lines: Vec<String> = list.iter().map(|h| format!("\n  {}: {}", h.name, h.value)).collect();
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
fn log_entry(e: &Execution) -> String {
    let mut out = format!(
        "{} {} {} {} {} {} {}\n",
        output::time(&e.started_at),
        e.invocation_id,
        e.outcome,
        e.status,
        wall(e),
        e.method,
        e.path
    );
    if !e.error.is_empty() {
        out.push_str(&format!("  error: {}\n", e.error));
    }
    for line in e.stderr_tail.lines() {
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
        let window = Window { since: self.since.clone(), until: None }.query()?;
        let filter =
            ExecutionFilter { since: window.since, limit: u64::from(self.lines), ..ExecutionFilter::default() };
        let mut items = list(&client, name, &filter).await?;
        items.reverse();
        let mut last = items.last().map(|e| e.invocation_id.clone());
        emit(g, &items);
        if !self.follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let latest = ExecutionFilter { limit: 500, ..ExecutionFilter::default() };
            let mut fresh = list(&client, name, &latest).await?;
            fresh.retain(|e| last.as_deref().is_none_or(|l| e.invocation_id.as_str() > l));
            if fresh.len() == 500 {
                eprintln!("olinctl: more than 500 calls in a second; some are not shown");
            }
            fresh.reverse();
            if let Some(e) = fresh.last() {
                last = Some(e.invocation_id.clone());
            }
            emit(g, &fresh);
        }
    }
}

fn emit(g: &Global, items: &[Execution]) {
    match g.output {
        // One JSON object per line, so a follower can stream them.
        output::Format::Json => {
            for e in items {
                output::print(&format!("{}\n", serde_json::to_string(e).unwrap_or_default()));
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
        let u: olin_api::Usage = match &self.function {
            Some(name) => {
                check_name(name)?;
                client.get_with(&format!("/functions/{name}/usage"), &q).await.map_err(known_function(name))?
            }
            None => client.get_with("/usage", &q).await?,
        };
        let by_outcome: Vec<String> = u.errors_by_outcome.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let by_outcome = if by_outcome.is_empty() { "none".to_owned() } else { by_outcome.join(", ") };
        let ms = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |us| format!("{:.2} ms", us as f64 / 1000.0));
        let scope =
            u.function.clone().unwrap_or_else(|| format!("all functions of {}", output::opt(u.user.as_deref())));
        let bytes = |n: i64| human_bytes(u64::try_from(n).unwrap_or(0));
        output::object(
            g.output,
            &u,
            &[
                ("scope", scope),
                ("window", format!("{} .. {}", output::time_opt(u.since.as_ref()), output::time_opt(u.until.as_ref()))),
                ("calls", u.calls.to_string()),
                ("errors", format!("{} ({by_outcome})", u.errors)),
                ("wall p50", ms(u.wall_us.p50)),
                ("wall p99", ms(u.wall_us.p99)),
                ("fuel", u.fuel.to_string()),
                ("bytes in", bytes(u.bytes_in)),
                ("bytes out", bytes(u.bytes_out)),
            ]
            .into_iter()
            .chain(u.quota.as_ref().map(|q| ("this month", quota_line(q))))
            .collect::<Vec<_>>(),
        );
        Ok(())
    }
}

/// `12 of 1000 calls, 5400 fuel (no quota); resets 2027-01-01 ...`, and
/// `QUOTA EXCEEDED (calls)` when one is spent.
fn quota_line(q: &QuotaStanding) -> String {
    let of = |used: i64, quota: Option<i64>, what: &str| match quota {
        Some(max) => format!("{used} of {max} {what}"),
        None => format!("{used} {what} (no quota)"),
    };
    let mut line = format!(
        "{}, {}; resets {}",
        of(q.calls, q.calls_per_month, "calls"),
        of(q.fuel, q.fuel_per_month, "fuel"),
        output::time(&q.resets_at)
    );
    if let Some(what) = q.exceeded.map(olin_api::QuotaKind::as_str) {
        line.push_str(&format!("; QUOTA EXCEEDED ({what}): calls are refused"));
    }
    line
}
