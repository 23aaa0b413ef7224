//! The command line itself: the [`Cli`] clap tree, the dispatch, and the
//! Markdown reference generated from it (`docs/cli.md`, checked by a test).

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::commands::{audit, auth, deploy, env, executions, functions, invoke, keys, limits, users};
use crate::error::CliError;
use crate::session::Global;

/// `olinctl`.
#[derive(Debug, Parser)]
#[command(name = "olinctl", version, about = "The Olincloud command-line tool", propagate_version = true)]
#[command(after_help = "Start here: `olinctl dev --demo` runs a local stack and logs you in to it.")]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a control plane and store the token.
    Login(auth::Login),
    /// Revoke the stored token and forget it.
    Logout(auth::Logout),
    /// Show who you are logged in as, and where.
    Whoami(auth::Whoami),
    /// Change your password (revokes your other tokens).
    Passwd(auth::Passwd),
    /// Create, list, show and delete functions.
    #[command(subcommand, name = "fn")]
    Fn(functions::Fn),
    /// Check a .wasm module locally, upload it and deploy it.
    Deploy(deploy::Deploy),
    /// List a function's uploaded versions.
    Versions(deploy::Versions),
    /// Re-point a function at an earlier version.
    Rollback(deploy::Rollback),
    /// Set, unset and list a function's environment values.
    #[command(subcommand)]
    Env(env::Env),
    /// Set and show a function's limits (memory, wall time, fuel, output,
    /// calls per second, concurrency).
    #[command(subcommand)]
    Limits(limits::Limits),
    /// Administer accounts (admins): list, quotas, role, disable, reset
    /// password, tokens, delete.
    #[command(subcommand)]
    Users(users::Users),
    /// Create, list and revoke invoke keys of private functions.
    #[command(subcommand)]
    Keys(keys::Keys),
    /// Call a function and print its response.
    Invoke(invoke::Invoke),
    /// List recent calls of a function, or show one.
    Executions(executions::Executions),
    /// Print the outcomes and stderr of recent calls (--follow for new ones).
    Logs(executions::Logs),
    /// Calls, errors, latency, fuel and bytes over a time window.
    Usage(executions::Usage),
    /// The audit log: who changed what, from where, refused or not
    /// (admins: everyone's; you: yours and what was done to your things).
    Audit(audit::Audit),
    /// Run the whole stack on this machine (NATS, control, worker, gateway).
    Dev(crate::dev::Dev),
    /// Inspect and re-drive invocations in the dead-letter stream (operators).
    DeadLetters(crate::dead_letters::DeadLetters),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs the parsed command line.
///
/// # Errors
/// The command's [`CliError`].
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    match cli.command {
        Command::Login(c) => c.run(g).await,
        Command::Logout(c) => c.run(g).await,
        Command::Whoami(c) => c.run(g).await,
        Command::Passwd(c) => c.run(g).await,
        Command::Fn(c) => c.run(g).await,
        Command::Deploy(c) => c.run(g).await,
        Command::Versions(c) => c.run(g).await,
        Command::Rollback(c) => c.run(g).await,
        Command::Env(c) => c.run(g).await,
        Command::Limits(c) => c.run(g).await,
        Command::Users(c) => c.run(g).await,
        Command::Keys(c) => c.run(g).await,
        Command::Invoke(c) => c.run(g).await,
        Command::Executions(c) => c.run(g).await,
        Command::Logs(c) => c.run(g).await,
        Command::Usage(c) => c.run(g).await,
        Command::Audit(c) => c.run(g).await,
        Command::Dev(c) => c.run(g, olin_telemetry::shutdown_signal()).await,
        Command::DeadLetters(c) => c.run(g.output).await.map_err(CliError::Other),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "olinctl", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The CLI reference in Markdown: every command's `--help`, in order.
pub fn reference() -> String {
    let mut out = String::from(
        "# olinctl reference\n\nGenerated from the command definitions (`cli/src/app.rs`); a test keeps it \
         current (`OLIN_BLESS=1 cargo test -p olin-cli reference` rewrites it).\n\n\
         Exit codes: 0 success; 1 the server refused or failed, or could not be reached; 2 bad use: a usage \
         error, a module that fails the local check, no login, or a function that does not exist. Every \
         error is printed as `error: ...` with a `hint: ...` line saying what to do next.\n",
    );
    // Values from this process's environment must not leak into the page.
    fn hide_env(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|a| a.hide_env_values(true)).mut_subcommands(hide_env)
    }
    let mut root = hide_env(Cli::command().term_width(100));
    root.build();
    section(&mut out, &mut root, "olinctl");
    out
}

fn section(out: &mut String, cmd: &mut clap::Command, path: &str) {
    if cmd.is_hide_set() {
        return;
    }
    let help = cmd.render_help().to_string();
    out.push_str(&format!("\n## `{path}`\n\n```text\n{}\n```\n", help.trim_end()));
    let names: Vec<String> =
        cmd.get_subcommands().filter(|c| c.get_name() != "help").map(|c| c.get_name().to_owned()).collect();
    for name in names {
        if let Some(sub) = cmd.find_subcommand_mut(&name) {
            section(out, sub, &format!("{path} {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
        let want = reference();
        if std::env::var_os("OLIN_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(have == want, "docs/cli.md is stale: run `OLIN_BLESS=1 cargo test -p olin-cli reference`");
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
