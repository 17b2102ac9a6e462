//! Configuration: command-line flags, `LATCHKEYD_*` environment variables and an optional TOML
//! or YAML file, merged once (flags > environment > file > defaults) and validated into
//! [`Config`]. Every key is listed in `docs/configuration.md`.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use url::Url;

use latchkey_proto::methods;
use std::collections::BTreeMap;

use crate::domain::sealing::SealingKeys;
use crate::federation::config::ClientSecret;
use crate::federation::{self, UpstreamConfig, UpstreamSettings};

/// Settings as given: every field optional. The same struct is parsed from flags/environment
/// (clap) and from the config file (serde), so a key has one name everywhere.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LATCHKEYD_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// URL browsers and CLIs are told to use; the issuer is derived from it [default:
    /// http://<listen>].
    #[arg(long, env = "LATCHKEYD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Database: `sqlite://path` (created if missing) or `postgres://...` [default:
    /// sqlite://latchkey.db].
    #[arg(long, env = "LATCHKEYD_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Most database connections this process opens [default: 16 for PostgreSQL, 8 for
    /// SQLite].
    #[arg(long, env = "LATCHKEYD_DATABASE_MAX_CONNECTIONS", value_name = "N")]
    pub database_max_connections: Option<u32>,
    /// Access token lifetime in seconds [default: 3600].
    #[arg(long, env = "LATCHKEYD_ACCESS_TOKEN_TTL", value_name = "SECS")]
    pub access_token_ttl: Option<u64>,
    /// Refresh token idle lifetime in seconds: a session unused this long ends [default:
    /// 2592000, 30 days].
    #[arg(long, env = "LATCHKEYD_REFRESH_TOKEN_TTL", value_name = "SECS")]
    pub refresh_token_ttl: Option<u64>,
    /// Seconds after a rotation during which the spent refresh token still gets the same new
    /// token (a client retrying after a lost response); 0 turns it off [default: 30].
    #[arg(long, env = "LATCHKEYD_REFRESH_GRACE_PERIOD", value_name = "SECS")]
    pub refresh_grace_period: Option<u64>,
    /// Device code lifetime in seconds [default: 600].
    #[arg(long, env = "LATCHKEYD_DEVICE_CODE_TTL", value_name = "SECS")]
    pub device_code_ttl: Option<u64>,
    /// Most device sign-ins waiting at once; more are refused until some finish [default:
    /// 10000]. With `user_code_global_failures` it bounds the chance of guessing a code (see
    /// docs/security.md).
    #[arg(long, env = "LATCHKEYD_MAX_PENDING_DEVICE_CODES", value_name = "N")]
    pub max_pending_device_codes: Option<u32>,
    /// Characters of user codes: 8, 12 or 16 [default: 8]. Longer codes are much harder to
    /// guess (docs/security.md); links with the code included spare users the typing.
    #[arg(long, env = "LATCHKEYD_USER_CODE_LENGTH", value_name = "N")]
    pub user_code_length: Option<usize>,
    /// Wrong user-code entries allowed per 10 minutes on the whole server [default: 600].
    #[arg(long, env = "LATCHKEYD_USER_CODE_GLOBAL_FAILURES", value_name = "N")]
    pub user_code_global_failures: Option<u32>,
    /// Token-endpoint requests per minute per client and IP; 0 turns the limit off [default:
    /// 600].
    #[arg(long, env = "LATCHKEYD_TOKEN_RATE_LIMIT", value_name = "N")]
    pub token_rate_limit: Option<u32>,
    /// Minimum device polling interval in seconds [default: 5].
    #[arg(long, env = "LATCHKEYD_DEVICE_POLL_INTERVAL", value_name = "SECS")]
    pub device_poll_interval: Option<u64>,
    /// Web sign-in lifetime in seconds [default: 1209600, 14 days].
    #[arg(long, env = "LATCHKEYD_WEB_SESSION_TTL", value_name = "SECS")]
    pub web_session_ttl: Option<u64>,
    /// `aud` of access tokens: the API that accepts them [default: the public URL].
    #[arg(long, env = "LATCHKEYD_AUDIENCE", value_name = "URI")]
    pub audience: Option<String>,
    /// Oldest CLI version allowed; older CLIs get 426 Upgrade Required.
    #[arg(long, env = "LATCHKEYD_MIN_CLI_VERSION", value_name = "SEMVER")]
    pub min_cli_version: Option<String>,
    /// Where users download the CLI.
    #[arg(long, env = "LATCHKEYD_DOWNLOAD_URL", value_name = "URL")]
    pub download_url: Option<String>,
    /// Direct download of the CLI for one platform, with `{os}` (linux, macos, windows) and
    /// `{arch}` (x86_64, arm64) filled in from the visitor's browser; the connect page's
    /// "Download for your platform" button.
    #[arg(long, env = "LATCHKEYD_DOWNLOAD_ASSET_URL", value_name = "URL")]
    pub download_asset_url: Option<String>,
    /// Whether anyone may create an account on /signup [default: true].
    #[arg(long, env = "LATCHKEYD_ALLOW_SIGNUP", value_name = "BOOL")]
    pub allow_signup: Option<bool>,
    /// Login methods offered to CLIs, comma separated, preferred first: browser, device,
    /// password, anonymous. A method not listed is refused by the server too [default:
    /// browser,device,password].
    #[arg(
        long,
        env = "LATCHKEYD_LOGIN_METHODS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub login_methods: Option<Vec<String>>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "LATCHKEYD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Password hashes computed at once; further sign-ins wait, and are refused when too many
    /// wait [default: number of CPUs].
    #[arg(long, env = "LATCHKEYD_HASH_CONCURRENCY", value_name = "N")]
    pub hash_concurrency: Option<usize>,
    /// Anonymous users whose sessions were all unused this long are deleted, seconds
    /// [default: 2592000, 30 days].
    #[arg(long, env = "LATCHKEYD_ANONYMOUS_IDLE_TTL", value_name = "SECS")]
    pub anonymous_idle_ttl: Option<u64>,
    /// Program run for each invitation, to deliver it (e.g. by mail); it gets
    /// LATCHKEY_INVITE_EMAIL, LATCHKEY_INVITE_ORG, LATCHKEY_INVITE_ROLE and LATCHKEY_INVITE_LINK
    /// in its environment. Without it, the inviter is shown the link to pass on.
    #[arg(long, env = "LATCHKEYD_INVITE_HOOK", value_name = "PROGRAM")]
    pub invite_hook: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed, comma separated addresses or CIDR
    /// ranges (`10.0.0.0/8,::1`); from anyone else the header is ignored [default: none].
    #[arg(
        long,
        env = "LATCHKEYD_TRUSTED_PROXIES",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Automatic signing key rotation: a new key every this many seconds; 0 turns it off
    /// [default: 7776000, 90 days].
    #[arg(long, env = "LATCHKEYD_KEY_ROTATION_INTERVAL", value_name = "SECS")]
    pub key_rotation_interval: Option<u64>,
    /// How long a new signing key is published before it signs, seconds; at least
    /// `key_reload_interval` [default: 900].
    #[arg(long, env = "LATCHKEYD_KEY_ACTIVATION_DELAY", value_name = "SECS")]
    pub key_activation_delay: Option<u64>,
    /// How often each replica reloads signing keys from the database (and checks the rotation
    /// schedule), seconds [default: 60].
    #[arg(long, env = "LATCHKEYD_KEY_RELOAD_INTERVAL", value_name = "SECS")]
    pub key_reload_interval: Option<u64>,
    /// Whether `serve` applies pending database migrations at start; when false it refuses to
    /// start on an outdated schema (run `latchkeyd migrate`) [default: true].
    #[arg(long, env = "LATCHKEYD_AUTO_MIGRATE", value_name = "BOOL")]
    pub auto_migrate: Option<bool>,
    /// DNS servers asked when verifying organizations' email domains, comma separated
    /// `IP` or `IP:PORT` [default: the nameservers of /etc/resolv.conf].
    #[arg(
        long,
        env = "LATCHKEYD_DNS_RESOLVERS",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub dns_resolvers: Option<Vec<String>>,
    /// Let organizations' own single sign-on use loopback, private or link-local addresses
    /// (and http:// on loopback); for development and tests only: it lets any organization
    /// owner make the server send requests into its own network [default: false].
    #[arg(
        long,
        env = "LATCHKEYD_ORG_SSO_ALLOW_PRIVATE_NETWORKS",
        value_name = "BOOL"
    )]
    pub org_sso_allow_private_networks: Option<bool>,
    /// File holding the secret key that seals organizations' single sign-on client secrets in
    /// the database (`latchkeyd secrets generate-key` makes one; during a rotation the new key
    /// on the first line, old ones below). Or the key itself in `LATCHKEYD_SECRET_KEY`.
    /// Without a key, organizations can only use public clients [default: none].
    #[arg(long, env = "LATCHKEYD_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// The secret key itself, from `LATCHKEYD_SECRET_KEY` only (never a flag, which other
    /// users can see, nor the settings file).
    #[arg(skip)]
    #[serde(skip)]
    pub secret_key: Option<ClientSecret>,
    /// Upstream identity providers, `[upstream.ID]` tables of the settings file, or
    /// `LATCHKEYD_UPSTREAM_<ID>_<KEY>` variables (docs/federation.md).
    #[arg(skip)]
    pub upstream: Option<BTreeMap<String, UpstreamSettings>>,
}

impl Settings {
    /// Fills every unset field from `other` (lower precedence).
    pub fn or(self, other: Settings) -> Settings {
        Settings {
            listen: self.listen.or(other.listen),
            public_url: self.public_url.or(other.public_url),
            database_url: self.database_url.or(other.database_url),
            database_max_connections: self
                .database_max_connections
                .or(other.database_max_connections),
            access_token_ttl: self.access_token_ttl.or(other.access_token_ttl),
            refresh_token_ttl: self.refresh_token_ttl.or(other.refresh_token_ttl),
            refresh_grace_period: self.refresh_grace_period.or(other.refresh_grace_period),
            device_code_ttl: self.device_code_ttl.or(other.device_code_ttl),
            device_poll_interval: self.device_poll_interval.or(other.device_poll_interval),
            max_pending_device_codes: self
                .max_pending_device_codes
                .or(other.max_pending_device_codes),
            user_code_global_failures: self
                .user_code_global_failures
                .or(other.user_code_global_failures),
            token_rate_limit: self.token_rate_limit.or(other.token_rate_limit),
            user_code_length: self.user_code_length.or(other.user_code_length),
            web_session_ttl: self.web_session_ttl.or(other.web_session_ttl),
            audience: self.audience.or(other.audience),
            min_cli_version: self.min_cli_version.or(other.min_cli_version),
            download_url: self.download_url.or(other.download_url),
            download_asset_url: self.download_asset_url.or(other.download_asset_url),
            allow_signup: self.allow_signup.or(other.allow_signup),
            login_methods: self.login_methods.or(other.login_methods),
            log_format: self.log_format.or(other.log_format),
            hash_concurrency: self.hash_concurrency.or(other.hash_concurrency),
            anonymous_idle_ttl: self.anonymous_idle_ttl.or(other.anonymous_idle_ttl),
            invite_hook: self.invite_hook.or(other.invite_hook),
            trusted_proxies: self.trusted_proxies.or(other.trusted_proxies),
            key_rotation_interval: self.key_rotation_interval.or(other.key_rotation_interval),
            key_activation_delay: self.key_activation_delay.or(other.key_activation_delay),
            key_reload_interval: self.key_reload_interval.or(other.key_reload_interval),
            auto_migrate: self.auto_migrate.or(other.auto_migrate),
            dns_resolvers: self.dns_resolvers.or(other.dns_resolvers),
            org_sso_allow_private_networks: self
                .org_sso_allow_private_networks
                .or(other.org_sso_allow_private_networks),
            secret_key_file: self.secret_key_file.or(other.secret_key_file),
            secret_key: self.secret_key.or(other.secret_key),
            upstream: federation::config::merge(self.upstream, other.upstream),
        }
    }

    /// What only the environment can give: upstream providers from
    /// `LATCHKEYD_UPSTREAM_<ID>_<KEY>` variables and the secret key from `LATCHKEYD_SECRET_KEY`.
    pub fn from_env_only() -> Result<Settings, ConfigError> {
        Ok(Settings {
            upstream: federation::config::from_env(std::env::vars())?,
            secret_key: std::env::var("LATCHKEYD_SECRET_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty())
                .map(ClientSecret::new),
            ..Settings::default()
        })
    }

    /// Reads a settings file; the format follows the extension (`.toml`, `.yaml`/`.yml`).
    pub fn from_file(path: &std::path::Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let parsed = match ext {
            "toml" => toml::from_str(&text).map_err(|e| toml_error(&text, &e)),
            "yaml" | "yml" => yaml_serde::from_str(&text).map_err(|e| e.to_string()),
            _ => Err("the file name must end in .toml, .yaml or .yml".to_owned()),
        };
        parsed.map_err(|reason| ConfigError::File {
            path: path.to_owned(),
            reason,
        })
    }
}

/// A TOML error as its position and message, without the snippet of the file that toml's own
/// text quotes: that line may hold a secret written where it does not belong.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The public URL, when set; otherwise derived from the bound address at start.
    pub public_url: Option<Url>,
    /// Database URL.
    pub database_url: String,
    /// Engine selected by the database URL.
    pub backend: Backend,
    /// Pool size of this process.
    pub database_max_connections: u32,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh token idle lifetime, seconds.
    pub refresh_token_ttl: i64,
    /// Refresh retry grace window, seconds.
    pub refresh_grace_period: i64,
    /// Device code lifetime, seconds.
    pub device_code_ttl: i64,
    /// Device polling interval, seconds.
    pub device_poll_interval: i64,
    /// Pending device sign-ins allowed at once.
    pub max_pending_device_codes: u32,
    /// Wrong user-code entries per 10 minutes, server-wide.
    pub user_code_global_failures: u32,
    /// Characters of user codes.
    pub user_code_length: usize,
    /// Token requests per minute per client and IP (0: off).
    pub token_rate_limit: u32,
    /// Web session lifetime, seconds.
    pub web_session_ttl: i64,
    /// Access token audience; `None` means the public URL.
    pub audience: Option<String>,
    /// Minimum CLI version (validated `MAJOR.MINOR.PATCH`).
    pub min_cli_version: Option<String>,
    /// CLI download URL.
    pub download_url: Option<String>,
    /// Per-platform download URL template.
    pub download_asset_url: Option<String>,
    /// Whether /signup is open.
    pub allow_signup: bool,
    /// Login methods offered to CLIs.
    pub login_methods: Vec<String>,
    /// Emit JSON logs.
    pub json_logs: bool,
    /// Concurrent password hashes.
    pub hash_concurrency: usize,
    /// Idle time after which anonymous users are deleted, seconds.
    pub anonymous_idle_ttl: i64,
    /// Program that delivers invitations.
    pub invite_hook: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds between automatic key rotations; 0 when off.
    pub key_rotation_interval: i64,
    /// Seconds a new key is published before it signs.
    pub key_activation_delay: i64,
    /// Seconds between key reloads.
    pub key_reload_interval: i64,
    /// Whether `serve` migrates at start.
    pub auto_migrate: bool,
    /// DNS servers for domain verification; empty means the system's.
    pub dns_resolvers: Vec<SocketAddr>,
    /// Whether organizations' SSO may use http:// and non-public addresses.
    pub org_sso_allow_private_networks: bool,
    /// Keys sealing organizations' client secrets; empty when none is configured.
    pub sealing_keys: SealingKeys,
    /// Upstream identity providers, in id order.
    pub upstreams: Vec<UpstreamConfig>,
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`, or a single
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(raw: &str) -> Result<IpNet, String> {
        let raw = raw.trim();
        let (a, p) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{raw}` is not an IP address or CIDR range like 10.0.0.0/8"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{raw}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
            let keep = u32::from(prefix).min(width);
            if keep == 0 { 0 } else { bits >> (width - keep) }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), 32, self.prefix)
                    == masked(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is invalid.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Why, and what to do.
        reason: String,
    },
    /// The settings file could not be read or parsed.
    #[error("cannot use config file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn secs(key: &'static str, v: Option<u64>, default: u64, min: u64) -> Result<i64, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min || v > 10 * 365 * 86_400 {
        return Err(invalid(
            key,
            format!("{v} is out of range (at least {min} seconds)"),
        ));
    }
    i64::try_from(v).map_err(|_| invalid(key, "too large"))
}

/// Parses `MAJOR.MINOR.PATCH` (a leading `v` and a `-pre` suffix are tolerated).
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().unwrap_or("0").parse().ok()?;
    let patch = it.next().unwrap_or("0").parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

impl Config {
    /// Whether a login method is enabled.
    pub fn method_enabled(&self, method: &str) -> bool {
        self.login_methods.iter().any(|m| m == method)
    }

    /// Validates merged settings.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let listen_raw = s.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen_raw}` is not an address like 127.0.0.1:8080"),
            )
        })?;
        let public_url = match s.public_url {
            None => None,
            Some(raw) => {
                let u =
                    Url::parse(&raw).map_err(|e| invalid("public_url", format!("`{raw}`: {e}")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
                    return Err(invalid("public_url", "must be an http:// or https:// URL"));
                }
                if u.query().is_some() || u.fragment().is_some() {
                    return Err(invalid("public_url", "must not have a query or fragment"));
                }
                Some(u)
            }
        };
        let database_url = s
            .database_url
            .unwrap_or_else(|| "sqlite://latchkey.db".into());
        let backend = if database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Backend::Postgres
        } else {
            return Err(invalid(
                "database_url",
                "use sqlite://PATH (for example sqlite://latchkey.db) or postgres://USER@HOST/DB",
            ));
        };
        let database_max_connections = s.database_max_connections.unwrap_or(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        });
        if database_max_connections == 0 || database_max_connections > 1000 {
            return Err(invalid(
                "database_max_connections",
                "must be between 1 and 1000",
            ));
        }
        let min_cli_version = match s.min_cli_version {
            Some(v) if parse_version(&v).is_none() => {
                return Err(invalid(
                    "min_cli_version",
                    format!("`{v}` is not a version like 1.2.3"),
                ));
            }
            other => other,
        };
        let login_methods = s.login_methods.unwrap_or_else(|| {
            [methods::BROWSER, methods::DEVICE, methods::PASSWORD]
                .map(str::to_owned)
                .to_vec()
        });
        let known = [
            methods::BROWSER,
            methods::DEVICE,
            methods::PASSWORD,
            methods::ANONYMOUS,
        ];
        for m in &login_methods {
            if !known.contains(&m.as_str()) {
                return Err(invalid(
                    "login_methods",
                    format!(
                        "unknown or unavailable method `{m}`; available: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        if login_methods.is_empty() {
            return Err(invalid("login_methods", "enable at least one method"));
        }
        let json_logs = match s.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(invalid(
                    "log_format",
                    format!("`{other}`: use text or json"),
                ));
            }
        };
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hash_concurrency = s.hash_concurrency.unwrap_or(cpus);
        if hash_concurrency == 0 || hash_concurrency > 256 {
            return Err(invalid("hash_concurrency", "must be between 1 and 256"));
        }
        let trusted_proxies = s
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| IpNet::parse(p).map_err(|e| invalid("trusted_proxies", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let key_rotation_interval = match s.key_rotation_interval {
            Some(0) => 0,
            other => secs("key_rotation_interval", other, 90 * 86_400, 3600)?,
        };
        let key_reload_interval = secs("key_reload_interval", s.key_reload_interval, 60, 1)?;
        let key_activation_delay = secs("key_activation_delay", s.key_activation_delay, 900, 0)?;
        if key_activation_delay < key_reload_interval {
            return Err(invalid(
                "key_activation_delay",
                format!(
                    "{key_activation_delay} is shorter than key_reload_interval \
                     ({key_reload_interval}): a replica could sign with a key the others have \
                     not loaded yet"
                ),
            ));
        }
        if key_rotation_interval != 0 && key_rotation_interval <= key_activation_delay {
            return Err(invalid(
                "key_rotation_interval",
                "must be longer than key_activation_delay (or 0 to turn rotation off)",
            ));
        }
        Ok(Config {
            listen,
            public_url,
            database_url,
            backend,
            database_max_connections,
            access_token_ttl: secs("access_token_ttl", s.access_token_ttl, 3600, 10)?,
            refresh_token_ttl: secs("refresh_token_ttl", s.refresh_token_ttl, 30 * 86_400, 60)?,
            refresh_grace_period: match s.refresh_grace_period.unwrap_or(30) {
                v @ 0..=300 => i64::try_from(v).unwrap_or(30),
                v => {
                    return Err(invalid(
                        "refresh_grace_period",
                        format!("{v} is out of range (0 to 300 seconds)"),
                    ));
                }
            },
            device_code_ttl: secs("device_code_ttl", s.device_code_ttl, 600, 30)?,
            device_poll_interval: secs("device_poll_interval", s.device_poll_interval, 5, 1)?,
            max_pending_device_codes: match s.max_pending_device_codes.unwrap_or(10_000) {
                0 => return Err(invalid("max_pending_device_codes", "must be at least 1")),
                n => n,
            },
            user_code_global_failures: match s.user_code_global_failures.unwrap_or(600) {
                0 => return Err(invalid("user_code_global_failures", "must be at least 1")),
                n => n,
            },
            token_rate_limit: s.token_rate_limit.unwrap_or(600),
            user_code_length: match s.user_code_length.unwrap_or(8) {
                n if latchkey_proto::device::USER_CODE_LENGTHS.contains(&n) => n,
                n => return Err(invalid("user_code_length", format!("{n}: use 8, 12 or 16"))),
            },
            web_session_ttl: secs("web_session_ttl", s.web_session_ttl, 14 * 86_400, 60)?,
            audience: s.audience,
            min_cli_version,
            download_url: s.download_url,
            download_asset_url: s.download_asset_url,
            allow_signup: s.allow_signup.unwrap_or(true),
            login_methods,
            json_logs,
            hash_concurrency,
            invite_hook: s.invite_hook,
            anonymous_idle_ttl: secs("anonymous_idle_ttl", s.anonymous_idle_ttl, 30 * 86_400, 60)?,
            trusted_proxies,
            key_rotation_interval,
            key_activation_delay,
            key_reload_interval,
            auto_migrate: s.auto_migrate.unwrap_or(true),
            dns_resolvers: s
                .dns_resolvers
                .unwrap_or_default()
                .iter()
                .filter(|r| !r.trim().is_empty())
                .map(|r| {
                    let r = r.trim();
                    r.parse::<SocketAddr>()
                        .or_else(|_| r.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                        .map_err(|_| {
                            invalid(
                                "dns_resolvers",
                                format!("`{r}` is not an IP address or IP:PORT"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            org_sso_allow_private_networks: s.org_sso_allow_private_networks.unwrap_or(false),
            sealing_keys: sealing_keys(s.secret_key, s.secret_key_file)?,
            upstreams: federation::config::validate_all(s.upstream)?,
        })
    }

    /// Defaults, for tests and embedding: a SQLite database at `database_url`, port 0.
    pub fn for_database(database_url: impl Into<String>) -> Config {
        #[allow(clippy::expect_used)]
        Config::from_settings(Settings {
            listen: Some("127.0.0.1:0".into()),
            database_url: Some(database_url.into()),
            ..Settings::default()
        })
        .expect("default settings are valid")
    }
}

/// The sealing keys from `LATCHKEYD_SECRET_KEY` or `secret_key_file` (not both).
fn sealing_keys(
    key: Option<ClientSecret>,
    file: Option<PathBuf>,
) -> Result<SealingKeys, ConfigError> {
    let which = if key.is_some() {
        "LATCHKEYD_SECRET_KEY"
    } else {
        "secret_key_file"
    };
    let text = match (key, file) {
        (None, None) => return Ok(SealingKeys::default()),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "secret_key_file",
                "LATCHKEYD_SECRET_KEY is set too; give the key one way only",
            ));
        }
        (Some(k), None) => k.expose().to_owned(),
        (None, Some(path)) if SealingKeys::parse(&path.to_string_lossy()).is_ok() => {
            // The key itself where its file's name belongs: say so without printing it.
            return Err(invalid(
                "secret_key_file",
                "this is a key, not a file name: write the key into a file and name that file, \
                 or give the key in LATCHKEYD_SECRET_KEY",
            ));
        }
        (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                "secret_key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?,
    };
    SealingKeys::parse(&text).map_err(|e| invalid(which, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_settings(Settings::default()).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://latchkey.db");
        assert_eq!(c.access_token_ttl, 3600);
        assert_eq!(c.device_code_ttl, 600);
        assert_eq!(c.device_poll_interval, 5);
        assert_eq!(c.login_methods, vec!["browser", "device", "password"]);
    }

    #[test]
    fn precedence_flags_over_file() {
        let flags = Settings {
            listen: Some("127.0.0.1:9000".into()),
            ..Settings::default()
        };
        let file: Settings =
            toml::from_str("listen = \"0.0.0.0:1\"\naccess_token_ttl = 60\n").expect("toml");
        let merged = flags.or(file);
        assert_eq!(merged.listen.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(merged.access_token_ttl, Some(60));
    }

    #[test]
    fn yaml_and_unknown_keys() {
        let y: Settings =
            yaml_serde::from_str("public_url: https://auth.example.com\n").expect("yaml");
        assert_eq!(y.public_url.as_deref(), Some("https://auth.example.com"));
        assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
    }

    #[test]
    fn bad_values_are_explained() {
        let bad = |s: Settings| Config::from_settings(s).expect_err("invalid").to_string();
        assert!(
            bad(Settings {
                listen: Some("nope".into()),
                ..Default::default()
            })
            .contains("listen")
        );
        assert!(
            bad(Settings {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            })
            .contains("sqlite://")
        );
        assert!(
            bad(Settings {
                public_url: Some("ftp://x".into()),
                ..Default::default()
            })
            .contains("http")
        );
        assert!(
            bad(Settings {
                min_cli_version: Some("banana".into()),
                ..Default::default()
            })
            .contains("version")
        );
        assert!(
            bad(Settings {
                access_token_ttl: Some(1),
                ..Default::default()
            })
            .contains("access_token_ttl")
        );
        assert!(
            bad(Settings {
                login_methods: Some(vec!["carrier-pigeon".into()]),
                ..Default::default()
            })
            .contains("carrier-pigeon")
        );
        let pg = Config::from_settings(Settings {
            database_url: Some("postgres://u@h/db".into()),
            ..Default::default()
        })
        .expect("accepted");
        assert_eq!(pg.backend, Backend::Postgres);
    }

    #[test]
    fn ip_networks() {
        let n = IpNet::parse("10.0.0.0/8").expect("v4 net");
        assert!(n.contains("10.1.2.3".parse().expect("ip")));
        assert!(n.contains("::ffff:10.9.9.9".parse().expect("mapped")));
        assert!(!n.contains("11.0.0.1".parse().expect("ip")));
        let one = IpNet::parse("127.0.0.1").expect("single");
        assert!(one.contains("127.0.0.1".parse().expect("ip")));
        assert!(!one.contains("127.0.0.2".parse().expect("ip")));
        let v6 = IpNet::parse("2001:db8::/32").expect("v6 net");
        assert!(v6.contains("2001:db8:1::7".parse().expect("ip")));
        assert!(!v6.contains("2001:db9::1".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .expect("all")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("proxy.example.com").is_err());
    }

    #[test]
    fn key_schedule_settings() {
        let c = Config::from_settings(Settings::default()).expect("defaults");
        assert_eq!(c.key_rotation_interval, 90 * 86_400);
        assert_eq!(c.key_activation_delay, 900);
        assert_eq!(c.key_reload_interval, 60);
        assert!(c.auto_migrate);
        assert!(c.trusted_proxies.is_empty());
        let off = Config::from_settings(Settings {
            key_rotation_interval: Some(0),
            trusted_proxies: Some(vec!["10.0.0.0/8".into(), "::1".into()]),
            ..Default::default()
        })
        .expect("off");
        assert_eq!(off.key_rotation_interval, 0);
        assert_eq!(off.trusted_proxies.len(), 2);
        let err = Config::from_settings(Settings {
            key_activation_delay: Some(10),
            key_reload_interval: Some(60),
            ..Default::default()
        })
        .expect_err("delay shorter than reload");
        assert!(err.to_string().contains("key_activation_delay"), "{err}");
        let err = Config::from_settings(Settings {
            trusted_proxies: Some(vec!["nope".into()]),
            ..Default::default()
        })
        .expect_err("bad proxy");
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.2.3"), Some((1, 2, 3)));
        assert_eq!(parse_version("v2.0"), Some((2, 0, 0)));
        assert_eq!(parse_version("0.1.0-beta.1"), Some((0, 1, 0)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn settings_file_errors_do_not_quote_the_file() {
        let dir = std::env::temp_dir().join(format!("lk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in [
            (
                "a.toml",
                "listen = \"127.0.0.1:1\"\nsecret_key = \"hunter2hunter2\"\n",
            ),
            (
                "b.toml",
                "[upstream.x]\nclient_id = \"c\"\nclient_secret = \"hunter2hunter2\"\n",
            ),
            ("c.yaml", "secret_key: hunter2hunter2\n"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            let e = Settings::from_file(&path).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{name}: {e}");
            assert!(e.contains("unknown field"), "{name}: {e}");
            if name.ends_with(".toml") {
                assert!(
                    e.contains("line 2, column 1") || e.contains("line 3, column 1"),
                    "{e}"
                );
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn secret_key_from_the_environment_or_a_file() {
        let key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let none = Config::from_settings(Settings::default()).unwrap();
        assert!(none.sealing_keys.is_empty());
        let env = Config::from_settings(Settings {
            secret_key: Some(ClientSecret::new(key)),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(env.sealing_keys.ids().len(), 1);
        assert!(!format!("{env:?}").contains(key));
        let path = std::env::temp_dir().join(format!("lk-secret-key-{}", std::process::id()));
        std::fs::write(&path, format!("{}\n{key}\n", "ab".repeat(32))).unwrap();
        let file = Config::from_settings(Settings {
            secret_key_file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(file.sealing_keys.ids().len(), 2);
        assert_eq!(file.sealing_keys.ids()[1], env.sealing_keys.ids()[0]);
        let both = Config::from_settings(Settings {
            secret_key: Some(ClientSecret::new(key)),
            secret_key_file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(both.contains("one way only"), "{both}");
        std::fs::remove_file(&path).ok();
        let bad = Config::from_settings(Settings {
            secret_key: Some(ClientSecret::new("hunter2hunter2")),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("LATCHKEYD_SECRET_KEY") && !bad.contains("hunter2"),
            "{bad}"
        );
        let missing = Config::from_settings(Settings {
            secret_key_file: Some("/nonexistent/latchkey.key".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("cannot read /nonexistent/latchkey.key"),
            "{missing}"
        );
        let misplaced = Config::from_settings(Settings {
            secret_key_file: Some(key.into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            misplaced.contains("not a file name") && !misplaced.contains(key),
            "{misplaced}"
        );
    }
}
