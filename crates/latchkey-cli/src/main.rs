//! `latchkey`: sign in to a cloud from the command line.
//!
//! A thin binary: parse the command line, resolve settings, run one command on a single-threaded
//! runtime, and turn the outcome into an exit code (0 success, 1 failure, 2 usage, 130 Ctrl-C).
//! Errors go to stderr as `error: ...` with a `hint: ...` saying what to do.

mod cli;
mod commands;
mod output;
mod qr;
mod settings;

use clap::Parser;
use commands::ExitStatus;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let settings = settings::Settings::resolve();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&format!("could not start: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command, &settings)) {
        Ok(ExitStatus::Success) => ExitCode::SUCCESS,
        Ok(ExitStatus::Failure) => ExitCode::FAILURE,
        Ok(ExitStatus::Cancelled) => ExitCode::from(130),
        Err(e) => {
            output::report(&e);
            ExitCode::FAILURE
        }
    }
}
