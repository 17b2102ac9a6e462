//! A complete embedding CLI in one file: `acme login|login-web|whoami|token|logout|call PATH`.
//!
//! It shows what a product's own CLI needs to get sign-in from latchkey-client: one `Client`
//! named after the product (so its files live in `~/.config/acme/`, its variables are
//! `ACME_TOKEN`, `ACME_CONFIG_DIR`, and its hints say `acme login`), a callback that shows the
//! device code, and `access_token()` / `api_get()` for the product's own API calls.
//!
//! Try it against a local latchkeyd:
//!
//! ```sh
//! mkdir -p ~/.config/acme && echo 'cloud: {url: "http://127.0.0.1:8080"}' > ~/.config/acme/config.yaml
//! cargo run -p latchkey-client --example embed -- login
//! cargo run -p latchkey-client --example embed -- whoami
//! cargo run -p latchkey-client --example embed -- call /v1/me
//! ```

use latchkey_client::{
    BrowserOptions, Client, DeviceLoginOptions, Error, LoginOptions, Revocation,
};
use std::process::ExitCode;

/// The product's name and version: directories, variables, messages and the
/// `Latchkey-Client-Version` header derive from them.
const APP: &str = "acme";
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every library error says what happened; most also say what to do next.
            eprintln!("error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), Error> {
    // Reads ~/.config/acme/config.yaml (or $ACME_CONFIG_DIR); no network yet.
    let client = Client::from_config(APP, VERSION)?;
    match args.first().map(String::as_str) {
        Some("login") => {
            let opts = DeviceLoginOptions::default();
            let outcome = client
                .login_device(&opts, |prompt| {
                    eprintln!("Open {} and enter the code:", prompt.verification_uri);
                    eprintln!("    {}", prompt.user_code);
                    // Opening a browser is optional and may fail (SSH): the URL is printed anyway.
                    let _ = latchkey_client::open_browser(prompt.browser_url());
                    eprintln!("Waiting for approval...");
                })
                .await?;
            eprintln!("Signed in as {}", outcome.identity.label());
        }
        Some("login-web") => {
            // The browser comes back to a listener on 127.0.0.1 (authorization code + PKCE).
            let outcome = client
                .login_browser(
                    &LoginOptions::default(),
                    &BrowserOptions::default(),
                    |prompt| {
                        eprintln!("Open {} to sign in.", prompt.url);
                        let _ = latchkey_client::open_browser(&prompt.url);
                    },
                )
                .await?;
            eprintln!("Signed in as {}", outcome.identity.label());
            // An anonymous identity this login replaced has moved into the account.
            for claim in &outcome.claims {
                eprintln!("{claim:?}");
            }
        }
        Some("whoami") => {
            let me = client.whoami().await?;
            println!("{}", me.identity.label());
            if let Some(org) = &me.identity.org {
                println!("org: {} ({})", org.slug, org.role.as_deref().unwrap_or("-"));
            }
        }
        Some("token") => {
            // Cached while valid for more than a minute; refreshed under a lock otherwise.
            println!("{}", client.access_token().await?.secret());
        }
        Some("call") => {
            // Any call to the product's API: bearer token, one refresh and retry on 401,
            // 426 turned into an upgrade error.
            let path = args.get(1).map(String::as_str).unwrap_or("/v1/me");
            let body: serde_json::Value = client.api_get(path).await?;
            println!("{body:#}");
        }
        Some("logout") => {
            let out = client.logout().await?;
            if !out.had_credentials {
                eprintln!("No credentials on file.");
            } else if let Revocation::Failed(why) = out.revocation {
                eprintln!("Signed out locally; the server could not be told ({why}).");
            } else {
                eprintln!("Signed out.");
            }
        }
        _ => eprintln!("usage: acme login|login-web|whoami|token|call PATH|logout"),
    }
    Ok(())
}
