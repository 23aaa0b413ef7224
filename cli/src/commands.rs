//! One module per group of subcommands, each a clap struct (or enum) with
//! `async fn run(self, &Global)`; `main` dispatches.

pub mod audit;
pub mod auth;
pub mod deploy;
pub mod env;
pub mod executions;
pub mod functions;
pub mod invoke;
pub mod keys;
pub mod limits;
pub mod sso;
pub mod users;

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::error::{CliError, Result};

/// A function name checked before any request (it becomes a host name).
///
/// # Errors
/// [`CliError::Usage`] naming the rule.
pub fn check_name(name: &str) -> Result<()> {
    if olin_proto::subject::is_valid_function_name(name) {
        return Ok(());
    }
    Err(CliError::usage(
        format!("{name:?} is not a valid function name"),
        "use 1-63 of a-z, 0-9 and '-', not starting or ending with '-' (it becomes a host name)",
    ))
}

/// Maps the server's 404 to a usage error saying `message` and `hint` (exit 2).
pub fn on_not_found(message: String, hint: String) -> impl FnOnce(CliError) -> CliError {
    move |e| if e.is_not_found() { CliError::usage(message, hint) } else { e }
}

/// Maps the server's 404 for `name` to a hint (exit 2).
pub fn known_function(name: &str) -> impl FnOnce(CliError) -> CliError {
    on_not_found(format!("there is no function named {name:?}"), "list yours with `olinctl fn list`".to_owned())
}

/// Asks `question [y/N]` on the terminal.
///
/// # Errors
/// [`CliError::Usage`] when the answer is no, or stdin is not a terminal.
pub fn confirm(question: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage("refusing to ask for confirmation: stdin is not a terminal", "pass --yes"));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Other(e.into()))?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::usage("cancelled", "nothing was changed"))
    }
}
