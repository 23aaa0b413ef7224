//! `olinctl fn create|list|show|delete`.

use reqwest::Method;
use serde_json::{Value, json};

use super::{check_name, known_function};
use crate::error::{CliError, Result};
use crate::output::{self, Table, cell};
use crate::session::Global;

/// `olinctl fn`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Fn {
    /// Create a function (a name; deploy a module to it with `olinctl deploy`).
    Create {
        /// DNS label: 1-63 of a-z, 0-9 and '-'.
        name: String,
        /// Callers need an invoke key (`olinctl keys create`).
        #[arg(long, env = "OLIN_PRIVATE")]
        private: bool,
    },
    /// List your functions.
    #[command(alias = "ls")]
    List {
        /// Most functions to list.
        #[arg(long, env = "OLIN_LIMIT", default_value_t = 100)]
        limit: u32,
    },
    /// Show one function: URL, active version, limits.
    Show {
        /// The function.
        name: String,
    },
    /// Delete a function: its route goes at once; modules are kept.
    #[command(alias = "rm")]
    Delete {
        /// The function.
        name: String,
        /// Do not ask (required when stdin is not a terminal).
        #[arg(long, short = 'y', env = "OLIN_YES")]
        yes: bool,
    },
}

/// `v1` or `v2 (canary v3 10%)`, or `-` before the first deploy.
pub fn deployed(f: &Value) -> String {
    let d = &f["deployment"];
    match (d["version"].as_i64(), d["canary_version"].as_i64()) {
        (Some(v), Some(c)) => format!("v{v} (canary v{c} {}%)", cell(&d["canary_percent"])),
        (Some(v), None) => format!("v{v}"),
        _ => "-".to_owned(),
    }
}

/// The calls of the last hour: `12`, `12 (1 failed)`.
fn last_hour(f: &Value) -> String {
    let r = &f["last_hour"];
    match (r["calls"].as_u64().unwrap_or(0), r["errors"].as_u64().unwrap_or(0)) {
        (calls, 0) => calls.to_string(),
        (calls, errors) => format!("{calls} ({errors} failed)"),
    }
}

/// `memory 128 MiB` style cell text of a limit, `default` when unset.
fn limit(v: &Value, unit: fn(u64) -> String) -> String {
    v.as_u64().map_or_else(|| "default".to_owned(), unit)
}

/// `20/s (burst 40)`, or `none`.
fn rate_limit(r: &Value) -> String {
    match (r["per_second"].as_u64(), r["burst"].as_u64()) {
        (Some(n), Some(b)) if b != n => format!("{n}/s (burst {b})"),
        (Some(n), _) => format!("{n}/s"),
        _ => "none".to_owned(),
    }
}

/// Prints one function.
pub fn show(g: &Global, f: &Value) {
    let l = &f["limits"];
    let bytes = |n| crate::progress::human_bytes(n);
    output::object(
        g.output,
        f,
        &[
            ("name", cell(&f["name"])),
            ("url", cell(&f["url"])),
            ("visibility", cell(&f["visibility"])),
            ("deployed", deployed(f)),
            ("memory", limit(&l["memory_bytes"], bytes)),
            ("wall time", limit(&l["wall_ms"], |n| format!("{n} ms"))),
            ("fuel", limit(&l["fuel"], |n| n.to_string())),
            ("max output", limit(&l["max_output_bytes"], bytes)),
            ("host budget", limit(&l["host_budget_bytes"], bytes)),
            ("rate", rate_limit(&f["rate_limit"])),
            ("concurrency", f["max_concurrency"].as_u64().map_or_else(|| "none".to_owned(), |n| n.to_string())),
            (
                "egress",
                f["egress_allow"].as_array().map_or("none".to_owned(), |a| {
                    if a.is_empty() { "none".to_owned() } else { a.iter().map(cell).collect::<Vec<_>>().join(", ") }
                }),
            ),
            ("created", output::time(&f["created_at"])),
        ],
    );
}

impl Fn {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Bad names (exit 2), unknown functions (exit 2), remote errors.
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        match self {
            Fn::Create { name, private } => {
                check_name(&name)?;
                let body = json!({"name": name, "visibility": if private { "private" } else { "public" }});
                let f = client.json(Method::POST, "/functions", &body).await.map_err(|e| match e {
                    CliError::Remote { status: 409, .. } => e.hint(format!("see it with `olinctl fn show {name}`")),
                    e => e,
                })?;
                if g.output == output::Format::Json {
                    output::print_json(&f);
                } else {
                    eprintln!("Created {name}. Deploy a module to it with `olinctl deploy {name} FILE.wasm`.");
                }
            }
            Fn::List { limit } => {
                let mut items = Vec::new();
                let mut after: Option<String> = None;
                while items.len() < limit as usize {
                    let mut q = vec![("limit", (limit as usize - items.len()).min(100).to_string())];
                    if let Some(a) = &after {
                        q.push(("after", a.clone()));
                    }
                    let page = client.get("/functions", &q).await?;
                    items.extend(page["items"].as_array().cloned().unwrap_or_default());
                    match page["next"].as_str() {
                        Some(n) => after = Some(n.to_owned()),
                        None => break,
                    }
                }
                let mut t = Table::new(&["name", "deployed", "calls 1h", "visibility", "url"]);
                for f in &items {
                    t.row(vec![cell(&f["name"]), deployed(f), last_hour(f), cell(&f["visibility"]), cell(&f["url"])]);
                }
                output::listing(
                    g.output,
                    &Value::Array(items),
                    t,
                    "No functions yet: create one with `olinctl fn create NAME`.",
                );
            }
            Fn::Show { name } => {
                check_name(&name)?;
                let f = client.get(&format!("/functions/{name}"), &[]).await.map_err(known_function(&name))?;
                show(g, &f);
            }
            Fn::Delete { name, yes } => {
                check_name(&name)?;
                if !yes {
                    super::confirm(&format!("Delete {name} and its route (calls will fail at once)?"))?;
                }
                client.delete(&format!("/functions/{name}")).await.map_err(known_function(&name))?;
                eprintln!("Deleted {name}.");
            }
        }
        Ok(())
    }
}
