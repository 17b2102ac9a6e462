//! `latchkey login`: every way in, chosen by a flag, by the picker on a terminal, or by
//! `auth.default_method` (else the device flow) without one.
//!
//! - `--web`: the browser signs in and comes back to a loopback listener (refused in CI);
//! - `--device`: a code approved on any device, with a spinner while waiting;
//! - `--email`: email and password in the terminal (no echo, `--password-stdin` for scripts);
//! - `--anonymous`: an identity without an account, claimed by the next real login.
//!
//! An existing login is only replaced with `--force` or after a question on a terminal, except
//! an anonymous one, which a real login upgrades (its organization moves into the account).
//! Ctrl-C is clean everywhere: nothing is written until a login succeeds.

use super::ExitStatus;
use crate::cli::LoginArgs;
use crate::output::{self, Style};
use crate::settings::{LoginSettings, Method, PasswordSource, Settings};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use latchkey_client::{
    AnonymousClaim, BrowserOptions, BrowserPrompt, Client, CredentialSource, CredentialStore,
    DevicePrompt, LoginOutcome, Mode, Password, session,
};
use std::cell::RefCell;
use std::io::BufRead;
use std::time::Duration;

/// Runs the login.
pub async fn run(args: LoginArgs, settings: &Settings) -> Result<ExitStatus> {
    let mut login = match LoginSettings::resolve(args) {
        Ok(l) => l,
        Err(e) => match e.downcast_ref::<clap::Error>() {
            Some(usage) => usage.exit(),
            None => return Err(e),
        },
    };
    let client = login.client()?;
    if login.status {
        return status(&client);
    }
    if matches!(login.password, PasswordSource::Flag(_)) {
        output::warning(
            "a password given with --password stays in your shell history; prefer the prompt or --password-stdin",
        );
    }

    if let Some(done) = check_existing(&client, &login, settings).await? {
        return Ok(done);
    }
    let method = match login.method {
        Some(m) => m,
        None => match choose_method(&client, &mut login, settings).await? {
            Some(m) => m,
            None => {
                eprintln!("Login cancelled; nothing was saved.");
                return Ok(ExitStatus::Cancelled);
            }
        },
    };
    if login.method.is_none()
        && method == Method::Anonymous
        && matches!(client.credentials(), Ok(Some(c)) if c.mode == Mode::Anonymous)
    {
        // Picked anonymous while an anonymous identity is on file: that is no upgrade.
        login.method = Some(method);
        if let Some(done) = check_existing(&client, &login, settings).await? {
            return Ok(done);
        }
    }
    if method == Method::Browser
        && let Some(refusal) = browser_refusal(&login, settings)
    {
        return Ok(refusal);
    }

    let result = match method {
        Method::Device => device(&client, &login, settings).await,
        Method::Browser => browser(&client, &login).await,
        Method::Password => match email_and_password(&mut login, settings)? {
            Some((email, pw)) => password(&client, &login, settings, &email, pw).await,
            None => return Ok(ExitStatus::Failure),
        },
        Method::Anonymous => Ok(cancellable(client.login_anonymous(&login.options)).await),
    };
    let Some(result) = result? else {
        eprintln!("Login cancelled; nothing was saved.");
        return Ok(ExitStatus::Cancelled);
    };
    report(&result?);
    Ok(ExitStatus::Success)
}

/// Runs a login future until it ends or Ctrl-C (`None`). Dropping it closes whatever it holds
/// (the loopback listener, a poll in flight); nothing has been written.
async fn cancellable<T>(fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        r = fut => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    }
}

/// `--status`: the login on file, without the network.
fn status(client: &Client) -> Result<ExitStatus> {
    let store = client.credential_store();
    let Some(c) = client.credentials()? else {
        eprintln!("Not signed in.");
        output::hint("Run `latchkey login` to sign in.");
        return Ok(ExitStatus::Failure);
    };
    let s = Style::stdout();
    let label = |l: &str| s.dim(&format!("{l:<13}"));
    println!("Signed in as {}", s.bold(&c.identity.label()));
    if let Some(org) = &c.identity.org {
        let role = org.role.as_deref().unwrap_or("member");
        println!("{}{} ({role})", label("Organization"), s.bold(&org.slug));
    }
    if let Some(name) = &c.session.name {
        println!("{}{name}", label("Session"));
    }
    let mode = match c.mode {
        Mode::Oauth => "oauth (browser or device code)",
        Mode::Password => "password",
        Mode::Anonymous => "anonymous",
    };
    println!("{}{mode}", label("Mode"));
    println!("{}{}", label("Issuer"), c.issuer);
    println!("{}{}", label("Credentials"), store.path().display());
    match c.expires_at {
        Some(at) if at > session::now() => println!(
            "Token expires {}",
            output::relative_minutes(at - session::now())
        ),
        Some(_) if c.refresh_token.is_some() => {
            println!("Token expired; it is refreshed at the next use")
        }
        Some(at) => println!(
            "Token expired {}",
            output::relative_minutes(at - session::now())
        ),
        None => println!("Token expiry unknown"),
    }
    if !matches!(client.source(), CredentialSource::File { .. }) {
        output::warning("LATCHKEY_TOKEN or an API key is set and takes precedence over this login");
    }
    eprintln!(
        "{}",
        Style::stderr().dim("Shown from the file; `latchkey whoami` checks it with the server.")
    );
    Ok(ExitStatus::Success)
}

/// An existing login is replaced only with `--force`, after a question on a terminal, or when
/// it is anonymous and this is a real login (an upgrade). A login that has ended anyway
/// (revoked, expired) is replaced without a word. `Some` ends the command.
async fn check_existing(
    client: &Client,
    login: &LoginSettings,
    settings: &Settings,
) -> Result<Option<ExitStatus>> {
    let target = if login.options.local {
        let cwd = std::env::current_dir()?;
        CredentialStore::new(
            cwd.join(".latchkey").join("credentials.json"),
            crate::settings::APP,
        )
    } else {
        client.credential_store()
    };
    // A corrupt file stops here, with how to recover.
    let Some(prev) = target.load()? else {
        return Ok(None);
    };
    if login.force {
        return Ok(None);
    }
    let anonymous = prev.mode == Mode::Anonymous;
    if anonymous && login.method != Some(Method::Anonymous) {
        return Ok(None); // the upgrade: the anonymous organization moves into the account
    }
    if target.path() == client.credential_store().path() {
        // Offline or otherwise unsure: the session counts as alive, and the user decides.
        if let Err(e) = client.whoami().await
            && e.needs_login()
        {
            return Ok(None);
        }
        // Anonymous identities waiting to be moved: this login retries that, and no more.
        if !anonymous && login.method.is_none() && !client.pending_anonymous().is_empty() {
            eprintln!(
                "Already signed in as {}; moving the anonymous identity kept from an earlier login.",
                prev.identity.label()
            );
            let claims = client.claim_pending_anonymous().await?;
            report_claims(&claims, &prev.identity.label());
            return Ok(Some(ExitStatus::Success));
        }
    }
    let who = prev.identity.label();
    let question = if anonymous {
        "This replaces your anonymous identity and loses what was made with it. Continue?"
            .to_owned()
    } else {
        format!("You are signed in as {who}. Sign in again and replace this login?")
    };
    if settings.interactive() {
        let yes = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()?;
        if yes {
            return Ok(None);
        }
        eprintln!("Kept the current login.");
        return Ok(Some(ExitStatus::Success));
    }
    output::error(&format!("Already signed in as {who}."));
    output::hint(
        "Pass --force to replace this login, or run `latchkey logout` first. `latchkey login --status` shows it.",
    );
    Ok(Some(ExitStatus::Failure))
}

/// Whether a browser can be opened here for the user.
fn can_open_browser(login: &LoginSettings, settings: &Settings) -> bool {
    login.open_browser && !settings.ci && settings.display
}

/// No method flag: the picker on a terminal, else `auth.default_method`, else the device flow.
/// `None` when the user escapes the picker.
async fn choose_method(
    client: &Client,
    login: &mut LoginSettings,
    settings: &Settings,
) -> Result<Option<Method>> {
    let configured = client.config().auth.default_method.as_deref();
    if !settings.interactive() {
        return Ok(Some(
            configured
                .and_then(Method::from_name)
                .unwrap_or(Method::Device),
        ));
    }
    let disc = client.discover(&login.options.overrides).await?;
    let offered: Vec<Method> = disc
        .login_methods()
        .iter()
        .filter_map(|m| Method::from_name(m))
        .collect();
    login.options.discovery = Some(disc);
    if offered.len() <= 1 {
        return Ok(Some(offered.first().copied().unwrap_or(Method::Device)));
    }
    let browser_ok = can_open_browser(login, settings);
    let preferred = configured
        .and_then(Method::from_name)
        .filter(|m| offered.contains(m))
        .or_else(|| {
            offered
                .iter()
                .copied()
                .find(|m| *m != Method::Browser || browser_ok)
        });
    let default = preferred
        .and_then(|p| offered.iter().position(|m| *m == p))
        .unwrap_or(0);
    let items: Vec<&str> = offered.iter().map(|m| picker_label(*m)).collect();
    let picked = dialoguer::Select::new()
        .with_prompt("How do you want to sign in?")
        .items(&items)
        .default(default)
        .interact_opt()?;
    Ok(picked.map(|i| offered[i]))
}

fn picker_label(m: Method) -> &'static str {
    match m {
        Method::Browser => "Browser: sign in on the web page, it comes back here",
        Method::Device => "Device code: approve a code on any device (SSH, containers)",
        Method::Password => "Email and password: typed here",
        Method::Anonymous => {
            "Anonymous: try it without an account, sign in later to keep your work"
        }
    }
}

/// `--web` needs a browser that comes back to this machine. In CI that cannot happen (the wait
/// would hang until the timeout), so it is refused, as Arkor does. Without a terminal and a
/// display nobody could see a browser either, unless `--no-browser` says the URL will be
/// opened elsewhere.
fn browser_refusal(login: &LoginSettings, settings: &Settings) -> Option<ExitStatus> {
    if settings.ci {
        output::error(
            "--web needs a browser that comes back to this machine, which CI runners can't do.",
        );
        output::hint(
            "For automation, create an API key (`latchkey api-keys create NAME`) and set it as LATCHKEY_API_KEY in the job. `latchkey login --device` still works for a person. Not in CI? Unset CI for this command.",
        );
        return Some(ExitStatus::Failure);
    }
    if login.open_browser && !settings.display && !settings.stdin_tty && !settings.stderr_tty {
        output::error("--web needs a browser, and there is no terminal or display here.");
        output::hint(
            "Use an API key (LATCHKEY_API_KEY) for automation, `latchkey login --device` to approve a code elsewhere, or --no-browser to open the printed URL yourself.",
        );
        return Some(ExitStatus::Failure);
    }
    None
}

async fn device(
    client: &Client,
    login: &LoginSettings,
    settings: &Settings,
) -> Result<Option<latchkey_client::Result<LoginOutcome>>> {
    let spinner: RefCell<Option<ProgressBar>> = RefCell::new(None);
    let show = |p: &DevicePrompt| {
        show_device_prompt(p, login.open_browser && !settings.ci);
        *spinner.borrow_mut() = start_spinner(settings, "Waiting for approval...");
    };
    let result = cancellable(client.login_device(&login.options, show)).await;
    if let Some(pb) = spinner.borrow_mut().take() {
        pb.finish_and_clear();
    }
    Ok(result)
}

async fn browser(
    client: &Client,
    login: &LoginSettings,
) -> Result<Option<latchkey_client::Result<LoginOutcome>>> {
    let opts = BrowserOptions {
        timeout: login.browser_timeout,
    };
    // No spinner here: the URL must stay readable for copying.
    let show = |p: &BrowserPrompt| show_browser_prompt(p, login.open_browser);
    Ok(cancellable(client.login_browser(&login.options, &opts, show)).await)
}

/// The email and password of `--email`, asked before anything goes to the network. `None`
/// when there is no terminal to ask on (the error and hint are printed).
fn email_and_password(
    login: &mut LoginSettings,
    settings: &Settings,
) -> Result<Option<(String, Password)>> {
    let email = match login.email.as_deref() {
        Some(e) if !e.is_empty() => e.to_owned(),
        _ if settings.interactive() => dialoguer::Input::<String>::new()
            .with_prompt("Email")
            .interact_text()?
            .trim()
            .to_owned(),
        _ => {
            output::error("no email address given, and no terminal to ask for one.");
            output::hint("Pass it: `latchkey login --email you@example.com --password-stdin`.");
            return Ok(None);
        }
    };
    let password = match std::mem::replace(&mut login.password, PasswordSource::Prompt) {
        PasswordSource::Flag(p) => p,
        PasswordSource::Stdin => read_password_stdin()?,
        PasswordSource::Prompt if settings.interactive() => Password::new(
            dialoguer::Password::new()
                .with_prompt("Password")
                .interact()?,
        ),
        PasswordSource::Prompt => {
            output::error("there is no terminal to ask for the password on.");
            output::hint(
                "Pipe it in with --password-stdin, e.g. `printf '%s\\n' \"$PW\" | latchkey login --email you@example.com --password-stdin`.",
            );
            return Ok(None);
        }
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    Ok(Some((email, password)))
}

async fn password(
    client: &Client,
    login: &LoginSettings,
    settings: &Settings,
    email: &str,
    password: Password,
) -> Result<Option<latchkey_client::Result<LoginOutcome>>> {
    let spinner = start_spinner(settings, "Signing in...");
    let result = cancellable(client.login_password(&login.options, email, password)).await;
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    Ok(result)
}

/// The first line of standard input, without its line ending.
fn read_password_stdin() -> Result<Password> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(Password::new(trimmed))
}

fn start_spinner(settings: &Settings, msg: &str) -> Option<ProgressBar> {
    if !settings.stderr_tty {
        eprintln!("{msg}");
        return None;
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        pb.set_style(style);
    }
    pb.set_message(format!("{msg} (Ctrl-C to cancel)"));
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

fn report(outcome: &LoginOutcome) {
    let s = Style::stderr();
    let org = outcome
        .identity
        .org
        .as_ref()
        .map(|o| format!(" (org {})", s.bold(&o.slug)))
        .unwrap_or_default();
    if outcome.mode == Mode::Anonymous {
        output::success(&format!("Signed in anonymously{org}"));
        if let Some(id) = &outcome.identity.user_id {
            eprintln!("Anonymous id: {id}");
        }
        output::warning(&format!(
            "your work is tied to this machine: the identity lives only in {}.",
            outcome.credentials_path.display()
        ));
        output::hint(
            "Sign in with `latchkey login` whenever you like: your anonymous organization then moves into your account, nothing is lost.",
        );
    } else {
        let who = s.bold(&outcome.identity.label());
        output::success(&format!("Signed in as {who}{org}"));
    }
    report_claims(&outcome.claims, &outcome.identity.label());
    if outcome.local {
        eprintln!(
            "Credentials saved to {} (workspace-local).",
            outcome.credentials_path.display()
        );
    }
    if !outcome.refreshable {
        output::warning(
            "the server issued no refresh token, so this login ends when the access token expires",
        );
        output::hint("Some servers only issue one for the scope `offline_access` (try --scope).");
    }
}

fn report_claims(claims: &[AnonymousClaim], who: &str) {
    for claim in claims {
        match claim {
            AnonymousClaim::Moved { orgs } if orgs.is_empty() => {
                output::success(&format!("Moved your anonymous identity into {who}."));
            }
            AnonymousClaim::Moved { orgs } => {
                for o in orgs {
                    output::success(&format!(
                        "Moved your anonymous organization {} into {who}.",
                        o.slug
                    ));
                }
            }
            AnonymousClaim::AlreadyEnded => eprintln!(
                "Your earlier anonymous session had already ended; there was nothing to move."
            ),
            AnonymousClaim::Kept { reason, path } => {
                output::warning(&format!(
                    "could not move your anonymous organization into {who}: {reason}"
                ));
                output::hint(&format!(
                    "The anonymous identity is kept in {}; run `latchkey login` again to retry.",
                    path.display()
                ));
            }
            _ => {}
        }
    }
}

fn show_browser_prompt(p: &BrowserPrompt, open_browser: bool) {
    let s = Style::stderr();
    eprintln!();
    eprintln!("To sign in, open this page in a browser on this machine:");
    eprintln!();
    eprintln!("    {}", s.cyan(&p.url));
    eprintln!();
    let minutes = p.timeout.as_secs().div_ceil(60);
    let wait = if p.timeout.as_secs() >= 60 {
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    } else {
        format!("{} seconds", p.timeout.as_secs())
    };
    if open_browser {
        match latchkey_client::open_browser(&p.url) {
            Ok(()) => eprintln!(
                "Opened your browser. Waiting up to {wait} for you to sign in there (Ctrl-C to cancel)..."
            ),
            Err(_) => eprintln!(
                "Could not open a browser; open the page above yourself. Waiting up to {wait} (Ctrl-C to cancel)..."
            ),
        }
    } else {
        eprintln!("Waiting up to {wait} for you to sign in there (Ctrl-C to cancel)...");
    }
}

fn show_device_prompt(p: &DevicePrompt, open_browser: bool) {
    let s = Style::stderr();
    eprintln!();
    eprintln!("To sign in, open this page in a browser and enter the code:");
    eprintln!();
    eprintln!("    {}", s.cyan(&p.verification_uri));
    eprintln!();
    eprintln!("    Code: {}", s.bold(&p.user_code));
    eprintln!();
    if let Some(full) = &p.verification_uri_complete {
        eprintln!("{}", s.dim(&format!("Or open {full} (code included).")));
    }
    crate::qr::print_for_device(p.browser_url());
    let minutes = p.expires_in.as_secs() / 60;
    if open_browser {
        match latchkey_client::open_browser(p.browser_url()) {
            Ok(()) => eprintln!("Opened your browser. The code expires in {minutes} minutes."),
            Err(_) => eprintln!(
                "Could not open a browser; open the page above on any device. The code expires in {minutes} minutes."
            ),
        }
    } else {
        eprintln!("Open the page on any device. The code expires in {minutes} minutes.");
    }
}
