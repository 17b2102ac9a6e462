//! Flags, `config.yaml` and the environment, resolved once into what the commands run with.
//!
//! The library resolves the files and variables it owns (config directory, `config.yaml`,
//! `LATCHKEY_TOKEN`, `LATCHKEY_API_KEY`); this adds the terminal facts (TTYs, colors) and checks
//! the login flags, so the commands themselves only act.

use crate::cli::LoginArgs;
use anyhow::Result;
use latchkey_client::{Client, DeviceLoginOptions, Overrides};
use std::io::IsTerminal;

/// The CLI's name: directories, environment variables and messages derive from it.
pub const APP: &str = "latchkey";
/// This CLI's version, sent as `Latchkey-Client-Version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every command may need to know about its surroundings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Standard input is a terminal (a person can answer prompts).
    pub stdin_tty: bool,
    /// Standard error is a terminal (spinners and prompts can be drawn).
    pub stderr_tty: bool,
}

impl Settings {
    /// Looks at the terminal.
    pub fn resolve() -> Self {
        Self {
            stdin_tty: std::io::stdin().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// Whether the user can be asked a question.
    pub fn interactive(&self) -> bool {
        self.stdin_tty && self.stderr_tty
    }

    /// The latchkey client with the user's config directory and `config.yaml`. No network.
    pub fn client(&self) -> Result<Client> {
        Ok(Client::from_config(APP, VERSION)?)
    }
}

/// `latchkey login`, resolved.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// Try to open the verification URL in a browser.
    pub open_browser: bool,
    /// What the library needs.
    pub options: DeviceLoginOptions,
}

impl LoginSettings {
    /// Checks the flags (URLs must be http(s), names not empty).
    pub fn resolve(args: LoginArgs) -> Result<Self> {
        if let Some(u) = &args.auth_url {
            latchkey_client::config::validate_url("--auth-url", u)?;
        }
        let non_empty = |flag: &str, v: Option<String>| -> Result<Option<String>> {
            match v {
                Some(s) if s.trim().is_empty() => Err(anyhow::anyhow!("{flag} must not be empty")),
                other => Ok(other.map(|s| s.trim().to_owned())),
            }
        };
        Ok(Self {
            open_browser: !args.no_browser,
            options: DeviceLoginOptions {
                overrides: Overrides {
                    auth_url: args.auth_url,
                    client_id: non_empty("--client-id", args.client_id)?,
                    scope: args.scope,
                },
                device_name: non_empty("--name", args.name)?,
                local: args.local,
            },
        })
    }
}
