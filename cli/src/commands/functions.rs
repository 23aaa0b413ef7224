//! `olinctl fn create|list|show|delete`.

use olin_api::{Function, FunctionList, NewFunction, RateLimit, Visibility};
use reqwest::Method;

use super::{check_name, known_function};
use crate::error::{CliError, Result};
use crate::output::{self, Table};
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
pub fn deployed(f: &Function) -> String {
    match &f.deployment {
        Some(d) => match (d.canary_version, d.canary_percent) {
            (Some(c), Some(p)) => format!("v{} (canary v{c} {p}%)", d.version),
            _ => format!("v{}", d.version),
        },
        None => "-".to_owned(),
    }
}

/// The calls of the last hour: `12`, `12 (1 failed)`.
fn last_hour(f: &Function) -> String {
    match (f.last_hour.calls, f.last_hour.errors) {
        (calls, 0) => calls.to_string(),
        (calls, errors) => format!("{calls} ({errors} failed)"),
    }
}

/// `memory 128 MiB` style cell text of a limit, `default` when unset.
fn limit(v: Option<i64>, unit: fn(u64) -> String) -> String {
    v.and_then(|n| u64::try_from(n).ok()).map_or_else(|| "default".to_owned(), unit)
}

/// `20/s (burst 40)`, or `none`.
fn rate_limit(r: Option<RateLimit>) -> String {
    match r {
        Some(RateLimit { per_second, burst }) if burst != per_second => format!("{per_second}/s (burst {burst})"),
        Some(RateLimit { per_second, .. }) => format!("{per_second}/s"),
        None => "none".to_owned(),
    }
}

/// Prints one function.
pub fn show(g: &Global, f: &Function) {
    let l = &f.limits;
    let bytes = |n| crate::progress::human_bytes(n);
    output::object(
        g.output,
        f,
        &[
            ("name", f.name.clone()),
            ("url", f.url.clone()),
            ("visibility", f.visibility.as_str().to_owned()),
            ("deployed", deployed(f)),
            ("memory", limit(l.memory_bytes, bytes)),
            ("wall time", limit(l.wall_ms, |n| format!("{n} ms"))),
            ("fuel", limit(l.fuel, |n| n.to_string())),
            ("max output", limit(l.max_output_bytes, bytes)),
            ("host budget", limit(l.host_budget_bytes, bytes)),
            ("rate", rate_limit(f.rate_limit)),
            ("concurrency", f.max_concurrency.map_or_else(|| "none".to_owned(), |n| n.to_string())),
            ("egress", if f.egress_allow.is_empty() { "none".to_owned() } else { f.egress_allow.join(", ") }),
            ("created", output::time(&f.created_at)),
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
                let body = NewFunction {
                    name: name.clone(),
                    visibility: if private { Visibility::Private } else { Visibility::Public },
                };
                let f: Function = client.call(Method::POST, "/functions", &body).await.map_err(|e| match e {
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
                let items = client.all::<FunctionList>("/functions", limit as usize).await?;
                let mut t = Table::new(&["name", "deployed", "calls 1h", "visibility", "url"]);
                for f in &items {
                    let visibility = f.visibility.as_str().to_owned();
                    t.row(vec![f.name.clone(), deployed(f), last_hour(f), visibility, f.url.clone()]);
                }
                output::listing(g.output, &items, t, "No functions yet: create one with `olinctl fn create NAME`.");
            }
            Fn::Show { name } => {
                check_name(&name)?;
                let f: Function = client.get(&format!("/functions/{name}")).await.map_err(known_function(&name))?;
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
