//! `latchkeyd`: parse arguments, then serve (the default) or run one operator command against
//! the database: `migrate`, `keys rotate|list`, `users create|disable|enable`, `check-config`.

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use latchkey_server::config::{Config, Settings};
use latchkey_server::domain::accounts;
use latchkey_server::domain::clock::{Clock, SystemClock};
use latchkey_server::domain::keys::{self, KeySet};
use latchkey_server::federation::config::Protocol;
use latchkey_server::state::key_grace;
use latchkey_server::store::{Store, StoreError};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// latchkeyd — sign-in for command-line tools: accounts, OAuth 2.0 device authorization,
/// rotating refresh tokens, on SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(
    name = "latchkeyd",
    version,
    after_help = "Examples:\n  latchkeyd\n  latchkeyd --listen 0.0.0.0:8080 --public-url https://auth.example.com\n  latchkeyd --config /etc/latchkeyd.toml migrate\n  latchkeyd keys rotate\n  latchkeyd users create admin@example.com --password-stdin < password.txt\n\nEvery setting can be given before or after the command, by its LATCHKEYD_* environment\nvariable, or in the config file. See docs/operating.md."
)]
struct Args {
    /// Settings file (.toml, .yaml or .yml); flags and environment override it.
    #[arg(long, env = "LATCHKEYD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the server until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply pending database migrations and exit (safe while other replicas run or migrate).
    Migrate,
    /// Signing keys: rotate, list.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Accounts: create, disable, enable.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Organizations' email domains: verify one without DNS (the operator vouches for it).
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// The secret key that seals organizations' client secrets: make one, reseal with it.
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// Validate the settings and print the effective configuration (database password and
    /// client secrets hidden) and the upstream identity providers.
    CheckConfig {
        /// Also connect to the database and report its migrations, and fetch each upstream
        /// provider's discovery document.
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCmd {
    /// Print a new random key (64 hex characters) for `secret_key_file` or
    /// `LATCHKEYD_SECRET_KEY`.
    GenerateKey,
    /// Seal every stored client secret again with the first key, so older keys can be
    /// removed from the key file afterwards.
    Reseal,
}

#[derive(Debug, Subcommand)]
enum OrgsCmd {
    /// Mark a domain the organization claimed on its page as verified, instead of the DNS
    /// TXT record (for domains you, the operator, know belong to it).
    VerifyDomain {
        /// Organization slug.
        org: String,
        /// Email domain, as added on the organization's page.
        domain: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Add a new signing key: published in the JWKS at once, signing after
    /// `key_activation_delay`; the current key then retires once its tokens have expired.
    Rotate {
        /// Sign with the new key at once (after a suspected key compromise). Replicas that have
        /// not reloaded keys yet reject its tokens for up to `key_reload_interval`.
        #[arg(long)]
        now: bool,
    },
    /// List the signing keys and their schedule.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCmd {
    /// Create an account (with its personal organization).
    Create {
        /// Email address (the sign-in name).
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of stdin; without it a random password is
        /// generated and printed once.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it can no longer sign in, and its sessions and web sign-ins end now.
    Disable {
        /// Email address.
        email: String,
    },
    /// Re-enable a disabled account (its ended sessions stay ended).
    Enable {
        /// Email address.
        email: String,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Args {
    // Settings are accepted before and after the command (`latchkeyd migrate --database-url ..`).
    let cmd = Args::command().mut_args(|a| a.global(true));
    let matches = cmd.get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn run() -> anyhow::Result<()> {
    let args = parse_args();
    if let Some(Cmd::Secrets(SecretsCmd::GenerateKey)) = args.command {
        // Needs no settings: the key is what the settings will name.
        println!("{}", latchkey_server::domain::sealing::generate_key());
        return Ok(());
    }
    let file = match &args.config {
        Some(p) => Settings::from_file(p)?,
        None => Settings::default(),
    };
    let env_only = Settings::from_env_only()?;
    let config = Config::from_settings(args.settings.or(env_only).or(file))?;
    let command = args.command.unwrap_or(Cmd::Serve);
    if let Cmd::CheckConfig { connect: false } = command {
        print_config(&config);
        return Ok(());
    }
    init_logging(&config, matches!(command, Cmd::Serve | Cmd::Migrate));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            Cmd::Serve => serve(config).await,
            Cmd::Migrate => migrate(&config).await,
            Cmd::Keys(k) => keys_cmd(&config, k).await,
            Cmd::Users(u) => users_cmd(&config, u).await,
            Cmd::Orgs(o) => orgs_cmd(&config, o).await,
            Cmd::Secrets(_) => reseal(&config).await,
            Cmd::CheckConfig { .. } => {
                print_config(&config);
                check_upstreams(&config).await?;
                let store = open(&config).await?;
                let status = store.schema_status().await?;
                store.close().await;
                if !status.unknown.is_empty() {
                    bail!(
                        "the database has migrations {:?} this latchkeyd does not know; upgrade latchkeyd",
                        status.unknown
                    );
                }
                if status.pending.is_empty() {
                    println!("database: reachable, schema current");
                } else {
                    println!(
                        "database: reachable, migrations pending: {:?} (run `latchkeyd migrate`)",
                        status.pending
                    );
                }
                Ok(())
            }
        }
    })
}

fn init_logging(config: &Config, info: bool) {
    let default = if info {
        "info,sqlx=warn,tower_http=warn"
    } else {
        "warn"
    };
    let filter =
        EnvFilter::try_from_env("LATCHKEYD_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if config.json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let db = config.database_url.clone();
    let running = latchkey_server::start(config, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot start with database {}", redact_url(&db)))?;
    println!("latchkeyd is running at {}", running.url);
    println!(
        "Open {}/ in your browser to create an account.",
        running.url
    );
    println!(
        "Connect the CLI: latchkey config set cloud.url {} && latchkey login",
        running.url
    );
    shutdown_signal().await;
    eprintln!("shutting down…");
    running.stop().await
}

/// Opens the database of `config` (creating a SQLite file if missing).
async fn open(config: &Config) -> anyhow::Result<Store> {
    Store::connect_with(&config.database_url, config.backend, 2)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redact_url(&config.database_url)
            )
        })
}

/// Opens the database and checks its schema is current (operator commands never migrate
/// implicitly, except `migrate`).
async fn open_current(config: &Config) -> anyhow::Result<Store> {
    let store = open(config).await?;
    let status = store.schema_status().await?;
    if !status.is_current() {
        bail!(
            "the database needs migrations {:?}\nhint: run `latchkeyd migrate` first",
            status.pending
        );
    }
    Ok(store)
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    let done = store
        .migrate(SystemClock.now())
        .await
        .map_err(|e| match e {
            StoreError::SchemaTooNew(_) => anyhow::anyhow!("{e}"),
            e => anyhow::Error::new(e).context("migration failed; nothing was changed"),
        })?;
    store.close().await;
    if done.is_empty() {
        println!("The database schema is up to date.");
    } else {
        println!("Applied migrations {done:?}.");
    }
    Ok(())
}

async fn keys_cmd(config: &Config, cmd: KeysCmd) -> anyhow::Result<()> {
    let store = open_current(config).await?;
    let now = SystemClock.now();
    let grace = key_grace(config);
    let result = match cmd {
        KeysCmd::Rotate { now: at_once } => {
            let key = keys::generate();
            // With no key signing yet there is nothing to publish ahead of.
            let nothing_signs = KeySet::new(store.signing_keys().await?)
                .active(now)
                .is_none();
            let at_once = at_once || nothing_signs;
            let activates_at = if at_once {
                now
            } else {
                now + config.key_activation_delay
            };
            store.insert_signing_key(&key, now, activates_at).await?;
            println!("New signing key {}", key.kid);
            println!(
                "  published: now, in {}/.well-known/jwks.json",
                issuer_hint(config)
            );
            println!(
                "  signs from: {} ({})",
                rfc3339(activates_at),
                if at_once {
                    "now".to_owned()
                } else {
                    format!("in {} s", config.key_activation_delay)
                }
            );
            println!(
                "The current key stops signing then and stays published {grace} s more, until \
                 the tokens it signed have expired."
            );
            if at_once && !nothing_signs {
                println!(
                    "warning: replicas reject tokens signed with the new key until they reload \
                     keys (within key_reload_interval = {} s).",
                    config.key_reload_interval
                );
            }
            Ok(())
        }
        KeysCmd::List { json } => {
            let set = KeySet::new(store.signing_keys().await?);
            let status = set.status(now, grace);
            if json {
                let rows: Vec<_> = status
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "kid": s.kid,
                            "state": s.state.as_str(),
                            "created_at": s.created_at,
                            "activates_at": s.activates_at,
                            "signs_until": s.signs_until,
                            "published_until": s.published_until,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<44}  {:<8}  {:<20}  {:<20}  {:<20}  PUBLISHED UNTIL",
                    "KID", "STATE", "CREATED", "SIGNS FROM", "SIGNS UNTIL"
                );
                for s in &status {
                    let opt = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), rfc3339);
                    println!(
                        "{:<44}  {:<8}  {:<20}  {:<20}  {:<20}  {}",
                        s.kid,
                        s.state.as_str(),
                        rfc3339(s.created_at),
                        rfc3339(s.activates_at),
                        opt(s.signs_until),
                        opt(s.published_until)
                    );
                }
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

fn issuer_hint(config: &Config) -> String {
    config.public_url.as_ref().map_or_else(
        || format!("http://{}", config.listen),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    )
}

async fn users_cmd(config: &Config, cmd: UsersCmd) -> anyhow::Result<()> {
    let store = open_current(config).await?;
    let now = SystemClock.now();
    let result = async {
        match cmd {
            UsersCmd::Create {
                email,
                name,
                password_stdin,
            } => {
                let email = accounts::normalize_email(&email).map_err(anyhow::Error::msg)?;
                let (password, generated) = if password_stdin {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("cannot read the password from stdin")?;
                    (line.trim_end_matches(['\r', '\n']).to_owned(), false)
                } else {
                    (latchkey_server::domain::secrets::new_secret(""), true)
                };
                accounts::validate_new_password(&password).map_err(anyhow::Error::msg)?;
                let pw = password.clone();
                let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&pw))
                    .await?
                    .map_err(anyhow::Error::msg)?;
                let name = name.filter(|n| !n.trim().is_empty());
                let user = match store
                    .create_user(Some(&email), name.as_deref(), Some(&hash), false, now)
                    .await
                {
                    Err(StoreError::Conflict) => {
                        bail!("an account with the email {email} already exists")
                    }
                    other => other?,
                };
                println!("Created account {email} ({})", user.id);
                if generated {
                    println!("Password (shown once): {password}");
                }
                Ok(())
            }
            UsersCmd::Disable { email } => {
                let email = accounts::normalize_email(&email).map_err(anyhow::Error::msg)?;
                match store.disable_user(&email, now).await? {
                    Some(d) => {
                        println!(
                            "Disabled {email} ({}): {} session(s) revoked, {} web sign-in(s) ended.",
                            d.user_id, d.sessions_revoked, d.web_sessions_ended
                        );
                        println!(
                            "Access tokens already issued stay valid until they expire (at most \
                             access_token_ttl = {} s) for services that verify them offline.",
                            config.access_token_ttl
                        );
                        Ok(())
                    }
                    None => bail!("no account has the email {email}"),
                }
            }
            UsersCmd::Enable { email } => {
                let email = accounts::normalize_email(&email).map_err(anyhow::Error::msg)?;
                if store.enable_user(&email, now).await? {
                    println!("Enabled {email}.");
                    Ok(())
                } else {
                    bail!("no account has the email {email}")
                }
            }
        }
    }
    .await;
    store.close().await;
    result
}

fn print_config(config: &Config) {
    let mut shown = config.clone();
    shown.database_url = redact_url(&config.database_url);
    println!("Configuration is valid.");
    println!("{shown:#?}");
    if config.upstreams.is_empty() {
        println!("upstream providers: none");
    } else {
        println!("upstream providers:");
        for p in &config.upstreams {
            let at = match &p.protocol {
                Protocol::Oidc { issuer } => issuer.clone(),
                Protocol::OAuth2(o) => o.authorization.to_string(),
            };
            println!(
                "  {id:<12} \"Continue with {name}\" ({preset}) {at}; client {client}, secret {secret}{domains}",
                id = p.id,
                name = p.name,
                preset = p.preset,
                client = p.client_id,
                secret = if p.client_secret.is_some() {
                    "set"
                } else {
                    "none (PKCE only)"
                },
                domains = if p.domains.is_empty() {
                    String::new()
                } else {
                    format!("; SSO for {}", p.domains.join(", "))
                },
            );
        }
    }
    let ids = config.sealing_keys.ids();
    match ids.split_first() {
        None => println!(
            "secret key: none (organizations can use only public clients for SSO; see secret_key_file)"
        ),
        Some((first, [])) => println!("secret key: {first}"),
        Some((first, old)) => println!(
            "secret key: {first}, and {} for opening older secrets (`latchkeyd secrets reseal` moves them to {first})",
            old.join(", ")
        ),
    }
}

/// Fetches each upstream provider's discovery document; fails naming the first that does not
/// answer.
async fn check_upstreams(config: &Config) -> anyhow::Result<()> {
    let fed = latchkey_server::federation::Federation::new();
    for p in &config.upstreams {
        if let Protocol::OAuth2(_) = p.protocol {
            println!(
                "upstream {}: not checked (plain OAuth 2.0 has no discovery document)",
                p.id
            );
            continue;
        }
        match fed.endpoints(p, SystemClock.now()).await {
            Ok(e) => println!(
                "upstream {}: reachable, authorization at {}",
                p.id, e.authorization
            ),
            Err(e) => bail!("upstream {}: {e}", p.id),
        }
    }
    Ok(())
}

/// `latchkeyd secrets reseal`: seals every organization's client secret with the first key.
async fn reseal(config: &Config) -> anyhow::Result<()> {
    use latchkey_server::domain::sealing::org_sso_context;
    let keys = &config.sealing_keys;
    let Some(current) = keys.ids().first().map(|id| (*id).to_owned()) else {
        bail!(
            "no secret key is set: give the key file with --secret-key-file (new key first, old ones below) or LATCHKEYD_SECRET_KEY"
        );
    };
    let store = open_current(config).await?;
    let result = async {
        let (mut resealed, mut current_already, mut unreadable) = (0, 0, Vec::new());
        for (slug, sso) in store.org_sso_secrets().await? {
            let Some(sealed) = sso.client_secret.as_deref() else {
                continue;
            };
            if keys.is_current(sealed) {
                current_already += 1;
                continue;
            }
            let context = org_sso_context(&sso.org_id, &sso.issuer, &sso.client_id);
            let plain = match keys.open(sealed, &context) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{slug}: cannot open its client secret ({e}); an owner must enter it again");
                    unreadable.push(slug);
                    continue;
                }
            };
            let new = keys.seal(&plain, &context)?;
            if store.replace_org_sso_secret(&sso.org_id, sealed, &new).await? {
                resealed += 1;
            } else {
                // An owner saved a new secret meanwhile, sealed with the current key.
                current_already += 1;
            }
        }
        println!(
            "{resealed} client secrets resealed with key {current}, {current_already} already were, {} unreadable",
            unreadable.len()
        );
        if unreadable.is_empty() {
            Ok(())
        } else {
            bail!(
                "some secrets were sealed with a key not in the settings: add it and run this again, or ask the owners of {} to enter their client secret again",
                unreadable.join(", ")
            )
        }
    }
    .await;
    store.close().await;
    result
}

async fn orgs_cmd(config: &Config, cmd: OrgsCmd) -> anyhow::Result<()> {
    let store = open_current(config).await?;
    let result = async {
        match cmd {
            OrgsCmd::VerifyDomain { org, domain } => {
                let domain = latchkey_server::federation::config::normalize_domain(&domain)
                    .map_err(anyhow::Error::msg)?;
                let o = store
                    .org(&org)
                    .await?
                    .with_context(|| format!("no organization `{org}`"))?;
                match store.verify_org_domain(&o.id, &domain, SystemClock.now()).await {
                    Ok(true) => {
                        println!("{domain} is verified for {} ({}).", o.name, o.slug);
                        Ok(())
                    }
                    Ok(false) => bail!(
                        "{} has not added {domain}; an admin adds it on the organization's page first",
                        o.slug
                    ),
                    Err(latchkey_server::store::StoreError::Conflict) => {
                        bail!("another organization has already verified {domain}")
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
    .await;
    store.close().await;
    result
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A database URL without its password, for messages.
fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => u.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn arguments() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["latchkeyd", "keys", "rotate", "--now"]).expect("parse");
        assert!(matches!(
            a.command,
            Some(Cmd::Keys(KeysCmd::Rotate { now: true }))
        ));
        let a = Args::try_parse_from(["latchkeyd"]).expect("parse");
        assert!(a.command.is_none());
    }
}
