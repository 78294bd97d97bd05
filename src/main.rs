//! `troupe`: the command line and the composition root. Parses flags, builds settings
//! (defaults < file < environment < flags), starts what the command needs.
//!
//! Exit codes: 0 success; 1 the run ended failed, rejected or cancelled; 2 bad input
//! (invalid workflow, settings or arguments); 3 the node or server could not be reached
//! or failed.

mod cli;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(3);
        }
    };
    runtime.block_on(cli::dispatch(args))
}
