//! `olinctl dead-letters`: list the invocations in `OLIN_DEAD` and re-drive
//! them. An operator tool: it talks to NATS directly.

use std::time::Duration;

use anyhow::Context as _;
use olin_nats::dead_letters;

use crate::output::{self, Format, Table};

/// `olinctl dead-letters` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadLetters {
    /// NATS connection: the operator's credential (`olin-operator`).
    #[command(flatten)]
    pub nats: olin_nats::connect::NatsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum Command {
    /// List dead-lettered invocations, oldest first, with the reason.
    List {
        /// Most entries to show.
        #[arg(long, env = "OLIN_LIMIT", default_value_t = 100)]
        limit: usize,
    },
    /// Publish a dead-lettered invocation again (to the function's current
    /// deployment) and remove it from the dead letters.
    Redrive {
        /// The dead letter's sequence number, from `list`.
        seq: u64,
        /// How long the re-driven call may wait in the queue, in seconds.
        #[arg(long, env = "OLIN_REDRIVE_DEADLINE_SECS", default_value_t = 3600)]
        deadline_secs: u64,
    },
}

impl DeadLetters {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// If NATS cannot be reached or the operation fails.
    pub async fn run(self, format: Format) -> anyhow::Result<()> {
        let client = self
            .nats
            .connect(olin_proto::access::Role::Operator)
            .await
            .context("set --nats-url, NATS_USER/NATS_PASSWORD and NATS_TLS_CA")?;
        let js = async_nats::jetstream::new(client);
        match self.command {
            Command::List { limit } => {
                let letters = dead_letters::list(&js, limit).await?;
                /// One dead letter as `--output json` prints it.
                #[derive(serde::Serialize)]
                struct Row<'a> {
                    seq: u64,
                    function: &'a str,
                    invocation_id: &'a str,
                    #[serde(rename = "async")]
                    is_async: bool,
                    reason: &'a str,
                }
                let rows: Vec<Row<'_>> = letters
                    .iter()
                    .map(|d| Row {
                        seq: d.seq,
                        function: &d.function,
                        invocation_id: &d.invocation_id,
                        is_async: d.is_async,
                        reason: &d.reason,
                    })
                    .collect();
                let mut t = Table::new(&["seq", "function", "invocation", "async", "reason"]);
                for d in &letters {
                    t.row(vec![
                        d.seq.to_string(),
                        d.function.clone(),
                        d.invocation_id.clone(),
                        d.is_async.to_string(),
                        d.reason.clone(),
                    ]);
                }
                output::listing(format, &rows, t, "No dead letters.");
            }
            Command::Redrive { seq, deadline_secs } => {
                let id = dead_letters::redrive(&js, seq, Duration::from_secs(deadline_secs)).await?;
                println!("re-drove dead letter {seq} as invocation {id}");
            }
        }
        Ok(())
    }
}
