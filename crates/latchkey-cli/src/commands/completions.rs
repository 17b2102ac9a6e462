//! `latchkey completions SHELL`: a completion script on stdout, generated from the clap types so
//! it never goes stale.

use super::ExitStatus;
use crate::cli::Cli;
use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

/// Prints the script.
pub fn run(shell: Shell) -> Result<ExitStatus> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "latchkey", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}
