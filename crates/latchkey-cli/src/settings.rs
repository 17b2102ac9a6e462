//! Flags, `config.yaml` and the environment, resolved once into what the commands run with.
//!
//! The library resolves the files and variables it owns (config directory, `config.yaml`,
//! `LATCHKEY_TOKEN`, `LATCHKEY_API_KEY`); this adds the terminal facts (TTYs, colors) and checks
//! the login flags, so the commands themselves only act.

use crate::cli::LoginArgs;
use anyhow::Result;
use latchkey_client::{Client, LoginOptions, Overrides, Password};
use std::io::IsTerminal;
use std::time::Duration;

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
    /// Running in CI: `CI` is set (and not `0` or `false`), as every CI service does.
    pub ci: bool,
    /// A graphical session where a browser can open: always on macOS and Windows, else
    /// `DISPLAY` or `WAYLAND_DISPLAY` is set.
    pub display: bool,
}

impl Settings {
    /// Looks at the terminal.
    pub fn resolve() -> Self {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        let ci = std::env::var("CI").is_ok_and(|v| {
            !v.is_empty() && !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")
        });
        Self {
            stdin_tty: std::io::stdin().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            ci,
            display: cfg!(any(target_os = "macos", target_os = "windows"))
                || set("DISPLAY")
                || set("WAYLAND_DISPLAY"),
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

/// A login method, as chosen by a flag, the picker or `auth.default_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `--web`: authorization code + PKCE with a loopback redirect.
    Browser,
    /// `--device`: the device authorization grant.
    Device,
    /// `--email`: email and password in the terminal.
    Password,
    /// `--anonymous`: an anonymous identity.
    Anonymous,
}

impl Method {
    /// Every method, in the picker's order.
    pub const ALL: [Method; 4] = [
        Method::Browser,
        Method::Device,
        Method::Password,
        Method::Anonymous,
    ];

    /// The name used by discovery's `login_methods` and `auth.default_method`.
    pub fn name(self) -> &'static str {
        use latchkey_proto::methods as n;
        match self {
            Method::Browser => n::BROWSER,
            Method::Device => n::DEVICE,
            Method::Password => n::PASSWORD,
            Method::Anonymous => n::ANONYMOUS,
        }
    }

    /// The method with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Where the password of `--email` comes from.
#[derive(Debug)]
pub enum PasswordSource {
    /// Asked on the terminal without echo.
    Prompt,
    /// The first line of standard input (`--password-stdin`).
    Stdin,
    /// `--password` (warned about: it lands in shell history).
    Flag(Password),
}

/// `latchkey login`, resolved.
#[derive(Debug)]
pub struct LoginSettings {
    /// The method a flag chose, if any.
    pub method: Option<Method>,
    /// `--email`: the address, empty when it is to be asked.
    pub email: Option<String>,
    /// Where the password comes from.
    pub password: PasswordSource,
    /// `--force`: replace an existing login without asking.
    pub force: bool,
    /// `--status`: print the current login and exit.
    pub status: bool,
    /// `--server`: the cloud URL for this command.
    pub server: Option<String>,
    /// Try to open the URL in a browser (not with `--no-browser` / `LATCHKEY_NO_BROWSER`).
    pub open_browser: bool,
    /// How long `--web` waits for the browser (`LATCHKEY_LOGIN_TIMEOUT`, default 5 minutes).
    pub browser_timeout: Duration,
    /// What the library needs.
    pub options: LoginOptions,
}

/// The error for two method flags at once: a usage error (exit 2) naming the choice.
pub fn method_conflict() -> clap::Error {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    let msg = "Pick one of --web / --device / --email / --anonymous";
    match cmd.find_subcommand_mut("login") {
        Some(login) => login.error(clap::error::ErrorKind::ArgumentConflict, msg),
        None => cmd.error(clap::error::ErrorKind::ArgumentConflict, msg),
    }
}

impl LoginSettings {
    /// Checks the flags (one method at most, URLs http(s), names not empty) and reads
    /// `LATCHKEY_LOGIN_TIMEOUT`. Two method flags are a [`clap::Error`] (see
    /// [`method_conflict`]).
    pub fn resolve(args: LoginArgs) -> Result<Self> {
        let chosen = [
            (args.web, Method::Browser),
            (args.device, Method::Device),
            (args.email.is_some(), Method::Password),
            (args.anonymous, Method::Anonymous),
        ];
        let mut picked = chosen.iter().filter(|(on, _)| *on).map(|(_, m)| *m);
        let method = picked.next();
        if picked.next().is_some() {
            return Err(method_conflict().into());
        }
        if let Some(u) = &args.auth_url {
            latchkey_client::config::validate_url("--auth-url", u)?;
        }
        if let Some(u) = &args.server {
            latchkey_client::config::validate_url("--server", u)?;
        }
        let non_empty = |flag: &str, v: Option<String>| -> Result<Option<String>> {
            match v {
                Some(s) if s.trim().is_empty() => Err(anyhow::anyhow!("{flag} must not be empty")),
                other => Ok(other.map(|s| s.trim().to_owned())),
            }
        };
        let password = match (args.password, args.password_stdin) {
            (Some(p), _) => PasswordSource::Flag(Password::new(p)),
            (None, true) => PasswordSource::Stdin,
            (None, false) => PasswordSource::Prompt,
        };
        let browser_timeout = match std::env::var("LATCHKEY_LOGIN_TIMEOUT") {
            Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => anyhow::bail!(
                    "LATCHKEY_LOGIN_TIMEOUT must be a number of seconds greater than 0, not `{v}`"
                ),
            },
            _ => latchkey_client::BrowserOptions::default().timeout,
        };
        Ok(Self {
            method,
            email: args.email.map(|e| e.trim().to_owned()),
            password,
            force: args.force,
            status: args.status,
            server: args.server.map(|s| s.trim().to_owned()),
            open_browser: !args.no_browser,
            browser_timeout,
            options: LoginOptions {
                overrides: Overrides {
                    auth_url: args.auth_url,
                    client_id: non_empty("--client-id", args.client_id)?,
                    scope: args.scope,
                },
                device_name: non_empty("--name", args.name)?,
                local: args.local,
                discovery: None,
            },
        })
    }

    /// The client, with `--server` standing in for `cloud.url`.
    pub fn client(&self) -> Result<Client> {
        let mut b = Client::builder(APP, VERSION);
        if let Some(u) = &self.server {
            b = b.cloud_url(u.clone());
        }
        Ok(b.build()?)
    }
}
