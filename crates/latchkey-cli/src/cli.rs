//! The command line as clap types, and nothing else: parsing only, no behaviour. `settings.rs`
//! turns these into what the commands run with.

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

const EXAMPLES: &str = "\
Examples:
  latchkey config set cloud.url https://cloud.example.com
  latchkey login                  # sign in: browser, code, email or anonymous
  latchkey whoami                 # who am I, and is the session still good?
  curl -H \"Authorization: Bearer $(latchkey token)\" https://cloud.example.com/v1/me
  latchkey logout

Environment:
  LATCHKEY_CONFIG_DIR   config directory (default $XDG_CONFIG_HOME/latchkey or ~/.config/latchkey)
  LATCHKEY_TOKEN        use this access token instead of the stored session
  LATCHKEY_API_KEY      API key for automation (overrides cloud.api_key and the stored login)
  LATCHKEY_CLOUD_URL    cloud URL (overrides cloud.url), e.g. for CI without a config file
  LATCHKEY_QR           auto, always or never: the QR code `latchkey login` shows
  LATCHKEY_NO_BROWSER   never open a browser (like --no-browser)
  NO_COLOR              disable colors";

const LOGIN_EXAMPLES: &str = "\
Examples:
  latchkey login                                  # pick a method (or the configured default)
  latchkey login --web                            # sign in in the browser, which comes back here
  latchkey login --device --no-browser            # over SSH: approve a code on another device
  latchkey login --email you@example.com          # email and password, asked without echo
  printf '%s\\n' \"$PW\" | latchkey login --email you@example.com --password-stdin
  latchkey login --anonymous                      # try it without an account; sign in later
  latchkey login --name build-box --local         # credentials only for this directory tree
  latchkey login --status                         # who is signed in here, without the network
  latchkey login --auth-url https://id.example.com/realms/dev --client-id my-cli --scope 'openid offline_access'

Without a method flag, a terminal offers the methods the server enables; without a terminal the
configured auth.default_method is used, else the device flow. In CI (CI is set) --web is refused:
use an API key (LATCHKEY_API_KEY) for automation.

Environment:
  LATCHKEY_LOGIN_TIMEOUT  seconds to wait for the browser with --web (default 300)";

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
    /// Sign in: in the browser, with a code, with email and password, or anonymously.
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
    /// List your login sessions (this one marked), or end one.
    #[command(after_help = SESSIONS_EXAMPLES)]
    Sessions(SessionsArgs),
    /// List your organizations (the active one marked), or switch the active one.
    #[command(after_help = ORGS_EXAMPLES)]
    Orgs(OrgsArgs),
    /// Create, list and revoke API keys for CI and scripts.
    #[command(subcommand, name = "api-keys", after_help = API_KEYS_EXAMPLES)]
    ApiKeys(ApiKeysCommand),
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
    /// Sign in in the browser, which comes back to this machine (authorization code + PKCE).
    #[arg(long, visible_alias = "oauth", help_heading = "Method")]
    pub web: bool,
    /// Sign in by approving a short code on any device (works over SSH and in containers).
    #[arg(long, help_heading = "Method")]
    pub device: bool,
    /// Sign in with email and password in the terminal (the address is asked when omitted).
    #[arg(long, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = "", help_heading = "Method")]
    pub email: Option<String>,
    /// Get an anonymous identity, tied to this machine until you sign in (nothing is lost then).
    #[arg(long, help_heading = "Method")]
    pub anonymous: bool,
    /// With --email: read the password from standard input (first line), for scripts.
    #[arg(long, requires = "email", conflicts_with = "password")]
    pub password_stdin: bool,
    /// With --email: the password. It lands in your shell history; prefer the prompt or
    /// --password-stdin.
    #[arg(long, value_name = "PASSWORD", requires = "email")]
    pub password: Option<String>,
    /// Replace an existing login without asking.
    #[arg(short, long)]
    pub force: bool,
    /// Print the current login (from the credentials file, no network) and exit.
    #[arg(long, conflicts_with_all = ["web", "device", "email", "anonymous", "force"])]
    pub status: bool,
    /// The cloud URL to sign in to, instead of cloud.url (for this command only).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Do not open a browser; print the URL (and code) only, to open on any device.
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

const ORGS_EXAMPLES: &str = "\
Examples:
  latchkey orgs                   # your organizations; * marks the active one
  latchkey orgs switch acme       # make acme active; the next token carries it
  latchkey orgs --json";

const API_KEYS_EXAMPLES: &str = "\
Examples:
  latchkey api-keys create ci-deploy --role member --expires-in-days 90
  latchkey api-keys list
  latchkey api-keys revoke lk_0123456789abcdef

In CI, store the key as a secret and set it as LATCHKEY_API_KEY (with LATCHKEY_CLOUD_URL, no
config file is needed). Precedence: LATCHKEY_TOKEN, then LATCHKEY_API_KEY, then cloud.api_key,
then the stored login.";

/// `latchkey orgs`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OrgsArgs {
    /// What to do; without one, list.
    #[command(subcommand)]
    pub command: Option<OrgsCommand>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `latchkey orgs ...`.
#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// List your organizations; * marks the active one.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Make another organization the active one of this session, without a new login.
    Switch {
        /// The organization: its slug, id or name.
        org: String,
    },
}

/// `latchkey api-keys ...`.
#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key; it is printed once on stdout and cannot be shown again.
    Create(ApiKeyCreateArgs),
    /// List the keys you may manage (never their secrets).
    #[command(visible_alias = "ls")]
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once: tokens obtained with it stop working.
    Revoke {
        /// The key's id (`lk_` and 16 characters, from `latchkey api-keys list`); a whole key
        /// works too (only its id is sent).
        id: String,
    },
}

/// `latchkey api-keys create`.
#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    /// A name to recognise the key by, e.g. ci-deploy.
    pub name: String,
    /// The organization the key acts in (slug or id; default: your active one).
    #[arg(long)]
    pub org: Option<String>,
    /// The key's role, at most your own (default: member, or yours if lower).
    #[arg(long, value_parser = ["owner", "admin", "member", "viewer"])]
    pub role: Option<String>,
    /// Days until the key expires (default: never).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub expires_in_days: Option<u32>,
    /// Print the whole answer as JSON (it includes the key).
    #[arg(long)]
    pub json: bool,
}

const SESSIONS_EXAMPLES: &str = "\
Examples:
  latchkey sessions                       # your sessions; * marks this one
  latchkey sessions --json
  latchkey sessions revoke ses_0123abcd   # end a session, e.g. of a lost laptop

Revoking a session signs out the CLI that holds it at its next refresh (\"Session expired\").
Revoking this CLI's own session is a logout: the local credentials are deleted too.";

/// `latchkey sessions`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SessionsArgs {
    /// What to do; without one, list.
    #[command(subcommand)]
    pub command: Option<SessionsCommand>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `latchkey sessions ...`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List your sessions; * marks this one.
    #[command(visible_alias = "ls")]
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// End a session at once: its refresh token stops working.
    Revoke {
        /// The session's id (from `latchkey sessions`); a unique prefix is enough.
        id: String,
        /// Do not ask before revoking this CLI's own session.
        #[arg(short, long)]
        yes: bool,
    },
}
