//! `latchkeyd`: a self-hostable auth service for command-line tools.
//!
//! [`app`] is the only place routes are listed. [`start`] binds a listener, opens the store,
//! and serves until stopped; the `latchkeyd` binary is a thin wrapper around it, and tests call
//! it directly with a controllable [`domain::clock::Clock`].

pub mod config;
pub mod domain;
pub mod federation;
pub mod http;
pub mod metrics;
pub mod state;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::domain::clock::SharedClock;
use crate::http::{account, api, authorize, oauth, observe, ops, orgs, pages, sso, sso_admin, web};
use crate::state::{AppState, SharedState};

/// Builds the router over shared state.
pub fn app(state: SharedState) -> Router {
    let v1 = Router::new()
        .route("/auth/cli/config", get(oauth::cli_config))
        .route("/me", get(api::me))
        .route("/sessions", get(api::list_sessions))
        .route("/sessions/{id}", axum::routing::delete(api::revoke_session))
        .route("/anonymous/claim", post(api::claim_anonymous))
        .route(
            "/api-keys",
            get(api::list_api_keys).post(api::create_api_key),
        )
        .route("/api-keys/{id}", axum::routing::delete(api::revoke_api_key))
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route("/orgs/{org}", get(orgs::detail).patch(orgs::rename))
        .route(
            "/orgs/{org}/invitations",
            get(orgs::list_invitations).post(orgs::create_invitation),
        )
        .route(
            "/orgs/{org}/invitations/{id}",
            axum::routing::delete(orgs::revoke_invitation),
        )
        .route(
            "/orgs/{org}/members/{user}",
            axum::routing::patch(orgs::change_role).delete(orgs::remove_member),
        )
        .route("/orgs/{org}/transfer", post(orgs::transfer))
        .route("/invitations/accept", post(orgs::accept_invitation))
        .route("/session/org", axum::routing::put(orgs::switch_org))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::require_cli_version,
        ));
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata_doc),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::metadata_doc),
        )
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route(
            "/oauth/device_authorization",
            post(oauth::device_authorization),
        )
        .route(
            "/oauth/authorize",
            get(authorize::authorize_page).post(authorize::authorize_submit),
        )
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .route(
            "/oauth/userinfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .nest("/v1", v1)
        .route("/", get(web::home))
        .route("/signin", get(web::signin_page).post(web::signin_submit))
        .route("/signup", get(web::signup_page).post(web::signup_submit))
        .route("/signout", get(web::signout_page).post(web::signout_submit))
        .route("/device", get(web::device_page).post(web::device_submit))
        .route("/signin/sso", get(sso::sso_page).post(sso::sso_submit))
        .route("/sso/link", get(sso::link_page).post(sso::link_submit))
        .route("/sso/org/{slug}", get(sso::start_org).post(sso::link_org))
        .route("/sso/org/{slug}/callback", get(sso::callback_org))
        .route("/sso/{id}", get(sso::start_config).post(sso::link_config))
        .route("/sso/{id}/callback", get(sso::callback_config))
        .route("/account/identities/{id}/unlink", post(sso_admin::unlink))
        .route("/orgs/{slug}/sso", post(sso_admin::save))
        .route("/orgs/{slug}/sso/delete", post(sso_admin::delete))
        .route("/orgs/{slug}/sso/require", post(sso_admin::require))
        .route("/orgs/{slug}/domains", post(sso_admin::add_domain))
        .route(
            "/orgs/{slug}/domains/{domain}/verify",
            post(sso_admin::verify_domain),
        )
        .route(
            "/orgs/{slug}/domains/{domain}/delete",
            post(sso_admin::remove_domain),
        )
        .route("/static/style.css", get(web::stylesheet))
        .route("/static/copy.js", get(web::copy_script))
        .route("/connect", get(account::connect))
        .route("/account", get(account::account))
        .route("/account/profile", post(account::save_profile))
        .route("/account/password", post(account::change_password))
        .route(
            "/account/sessions/revoke-all",
            post(account::revoke_all_sessions),
        )
        .route(
            "/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route("/account/api-keys", post(account::create_api_key))
        .route(
            "/account/api-keys/{id}/revoke",
            post(account::revoke_api_key),
        )
        .route("/orgs", post(account::create_org))
        .route("/orgs/{slug}", get(account::org))
        .route("/orgs/{slug}/invite", post(account::invite))
        .route(
            "/orgs/{slug}/invitations/{id}/revoke",
            post(account::revoke_invitation),
        )
        .route("/orgs/{slug}/members/{user}/role", post(account::set_role))
        .route(
            "/orgs/{slug}/members/{user}/remove",
            post(account::remove_member),
        )
        .route("/orgs/{slug}/leave", post(account::leave))
        .route("/orgs/{slug}/transfer", post(account::transfer))
        .route(
            "/invite/{token}",
            get(account::invitation).post(account::accept_invitation),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(not_found)
        // Innermost: a handler is never cancelled halfway by a client that disconnects.
        .layer(axum::middleware::from_fn(observe::run_to_completion))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(pages::security_headers))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(
            // Log the method and path only: query strings and headers can carry codes and
            // tokens, and bodies always do.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // A path that may carry a secret is logged as its route: `/invite/{token}`,
                    // and any path no route matched (a mangled link can hold anything).
                    let path = match req.extensions().get::<MatchedPath>() {
                        Some(route) if route.as_str().contains('*') => "unmatched",
                        Some(route) if route.as_str().contains("{token}") => route.as_str(),
                        Some(_) => req.uri().path(),
                        None => "unmatched",
                    };
                    tracing::info_span!("http", method = %req.method(), path = %path)
                })
                .on_request(())
                .on_response(
                    |resp: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = resp.status().as_u16(),
                            ms = latency.as_secs_f64() * 1000.0,
                            "request"
                        );
                    },
                ),
        )
        // Outermost: client address, request id (the span every log line of the request is
        // in), metrics.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::request_context,
        ))
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::response::Html(
            "<!doctype html><title>Not found · latchkey</title>\
             <link rel=\"stylesheet\" href=\"/static/style.css\">\
             <main class=\"narrow\"><section class=\"card\"><h1>Page not found</h1>\
             <p><a href=\"/\">Go to the start page</a></p></section></main>",
        ),
    )
        .into_response()
}

/// A running server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The public URL (the issuer).
    pub url: String,
    /// Shared state, for tests and embedding.
    pub state: SharedState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    purge: JoinHandle<()>,
    keys: JoinHandle<()>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish, closes the store.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.purge.abort();
        self.keys.abort();
        let res = (&mut self.task).await;
        self.state.store.close().await;
        res??;
        Ok(())
    }
}

/// Binds `config.listen`, opens the store and serves in the background.
pub async fn start(config: Config, clock: SharedClock) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let url = match &config.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => {
            let host = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            format!("http://{host}:{}", addr.port())
        }
    };
    let state: SharedState = Arc::new(AppState::new(config, url.clone(), clock).await?);
    let (tx, rx) = oneshot::channel::<()>();
    let router = app(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        })
        .await
    });
    let purge_state = state.clone();
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            purge_state.housekeeping().await;
        }
    });
    let keys_state = state.clone();
    let keys = tokio::spawn(async move {
        // Every replica: reload keys (another replica may have rotated), rotate when due, delete
        // retired keys.
        let period = Duration::from_secs(keys_state.config.key_reload_interval.unsigned_abs());
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            if let Err(e) = keys_state.maintain_keys().await {
                tracing::warn!(error = %e, "signing key upkeep failed");
            }
        }
    });
    Ok(Running {
        addr,
        url,
        state,
        shutdown: Some(tx),
        task,
        purge,
        keys,
    })
}
