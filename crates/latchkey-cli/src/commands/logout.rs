//! `latchkey logout`: ends the session at the server (best effort: offline still signs out
//! locally, and says so), then deletes the credentials file. Asks first on a terminal.

use super::ExitStatus;
use crate::cli::LogoutArgs;
use crate::output::{self, Style};
use crate::settings::Settings;
use anyhow::Result;
use latchkey_client::{Error, Revocation};

/// Signs out.
pub async fn run(args: LogoutArgs, settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    let store = client.credential_store();
    if !store.exists() {
        eprintln!("No credentials on file.");
        return Ok(ExitStatus::Success);
    }
    let path = store.path().display().to_string();
    let question = match client.credentials() {
        Ok(Some(c)) if c.identity.anonymous => {
            output::warning(
                "this identity is anonymous: once signed out, what was made with it cannot be reached again (`latchkey login` instead would move it into an account).",
            );
            format!("Sign out {} and delete {path}?", c.identity.label())
        }
        Ok(Some(c)) => format!("Sign out {} and delete {path}?", c.identity.label()),
        Ok(None) => format!("Delete {path}?"),
        Err(e @ Error::CorruptCredentials { .. }) => {
            output::warning(&e.to_string());
            format!("The file cannot be used; delete {path}?")
        }
        Err(e) => return Err(e.into()),
    };
    if !args.yes && settings.interactive() {
        let yes = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(true)
            .interact()?;
        if !yes {
            eprintln!("Aborted.");
            return Ok(ExitStatus::Success);
        }
    }

    let out = client.logout().await?;
    match &out.revocation {
        Revocation::Revoked => {}
        Revocation::NotSupported => output::warning(
            "the server cannot revoke sessions; the tokens stay valid until they expire",
        ),
        Revocation::Failed(reason) => {
            output::warning(&format!(
                "could not end the session at the server ({reason}); it stays active until it expires or you revoke it on your account page"
            ));
        }
        Revocation::NotAttempted => {}
    }
    let s = Style::stderr();
    match out.identity {
        Some(id) => output::success(&format!("Signed out {}", s.bold(&id.label()))),
        None => output::success(&format!("Deleted {}", out.path.display())),
    }
    Ok(ExitStatus::Success)
}
