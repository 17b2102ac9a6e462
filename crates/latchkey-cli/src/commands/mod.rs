//! One file per command. Each takes its resolved settings and returns how the process should
//! exit; errors bubble up to `main`, which prints them with their hint.

use crate::cli::Command;
use crate::settings::Settings;
use anyhow::Result;

pub mod api_keys;
pub mod completions;
pub mod config;
pub mod login;
pub mod logout;
pub mod orgs;
pub mod sessions;
pub mod token;
pub mod whoami;

/// How a command ended, beyond success and error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done.
    Success,
    /// Not done, and the message was already printed (exit 1).
    Failure,
    /// Cancelled with Ctrl-C (exit 130).
    Cancelled,
}

/// Dispatches to the command.
pub async fn run(command: Command, settings: &Settings) -> Result<ExitStatus> {
    match command {
        Command::Login(args) => login::run(args, settings).await,
        Command::Whoami(args) => whoami::run(args, settings).await,
        Command::Logout(args) => logout::run(args, settings).await,
        Command::Token => token::run(settings).await,
        Command::Config(cmd) => config::run(cmd, settings),
        Command::Sessions(args) => sessions::run(args, settings).await,
        Command::Orgs(args) => orgs::run(args, settings).await,
        Command::ApiKeys(cmd) => api_keys::run(cmd, settings).await,
        Command::Completions { shell } => completions::run(shell),
    }
}
