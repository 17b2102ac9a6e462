//! `latchkey sessions`: the signed-in user's login sessions (this one marked) and ending one,
//! for a lost laptop or a forgotten CI box.
//!
//! Ending another session signs its CLI out at its next refresh ("Session expired"). Ending this
//! CLI's own session is a logout: it is revoked at the server and the local credentials, now
//! useless, are deleted.

use super::ExitStatus;
use crate::cli::{SessionsArgs, SessionsCommand};
use crate::output::{self, Style};
use crate::settings::Settings;
use anyhow::Result;
use latchkey_client::{Error, SessionInfo, SessionList, session};
use serde_json::json;

/// Runs `latchkey sessions [list|revoke]`.
pub async fn run(args: SessionsArgs, settings: &Settings) -> Result<ExitStatus> {
    match args.command {
        None => list(args.json, settings).await,
        Some(SessionsCommand::List { json }) => list(json || args.json, settings).await,
        Some(SessionsCommand::Revoke { id, yes }) => revoke(&id, yes, settings).await,
    }
}

async fn list(json: bool, settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    let list = client.sessions().await?;
    if json {
        output::print_json(&to_json(&list));
        return Ok(ExitStatus::Success);
    }
    if list.sessions.is_empty() {
        eprintln!("No live sessions.");
        return Ok(ExitStatus::Success);
    }
    print_table(&list);
    Ok(ExitStatus::Success)
}

fn to_json(list: &SessionList) -> serde_json::Value {
    let sessions: Vec<serde_json::Value> = list
        .sessions
        .iter()
        .map(|s| {
            let mut v = json!(s);
            v["current"] = json!(list.current.as_deref() == Some(s.id.as_str()));
            v
        })
        .collect();
    json!({ "sessions": sessions, "current": list.current })
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago".
pub fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    let (n, unit) = match s {
        0..60 => return "just now".to_owned(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

fn print_table(list: &SessionList) {
    let s = Style::stdout();
    let now = session::now();
    let rows: Vec<[String; 6]> = list
        .sessions
        .iter()
        .map(|x| {
            let mark = if list.current.as_deref() == Some(x.id.as_str()) {
                "*"
            } else {
                " "
            };
            [
                mark.to_owned(),
                x.id.clone(),
                x.name.clone().unwrap_or_else(|| "-".to_owned()),
                x.method.clone().unwrap_or_else(|| "-".to_owned()),
                x.ip.clone().unwrap_or_else(|| "-".to_owned()),
                ago(now - x.last_used_at),
            ]
        })
        .collect();
    let header = ["", "ID", "NAME", "METHOD", "IP", "LAST USED"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$} "));
            }
        }
        out.trim_end().to_owned()
    };
    println!("{}", s.dim(&line(header)));
    for r in &rows {
        let cells = [
            r[0].as_str(),
            r[1].as_str(),
            r[2].as_str(),
            r[3].as_str(),
            r[4].as_str(),
            r[5].as_str(),
        ];
        let text = line(cells);
        if r[0] == "*" {
            println!("{}", s.bold(&text));
        } else {
            println!("{text}");
        }
    }
    if list.current.is_some() {
        eprintln!("{}", Style::stderr().dim("* this session"));
    }
}

/// The session `given` names: an exact id, else a unique prefix of one.
fn resolve<'a>(list: &'a SessionList, given: &str) -> Result<Option<&'a SessionInfo>> {
    if let Some(s) = list.sessions.iter().find(|s| s.id == given) {
        return Ok(Some(s));
    }
    let matches: Vec<&SessionInfo> = list
        .sessions
        .iter()
        .filter(|s| s.id.starts_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok(Some(one)),
        [] => Ok(None),
        many => anyhow::bail!(
            "`{given}` matches several sessions ({}); give more of the id",
            many.iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn revoke(given: &str, yes: bool, settings: &Settings) -> Result<ExitStatus> {
    let client = settings.client()?;
    let given = given.trim();
    let list = client.sessions().await?;
    let Some(target) = resolve(&list, given)? else {
        return Err(Error::SessionNotFound {
            id: given.to_owned(),
            app: crate::settings::APP.to_owned(),
        }
        .into());
    };
    let id = target.id.clone();
    let name = target.name.clone();
    let current = list.current.as_deref() == Some(id.as_str());
    if current && !yes && settings.interactive() {
        let ok = dialoguer::Confirm::new()
            .with_prompt(
                "This is this CLI's own session; revoking it signs you out here. Continue?",
            )
            .default(false)
            .interact()?;
        if !ok {
            eprintln!("Aborted.");
            return Ok(ExitStatus::Success);
        }
    }
    client.revoke_session(&id).await?;
    let label = match &name {
        Some(n) => format!("{id} ({n})"),
        None => id.clone(),
    };
    if current {
        let store = client.credential_store();
        let deleted = {
            let _lock = store.lock().await?;
            store.delete()?
        };
        output::success(&format!(
            "Revoked session {label}: this one, so you are signed out here."
        ));
        if deleted {
            eprintln!("Deleted {}.", store.path().display());
        }
        output::hint("Run `latchkey login` to sign in again.");
    } else {
        output::success(&format!("Revoked session {label}."));
        eprintln!("The CLI that held it is signed out at its next refresh.");
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(61), "1 minute ago");
        assert_eq!(ago(7200), "2 hours ago");
        assert_eq!(ago(3 * 86_400 + 5), "3 days ago");
        assert_eq!(ago(-3), "just now");
    }
}
