//! Process metrics in the Prometheus text exposition format (version 0.0.4), kept in memory per
//! replica and rendered by `GET /metrics`. Hand-written: a few counters and one histogram do not
//! justify a metrics framework.
//!
//! Label values are bounded: routes are route templates (`/v1/sessions/{id}`), never raw paths;
//! methods, login methods and results come from fixed lists. Nothing secret is ever a label.

use axum::http::Method;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the request latency histogram, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Login methods that get their own label value; anything else is `other`.
pub const LOGIN_METHODS: &[&str] = &[
    "device",
    "browser",
    "password",
    "anonymous",
    "api_key",
    "web",
    "sso",
];

/// OAuth error codes that get their own `result` label value; anything else is `error`.
const RESULTS: &[&str] = &[
    "success",
    "failure",
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "expired_token",
    "server_error",
    "temporarily_unavailable",
    "rate_limited",
    "invalid_credentials",
    "sso_required",
    "invalid_state",
    "cancelled",
    "failed",
    "no_email",
    "unverified_email",
    "disabled",
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    latency: BTreeMap<(String, &'static str), Histogram>,
    logins: BTreeMap<(&'static str, &'static str), u64>,
    refreshes: BTreeMap<&'static str, u64>,
}

/// The counters of one process.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            started: Instant::now(),
        }
    }
}

/// Figures read at scrape time (from the database and other state), rendered as gauges.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Device authorizations waiting for the user, across all replicas (from the database);
    /// `None` when the database did not answer.
    pub device_flows_pending: Option<i64>,
    /// Device codes whose polling this replica tracks in memory.
    pub device_polls_tracked: usize,
    /// Open database connections.
    pub db_pool_size: u32,
    /// Idle database connections.
    pub db_pool_idle: u32,
    /// The pool's upper bound.
    pub db_pool_max: u32,
    /// Signing keys by state (`pending`, `active`, `retiring`).
    pub signing_keys: Vec<(&'static str, usize)>,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
}

/// The label value for a login method.
pub fn method_label(method: &str) -> &'static str {
    LOGIN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The label value for a result: `success`, a known error code, or `error`.
pub fn result_label(result: &str) -> &'static str {
    RESULTS
        .iter()
        .find(|r| **r == result)
        .copied()
        .unwrap_or("error")
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Counts a finished HTTP request. `route` is the matched route template (or `unmatched`).
    pub fn request(&self, route: &str, method: &Method, status: u16, secs: f64) {
        let method = method_name(method);
        if let Ok(mut m) = self.inner.lock() {
            *m.requests
                .entry((route.to_owned(), method, status))
                .or_default() += 1;
            m.latency
                .entry((route.to_owned(), method))
                .or_default()
                .observe(secs);
        }
    }

    /// Counts a login attempt: `method` one of [`LOGIN_METHODS`] (`web` for the sign-in page),
    /// `result` `success`, `failure` or an OAuth error code. Unknown values are folded into
    /// `other` / `error`.
    pub fn login(&self, method: &str, result: &str) {
        let key = (method_label(method), result_label(result));
        if let Ok(mut m) = self.inner.lock() {
            *m.logins.entry(key).or_default() += 1;
        }
    }

    /// Counts a refresh-token redemption: `result` `success` or an OAuth error code.
    pub fn refresh(&self, result: &str) {
        let key = result_label(result);
        if let Ok(mut m) = self.inner.lock() {
            *m.refreshes.entry(key).or_default() += 1;
        }
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let inner = match self.inner.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        };
        header(
            &mut out,
            "latchkey_build_info",
            "gauge",
            "Version and database backend of this latchkeyd.",
        );
        let _ = writeln!(
            out,
            "latchkey_build_info{{version=\"{}\",backend=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            g.backend
        );
        header(
            &mut out,
            "latchkey_uptime_seconds",
            "gauge",
            "Seconds since this process started serving.",
        );
        let _ = writeln!(
            out,
            "latchkey_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );

        header(
            &mut out,
            "latchkey_http_requests_total",
            "counter",
            "HTTP requests by route, method and status.",
        );
        for ((route, method, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "latchkey_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        header(
            &mut out,
            "latchkey_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by route and method.",
        );
        for ((route, method), h) in &inner.latency {
            let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
            for (le, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "latchkey_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }

        header(
            &mut out,
            "latchkey_logins_total",
            "counter",
            "Login attempts by method and result (success or an OAuth error code).",
        );
        for ((method, result), n) in &inner.logins {
            let _ = writeln!(
                out,
                "latchkey_logins_total{{method=\"{method}\",result=\"{result}\"}} {n}"
            );
        }
        header(
            &mut out,
            "latchkey_token_refreshes_total",
            "counter",
            "Refresh token redemptions by result (success or an OAuth error code).",
        );
        for (result, n) in &inner.refreshes {
            let _ = writeln!(
                out,
                "latchkey_token_refreshes_total{{result=\"{result}\"}} {n}"
            );
        }
        drop(inner);

        if let Some(n) = g.device_flows_pending {
            header(
                &mut out,
                "latchkey_device_flows_pending",
                "gauge",
                "Device authorizations waiting for the user (all replicas).",
            );
            let _ = writeln!(out, "latchkey_device_flows_pending {n}");
        }
        header(
            &mut out,
            "latchkey_device_polls_tracked",
            "gauge",
            "Device codes whose polling interval this replica tracks in memory.",
        );
        let _ = writeln!(
            out,
            "latchkey_device_polls_tracked {}",
            g.device_polls_tracked
        );
        header(
            &mut out,
            "latchkey_db_pool_connections",
            "gauge",
            "Database connections of this replica by state.",
        );
        let idle = g.db_pool_idle.min(g.db_pool_size);
        let _ = writeln!(out, "latchkey_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            out,
            "latchkey_db_pool_connections{{state=\"in_use\"}} {}",
            g.db_pool_size - idle
        );
        header(
            &mut out,
            "latchkey_db_pool_max_connections",
            "gauge",
            "Upper bound of this replica's database connections.",
        );
        let _ = writeln!(out, "latchkey_db_pool_max_connections {}", g.db_pool_max);
        header(
            &mut out,
            "latchkey_signing_keys",
            "gauge",
            "Published signing keys by state.",
        );
        for (state, n) in &g.signing_keys {
            let _ = writeln!(out, "latchkey_signing_keys{{state=\"{state}\"}} {n}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("/oauth/token", &Method::POST, 200, 0.003);
        m.request("/oauth/token", &Method::POST, 200, 0.2);
        m.request("/oauth/token", &Method::POST, 400, 20.0);
        m.login("device", "success");
        m.login("carrier-pigeon", "made-up code");
        m.refresh("invalid_grant");
        let text = m.render(&Gauges {
            device_flows_pending: Some(3),
            db_pool_size: 4,
            db_pool_idle: 3,
            db_pool_max: 16,
            signing_keys: vec![("active", 1)],
            backend: "sqlite",
            ..Gauges::default()
        });
        assert!(text.contains(
            "latchkey_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"200\"} 2"
        ));
        let b = |le: &str| {
            format!(
                "latchkey_http_request_duration_seconds_bucket{{route=\"/oauth/token\",method=\"POST\",le=\"{le}\"}}"
            )
        };
        assert!(text.contains(&format!("{} 1", b("0.005"))), "{text}");
        assert!(text.contains(&format!("{} 2", b("0.25"))), "{text}");
        assert!(text.contains(&format!("{} 2", b("10"))), "{text}");
        assert!(text.contains(&format!("{} 3", b("+Inf"))), "{text}");
        assert!(text.contains("latchkey_logins_total{method=\"device\",result=\"success\"} 1"));
        assert!(text.contains("latchkey_logins_total{method=\"other\",result=\"error\"} 1"));
        assert!(text.contains("latchkey_token_refreshes_total{result=\"invalid_grant\"} 1"));
        assert!(text.contains("latchkey_device_flows_pending 3"));
        assert!(text.contains("latchkey_db_pool_connections{state=\"in_use\"} 1"));
        assert!(text.contains("latchkey_signing_keys{state=\"active\"} 1"));
        // Every sample line belongs to a declared metric family.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().expect("name");
            assert!(
                families.iter().any(|f| name.starts_with(f)),
                "undeclared sample {line}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
