//! `latchkey whoami`: checks the session with the server (`/v1/me`) and says who is signed in,
//! to which organizations, until when, and from which credentials file.

use super::ExitStatus;
use crate::cli::WhoamiArgs;
use crate::output::{self, Style};
use crate::settings::Settings;
use anyhow::Result;
use latchkey_client::{CredentialSource, Error, WhoAmI, session};
use serde_json::json;

/// Prints the identity.
pub async fn run(args: WhoamiArgs, settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    match client.whoami().await {
        Ok(w) => {
            if args.json {
                output::print_json(&to_json(&w));
            } else {
                print_human(&w);
            }
            anonymous_notes(&client, &w);
            Ok(ExitStatus::Success)
        }
        Err(e @ Error::NotSignedIn { .. }) => {
            if args.json {
                output::print_json(&json!({ "signed_in": false }));
            }
            eprintln!("{e}");
            if let Some(h) = e.hint() {
                output::hint(&h);
            }
            Ok(ExitStatus::Failure)
        }
        Err(e) => Err(e.into()),
    }
}

/// An anonymous identity is tied to this machine until a real login claims it; say so. And
/// say when an anonymous identity is still waiting to be moved into the account.
fn anonymous_notes(client: &latchkey_client::Client, w: &WhoAmI) {
    if w.identity.anonymous {
        output::warning(
            "this identity is anonymous: your work is tied to this machine until you sign in.",
        );
        output::hint(
            "Run `latchkey login` to sign in; your anonymous organization then moves into your account.",
        );
    } else if matches!(w.source, CredentialSource::File { .. })
        && let Some(p) = client.pending_anonymous().first()
    {
        output::warning(&format!(
            "an anonymous identity is waiting to be moved into your account ({}).",
            p.display()
        ));
        output::hint("Run `latchkey login` to retry moving it.");
    }
}

fn source_text(source: &CredentialSource) -> String {
    match source {
        CredentialSource::Environment { var } => format!("${var}"),
        CredentialSource::File { path, local: true } => {
            format!("{} (workspace-local)", path.display())
        }
        CredentialSource::File { path, local: false } => path.display().to_string(),
        CredentialSource::ApiKey { source_name, .. } if source_name.contains('.') => {
            format!("{source_name} in config.yaml (API key)")
        }
        CredentialSource::ApiKey { source_name, .. } => format!("${source_name} (API key)"),
    }
}

fn print_human(w: &WhoAmI) {
    let s = Style::stdout();
    let label = |l: &str| s.dim(&format!("{l:<13}"));
    let key = w.me.as_ref().and_then(|m| m.api_key.as_ref());
    if let Some(k) = key {
        // An API key acts in one org with its own role; the user is its creator.
        println!("Signed in with API key {} ({})", s.bold(&k.name), k.id);
        let role =
            w.me.as_ref()
                .and_then(|m| m.org.as_ref())
                .map_or(k.role.as_str(), |o| o.role.as_str());
        println!("{}{} ({role})", label("Organization"), s.bold(&k.org.slug));
        println!("{}{}", label("Created by"), w.identity.label());
        let expiry = match k.expires_at {
            Some(t) => {
                let left = t - session::now();
                super::api_keys::relative(left)
            }
            None => "never".to_owned(),
        };
        println!("{}{expiry}", label("Key expires"));
    } else {
        println!("Signed in as {}", s.bold(&w.identity.label()));
    }
    if key.is_some() {
        // Its org and role are shown above; the creator's other orgs do not apply to a key.
    } else if let Some(me) = &w.me {
        if let Some(org) = &me.org {
            println!(
                "{}{} ({})",
                label("Organization"),
                s.bold(&org.slug),
                org.role
            );
        }
        let others: Vec<String> = me
            .orgs
            .iter()
            .filter(|o| me.org.as_ref().is_none_or(|a| a.id != o.id))
            .map(|o| format!("{} ({})", o.slug, o.role))
            .collect();
        if !others.is_empty() {
            println!("{}{}", label("Other orgs"), others.join(", "));
        }
    } else if let Some(org) = &w.identity.org {
        let role = org.role.as_deref().unwrap_or("member");
        println!("{}{} ({role})", label("Organization"), s.bold(&org.slug));
    }
    if let Some(name) = &w.session.name {
        println!("{}{name}", label("Session"));
    }
    if let Some(issuer) = &w.issuer {
        println!("{}{issuer}", label("Issuer"));
    }
    println!("{}{}", label("Credentials"), source_text(&w.source));
    match w.expires_at {
        Some(at) => {
            let left = at - session::now();
            if left > 0 {
                println!("Token expires {}", output::relative_minutes(left));
            } else {
                println!("Token expired {}", output::relative_minutes(left));
            }
        }
        None => println!("Token expiry unknown"),
    }
    if !w.validated {
        eprintln!(
            "{}",
            Style::stderr().dim(
                "note: this server has no identity endpoint; shown as recorded at login, session refreshed fine"
            )
        );
    }
}

fn to_json(w: &WhoAmI) -> serde_json::Value {
    let (source, path, local) = match &w.source {
        CredentialSource::Environment { var } => ("environment", Some(var.clone()), false),
        CredentialSource::ApiKey { source_name, .. } => {
            ("api_key", Some(source_name.clone()), false)
        }
        CredentialSource::File { path, local } => {
            ("file", Some(path.display().to_string()), *local)
        }
    };
    let now = session::now();
    json!({
        "signed_in": true,
        "validated": w.validated,
        "user": {
            "id": w.identity.user_id,
            "email": w.identity.email,
            "name": w.identity.name,
            "anonymous": w.identity.anonymous,
        },
        "org": w.me.as_ref().and_then(|m| m.org.clone()).map(|o| json!(o))
            .or_else(|| w.identity.org.as_ref().map(|o| json!(o))),
        "orgs": w.me.as_ref().map(|m| json!(m.orgs)).unwrap_or_else(|| json!([])),
        "session": w.me.as_ref().and_then(|m| m.session.clone()).map(|s| json!(s))
            .unwrap_or_else(|| json!(w.session)),
        "issuer": w.issuer,
        "token_expires_at": w.expires_at,
        "token_expires_in": w.expires_at.map(|e| e - now),
        "credentials": { "source": source, "path": path, "local": local },
        "api_key": w.me.as_ref().and_then(|m| m.api_key.clone()).map(|k| json!(k)),
    })
}
