//! `latchkeyd`: parse arguments, set up logging, run the server until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use latchkey_server::config::{Config, Settings};
use latchkey_server::domain::clock::SystemClock;
use std::path::PathBuf;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// latchkeyd — sign-in for command-line tools: accounts, OAuth 2.0 device authorization,
/// rotating refresh tokens, on SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(
    name = "latchkeyd",
    version,
    after_help = "Examples:\n  latchkeyd\n  latchkeyd --listen 0.0.0.0:8080 --public-url https://auth.example.com\n  latchkeyd --config /etc/latchkeyd.toml\n\nEvery flag can also be set by its LATCHKEYD_* environment variable or in the config file."
)]
struct Args {
    /// Settings file (.toml, .yaml or .yml); flags and environment override it.
    #[arg(long, env = "LATCHKEYD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
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

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = match &args.config {
        Some(p) => Settings::from_file(p)?,
        None => Settings::default(),
    };
    let config = Config::from_settings(args.settings.or(file))?;
    let filter = EnvFilter::try_from_env("LATCHKEYD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
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
    })
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
