//! The command line as clap types, and nothing else: parsing only, no behaviour. `settings.rs`
//! turns these into what the commands run with.

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

const EXAMPLES: &str = "\
Examples:
  latchkey config set cloud.url https://cloud.example.com
  latchkey login                  # approve a code in the browser
  latchkey whoami                 # who am I, and is the session still good?
  curl -H \"Authorization: Bearer $(latchkey token)\" https://cloud.example.com/v1/me
  latchkey logout

Environment:
  LATCHKEY_CONFIG_DIR   config directory (default $XDG_CONFIG_HOME/latchkey or ~/.config/latchkey)
  LATCHKEY_TOKEN        use this access token instead of the stored session
  LATCHKEY_API_KEY      API key for automation (overrides cloud.api_key)
  LATCHKEY_NO_BROWSER   never open a browser (like --no-browser)
  NO_COLOR              disable colors";

const LOGIN_EXAMPLES: &str = "\
Examples:
  latchkey login                                  # discover everything from cloud.url
  latchkey login --no-browser                     # over SSH: open the URL on another device
  latchkey login --name build-box --local         # credentials only for this directory tree
  latchkey login --auth-url https://id.example.com/realms/dev --client-id my-cli --scope 'openid offline_access'";

/// Sign in to your cloud from the command line.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in: show a code, approve it in the browser, store the session.
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(LoginArgs),
    /// Show who is signed in, after checking the session with the server.
    Whoami(WhoamiArgs),
    /// Sign out: end the session at the server and delete the local credentials.
    Logout(LogoutArgs),
    /// Print a valid access token on stdout (refreshing it first if needed), for scripts.
    #[command(
        after_help = "Example:\n  curl -H \"Authorization: Bearer $(latchkey token)\" https://cloud.example.com/v1/me"
    )]
    Token,
    /// Read and change config.yaml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  latchkey completions bash > ~/.local/share/bash-completion/completions/latchkey\n  latchkey completions zsh > \"${fpath[1]}/_latchkey\"\n  latchkey completions fish > ~/.config/fish/completions/latchkey.fish"
    )]
    Completions {
        /// The shell.
        shell: Shell,
    },
}

/// `latchkey login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Do not open a browser; print the URL and code only (for SSH and headless machines).
    #[arg(long, env = "LATCHKEY_NO_BROWSER", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_browser: bool,
    /// The authorization server (issuer) to use instead of discovering it from cloud.url.
    #[arg(long, value_name = "URL")]
    pub auth_url: Option<String>,
    /// The OAuth client id to use instead of discovering it.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The OAuth scope to request.
    #[arg(long)]
    pub scope: Option<String>,
    /// A name for this session, shown on your account page (default: this machine's host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Store the credentials in ./.latchkey/ (with a .gitignore), used in this directory tree.
    #[arg(long)]
    pub local: bool,
}

/// `latchkey whoami`.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `latchkey logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// `latchkey config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Open config.yaml in $VISUAL or $EDITOR; the result is checked before it is saved.
    Edit,
    /// Print the value of a key (cloud.url, cloud.api_key, auth.url, auth.client_id, auth.scope, auth.default_method).
    Get {
        /// The dotted key.
        key: String,
    },
    /// Set a key.
    #[command(after_help = "Example:\n  latchkey config set cloud.url https://cloud.example.com")]
    Set {
        /// The dotted key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove a key.
    Unset {
        /// The dotted key.
        key: String,
    },
    /// Print the path of config.yaml.
    Path,
    /// Print config.yaml (cloud.api_key redacted).
    #[command(visible_alias = "list")]
    Show,
}
