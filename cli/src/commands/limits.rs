//! `olinctl limits set|show`: a function's per-call limits, and its rate
//! and concurrency limits, within the server's maxima.

use olin_api::{Function, FunctionPatch, LimitsPatch, RatePatch};
use reqwest::Method;

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
                let limits = LimitsPatch {
                    fuel,
                    memory_bytes: memory,
                    wall_ms: wall.map(|w| w.as_millis() as u64),
                    max_output_bytes: max_output,
                    host_budget_bytes: host_budget,
                };
                let any_limit = [fuel, memory, limits.wall_ms, max_output, host_budget].iter().any(Option::is_some);
                let body = FunctionPatch {
                    limits: any_limit.then_some(limits),
                    rate_limit: rate.map(|per_second| RatePatch { per_second, burst }),
                    max_concurrency: concurrency,
                    ..FunctionPatch::default()
                };
                if !any_limit && rate.is_none() && concurrency.is_none() {
                    return Err(CliError::usage(
                        "nothing to set",
                        "pass one or more of --memory, --wall, --fuel, --max-output, --host-budget, --rate, --concurrency",
                    ));
                }
                let f: Function = client
                    .call(Method::PATCH, &format!("/functions/{function}"), &body)
                    .await
                    .map_err(known_function(&function))?;
                super::functions::show(g, &f);
            }
            Limits::Show { function } => {
                check_name(&function)?;
                let f: Function =
                    client.get(&format!("/functions/{function}")).await.map_err(known_function(&function))?;
                super::functions::show(g, &f);
            }
        }
        Ok(())
    }
}
