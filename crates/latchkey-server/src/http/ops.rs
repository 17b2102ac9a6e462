//! Operational endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::Backend;
use crate::domain::keys::KeyState;
use crate::metrics::Gauges;
use crate::state::{SharedState, key_grace};

/// The hand-written OpenAPI 3.1 description of every JSON endpoint (`GET /openapi.json`).
/// The integration suite checks that every route of [`crate::app`] answering JSON is in it.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /healthz`: the process is up (nothing else is checked, so a slow database never gets
/// a healthy process restarted).
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers and every migration this binary needs is applied.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    match state.store.schema_status().await {
        Ok(s) if s.is_current() => Json(serde_json::json!({"status": "ready"})).into_response(),
        Ok(s) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "migrations pending",
                "pending": s.pending,
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "database unreachable"})),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let now = state.now();
    let device_flows_pending = match state.store.pending_device_flows(now).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: counting pending device flows failed");
            None
        }
    };
    let pool = state.store.pool_stats();
    let statuses = state.keyset().status(now, key_grace(&state.config));
    let count = |st: KeyState| statuses.iter().filter(|s| s.state == st).count();
    let gauges = Gauges {
        device_flows_pending,
        device_polls_tracked: state.polls.len(),
        db_pool_size: pool.size,
        db_pool_idle: pool.idle,
        db_pool_max: pool.max,
        signing_keys: vec![
            ("pending", count(KeyState::Pending)),
            ("active", count(KeyState::Active)),
            ("retiring", count(KeyState::Retiring)),
        ],
        backend: match state.config.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
    };
    let mut resp = state.metrics.render(&gauges).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /openapi.json`: the API description, with this server as its `servers` entry.
pub async fn openapi(State(state): State<SharedState>) -> Response {
    match serde_json::from_str::<serde_json::Value>(OPENAPI) {
        Ok(mut doc) => {
            doc["servers"] = serde_json::json!([{ "url": state.issuer }]);
            Json(doc).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the built-in OpenAPI document does not parse");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_is_valid_json_with_responses() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("OpenAPI JSON parses");
        assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        assert!(!paths.is_empty());
        for (path, item) in paths {
            assert!(path.starts_with('/'), "{path}");
            for (method, op) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                    "{method} {path}"
                );
                assert!(op["summary"].is_string(), "{method} {path} has no summary");
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
            }
        }
        // Every $ref points at a schema that exists.
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for r in OPENAPI.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = &r[..r.find('"').expect("closing quote")];
            assert!(schemas.contains_key(name), "missing schema {name}");
        }
    }
}
