//! `olinctl`: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser as _;
use olin_cli::app::{Cli, run};
use olin_cli::error::Report;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    olin_telemetry::init("text", "warn");
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", Report(&err));
            ExitCode::from(err.exit_code())
        }
    }
}
