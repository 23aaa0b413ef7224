//! `olinctl`, the Olincloud command-line tool.
//!
//! # Layout
//! - [`app`]: the clap tree, the dispatch, the generated reference.
//! - [`commands`]: one module per group of subcommands (`login`, `fn`,
//!   `deploy`, `env`, `limits`, `keys`, `invoke`, `executions`, `logs`,
//!   `usage`), each a clap struct with `run(self, &Global)`.
//! - [`session`]: the global flags and the login they resolve to.
//! - [`contexts`]: the config file of stored logins (mode 0600).
//! - [`client`]: the control plane's `/v1` API over HTTP.
//! - [`output`]: tables for people, JSON for scripts.
//! - [`progress`]: the upload progress bar.
//! - [`parse`]: sizes, durations, points in time.
//! - [`error`]: [`CliError`] and its exit codes (0 ok, 1 remote, 2 usage).
//! - [`dev`]: `olinctl dev`, the whole stack on one machine.
//! - [`dead_letters`]: `olinctl dead-letters list|redrive` (operators).

pub mod app;
pub mod client;
pub mod commands;
pub mod contexts;
pub mod dead_letters;
pub mod dev;
pub mod error;
pub mod output;
pub mod parse;
pub mod progress;
pub mod session;

pub use error::CliError;
