//! `latchkey login`: the device flow with a prominent code, a browser opened for the user
//! (unless `--no-browser`), a spinner while waiting, and a clean exit on Ctrl-C.

use super::ExitStatus;
use crate::cli::LoginArgs;
use crate::output::{self, Style};
use crate::settings::{LoginSettings, Settings};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use latchkey_client::DevicePrompt;
use std::cell::RefCell;
use std::time::Duration;

/// Runs the login.
pub async fn run(args: LoginArgs, settings: &Settings) -> Result<ExitStatus> {
    let login = LoginSettings::resolve(args)?;
    let client = settings.client()?;
    let spinner: RefCell<Option<ProgressBar>> = RefCell::new(None);

    let show = |p: &DevicePrompt| {
        show_prompt(p, login.open_browser);
        if settings.stderr_tty {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                pb.set_style(style);
            }
            pb.set_message("Waiting for approval... (Ctrl-C to cancel)");
            pb.enable_steady_tick(Duration::from_millis(100));
            *spinner.borrow_mut() = Some(pb);
        } else {
            eprintln!("Waiting for approval...");
        }
    };

    let result = tokio::select! {
        r = client.login_device(&login.options, show) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(pb) = spinner.borrow_mut().take() {
        pb.finish_and_clear();
    }
    let Some(result) = result else {
        eprintln!("Login cancelled; nothing was saved.");
        return Ok(ExitStatus::Cancelled);
    };
    let outcome = result?;

    let s = Style::stderr();
    let who = s.bold(&outcome.identity.label());
    match &outcome.identity.org {
        Some(org) => output::success(&format!("Signed in as {who} (org {})", s.bold(&org.slug))),
        None => output::success(&format!("Signed in as {who}")),
    }
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
    Ok(ExitStatus::Success)
}

fn show_prompt(p: &DevicePrompt, open_browser: bool) {
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
