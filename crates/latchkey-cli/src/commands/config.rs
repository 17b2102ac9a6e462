//! `latchkey config edit|get|set|unset|path|show`: the user's `config.yaml`.
//!
//! Every change is validated before it is written (unknown keys and non-http(s) URLs are refused)
//! and written atomically with mode 0600, since the file may hold an API key.

use super::ExitStatus;
use crate::cli::ConfigCommand;
use crate::output::{self, Style};
use crate::settings::{APP, Settings};
use anyhow::{Context, Result, anyhow};
use latchkey_client::config as cfg;
use latchkey_client::store;
use latchkey_proto::ConfigFile;
use std::path::{Path, PathBuf};

/// Runs a config subcommand.
pub fn run(cmd: ConfigCommand, settings: &Settings) -> Result<ExitStatus> {
    let path = config_path()?;
    match cmd {
        ConfigCommand::Path => {
            println!("{}", path.display());
            Ok(ExitStatus::Success)
        }
        ConfigCommand::Get { key } => {
            let c = cfg::load(&path, APP)?;
            match c.get(&key).map_err(|e| anyhow!("{e}"))? {
                Some(v) => {
                    println!("{v}");
                    Ok(ExitStatus::Success)
                }
                None => {
                    eprintln!("{key} is not set");
                    Ok(ExitStatus::Failure)
                }
            }
        }
        ConfigCommand::Set { key, value } => {
            let mut c = cfg::load(&path, APP)?;
            let value = value.trim().to_owned();
            c.get(&key).map_err(|e| anyhow!("{e}"))?;
            cfg::validate_value(&key, &value)?;
            let shown = if key == "cloud.api_key" {
                "[redacted]".to_owned()
            } else {
                value.clone()
            };
            c.set(&key, Some(value)).map_err(|e| anyhow!("{e}"))?;
            cfg::save(&path, &c)?;
            output::success(&format!("{key} = {shown}"));
            Ok(ExitStatus::Success)
        }
        ConfigCommand::Unset { key } => {
            let mut c = cfg::load(&path, APP)?;
            let was_set = c.get(&key).map_err(|e| anyhow!("{e}"))?.is_some();
            c.set(&key, None).map_err(|e| anyhow!("{e}"))?;
            if was_set {
                cfg::save(&path, &c)?;
                output::success(&format!("{key} unset"));
            } else {
                eprintln!("{key} was not set");
            }
            Ok(ExitStatus::Success)
        }
        ConfigCommand::Show => {
            let c = cfg::load(&path, APP)?;
            let yaml = cfg::to_yaml(&cfg::redacted(&c));
            if yaml.is_empty() {
                eprintln!(
                    "{}",
                    Style::stderr().dim(&format!("# {} is empty or missing", path.display()))
                );
            } else {
                print!("{yaml}");
            }
            for var in ["LATCHKEY_TOKEN", "LATCHKEY_API_KEY"] {
                if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                    eprintln!(
                        "{}",
                        Style::stderr().dim(&format!("# {var} is set in the environment"))
                    );
                }
            }
            Ok(ExitStatus::Success)
        }
        ConfigCommand::Edit => edit(&path, settings),
    }
}

fn config_path() -> Result<PathBuf> {
    let dir = store::resolve_config_dir(APP, &|k| std::env::var_os(k))?;
    Ok(dir.join(store::CONFIG_FILE))
}

const TEMPLATE: &str = "\
# latchkey configuration. Only cloud.url is needed; everything else is discovered from it.
#
# cloud:
#   url: https://cloud.example.com
#   api_key: lk_...            # for automation (CI) instead of a login
# auth:                        # overrides of what the cloud says
#   url: https://id.example.com
#   client_id: latchkey-cli
#   scope: openid offline_access
#   default_method: device
";

/// Edits a private temporary copy, validates it, and only then replaces `config.yaml`.
fn edit(path: &Path, settings: &Settings) -> Result<ExitStatus> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    let dir = path.parent().unwrap_or(Path::new("."));
    store::ensure_private_dir(dir)?;
    let current = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TEMPLATE.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let tmp = dir.join(format!(".config.edit-{}.yaml", std::process::id()));
    store::write_atomic(&tmp, current.as_bytes(), 0o600)?;
    let result = edit_loop(&editor, &tmp, settings);
    match result {
        Ok(Some(c)) => {
            let r = cfg::save(path, &c);
            let _ = std::fs::remove_file(&tmp);
            r?;
            output::success(&format!("Saved {}", path.display()));
            Ok(ExitStatus::Success)
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("{} was not changed.", path.display());
            Ok(ExitStatus::Failure)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Runs the editor until the file is valid or the user gives up (`None`).
fn edit_loop(editor: &str, tmp: &Path, settings: &Settings) -> Result<Option<ConfigFile>> {
    loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$@\""))
            .arg("sh")
            .arg(tmp)
            .status()
            .with_context(|| format!("could not start the editor `{editor}`"))?;
        if !status.success() {
            output::error(&format!("the editor `{editor}` exited with {status}"));
            return Ok(None);
        }
        let text = std::fs::read_to_string(tmp)
            .with_context(|| format!("could not read {}", tmp.display()))?;
        match cfg::parse(&text) {
            Ok(c) => return Ok(Some(c)),
            Err(reason) => {
                output::error(&format!("the edited config is not valid: {reason}"));
                let again = settings.interactive()
                    && dialoguer::Confirm::new()
                        .with_prompt("Edit again?")
                        .default(true)
                        .interact()
                        .unwrap_or(false);
                if !again {
                    return Ok(None);
                }
            }
        }
    }
}
