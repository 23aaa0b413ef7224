//! `olinctl limits set|show`: a function's per-call limits, and its rate
//! and concurrency limits, within the server's maxima.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{check_name, known_function};
use crate::error::{CliError, Result};
use crate::session::Global;

/// `olinctl limits`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Limits {
    /// Set limits; `0` returns one to the server default.
    Set {
        /// The function.
        function: String,
        /// Linear memory, e.g. 64MiB.
        #[arg(long, env = "OLIN_LIMIT_MEMORY", value_parser = crate::parse::bytes)]
        memory: Option<u64>,
        /// Wall time of a call, e.g. 10s, 500ms.
        #[arg(long, env = "OLIN_LIMIT_WALL", value_parser = crate::parse::duration)]
        wall: Option<std::time::Duration>,
        /// Fuel (WebAssembly operators metered) per call.
        #[arg(long, env = "OLIN_LIMIT_FUEL")]
        fuel: Option<u64>,
        /// Largest response (headers and body), e.g. 1MiB.
        #[arg(long, env = "OLIN_LIMIT_MAX_OUTPUT", value_parser = crate::parse::bytes)]
        max_output: Option<u64>,
        /// What the host may keep for a call outside its memory (outbound
        /// HTTP buffers, logs, accounting), e.g. 16MiB.
        #[arg(long, env = "OLIN_LIMIT_HOST_BUDGET", value_parser = crate::parse::bytes)]
        host_budget: Option<u64>,
        /// Calls per second admitted across every gateway (over it: 429);
        /// `0` removes the rate limit.
        #[arg(long, env = "OLIN_LIMIT_RATE")]
        rate: Option<u32>,
        /// Calls admitted at once after a quiet spell (default: the rate).
        #[arg(long, env = "OLIN_LIMIT_BURST", requires = "rate")]
        burst: Option<u32>,
        /// Most calls running at once (over it: 429); `0` removes the limit.
        #[arg(long, env = "OLIN_LIMIT_CONCURRENCY")]
        concurrency: Option<u32>,
    },
    /// Show the function's limits.
    Show {
        /// The function.
        function: String,
    },
}

impl Limits {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Nothing to set (exit 2), unknown function (exit 2), a value above
    /// the server maximum (exit 1, the message says the maximum).
    pub async fn run(self, g: &Global) -> Result<()> {
        let client = g.client()?;
        match self {
            Limits::Set { function, memory, wall, fuel, max_output, host_budget, rate, burst, concurrency } => {
                check_name(&function)?;
                let mut limits = Map::new();
                if let Some(m) = memory {
                    limits.insert("memory_bytes".into(), json!(m));
                }
                if let Some(w) = wall {
                    limits.insert("wall_ms".into(), json!(w.as_millis() as u64));
                }
                if let Some(f) = fuel {
                    limits.insert("fuel".into(), json!(f));
                }
                if let Some(o) = max_output {
                    limits.insert("max_output_bytes".into(), json!(o));
                }
                if let Some(h) = host_budget {
                    limits.insert("host_budget_bytes".into(), json!(h));
                }
                let mut body = Map::new();
                if !limits.is_empty() {
                    body.insert("limits".into(), Value::Object(limits));
                }
                if let Some(r) = rate {
                    body.insert("rate_limit".into(), json!({"per_second": r, "burst": burst}));
                }
                if let Some(c) = concurrency {
                    body.insert("max_concurrency".into(), json!(c));
                }
                if body.is_empty() {
                    return Err(CliError::usage(
                        "nothing to set",
                        "pass one or more of --memory, --wall, --fuel, --max-output, --host-budget, --rate, --concurrency",
                    ));
                }
                let body = Value::Object(body);
                let f = client
                    .json(Method::PATCH, &format!("/functions/{function}"), &body)
                    .await
                    .map_err(known_function(&function))?;
                super::functions::show(g, &f);
            }
            Limits::Show { function } => {
                check_name(&function)?;
                let f = client.get(&format!("/functions/{function}"), &[]).await.map_err(known_function(&function))?;
                super::functions::show(g, &f);
            }
        }
        Ok(())
    }
}
