//! `olinctl`: parse the command line and dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "olinctl", version, about = "The Olincloud command-line tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack on this machine (NATS, worker, gateway).
    Dev(olin_cli::dev::Dev),
    /// Inspect and re-drive invocations in the dead-letter stream (operators).
    DeadLetters(olin_cli::dead_letters::DeadLetters),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    olin_telemetry::init("text", "warn");
    match cli.command {
        Command::Dev(dev) => match dev.run(olin_telemetry::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(olin_cli::dev::DevError::Prerequisite(msg)) => {
                eprintln!("error: {msg}");
                ExitCode::from(2)
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        },
        Command::DeadLetters(cmd) => match cmd.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        },
    }
}
