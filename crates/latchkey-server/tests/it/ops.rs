//! Operations: health and readiness, Prometheus metrics, request ids, forwarded headers from
//! trusted proxies only, JSON logs, and an OpenAPI document that covers every JSON route.

use latchkey_server::config::Settings;
use latchkey_server::testkit::{Browser, TestServer, backend};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use super::{get_json, http, poll, refresh, start_device};

async fn text(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = http().get(url).send().await.unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, h, r.text().await.unwrap())
}

/// The value of one sample line (`name{labels} value`), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn health_readiness_and_pending_migrations() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let (s, _, body) = text(&format!("{base}/healthz")).await;
    assert_eq!((s, body.as_str()), (200, "ok"));
    let (s, _, body) = get_json(&format!("{base}/readyz"), None).await;
    assert_eq!((s, &body["status"]), (200, &Value::from("ready")));

    // A migration this binary needs is missing: not ready (the load balancer stops sending
    // traffic), while still alive.
    srv.database()
        .execute("DELETE FROM schema_migrations WHERE version = 20")
        .await;
    let (s, _, body) = get_json(&format!("{base}/readyz"), None).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["status"], "migrations pending");
    assert_eq!(body["pending"], serde_json::json!([20]));
    assert_eq!(text(&format!("{base}/healthz")).await.0, 200);
    srv.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_logins_refreshes_and_pending_flows() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let browser = Browser::new(&base);
    browser.sign_up("mo@example.com", "metrics are fun 1").await;
    let dev = start_device(&base).await;
    let code = dev["device_code"].as_str().unwrap().to_owned();
    assert_eq!(poll(&base, &code).await.0, 400); // authorization_pending: not an attempt
    browser
        .approve_device(dev["user_code"].as_str().unwrap())
        .await;
    srv.clock.advance(6);
    let (s, tok) = poll(&base, &code).await;
    assert_eq!(s, 200, "{tok}");
    let r1 = tok["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&base, r1).await.0, 200);
    // An unknown refresh token (a spent one would end the session: reuse detection).
    assert_eq!(
        refresh(&base, "lkr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .0,
        400
    );
    let (s, _, _) = get_json(
        &format!("{base}/v1/me"),
        Some(tok["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, 200);
    // One flow left waiting.
    start_device(&base).await;

    let (s, h, m) = text(&format!("{base}/metrics")).await;
    assert_eq!(s, 200);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{h:?}"
    );
    let expect = |series: &str, v: f64| {
        assert_eq!(sample(&m, series), Some(v), "{series} in\n{m}");
    };
    expect(
        r#"latchkey_logins_total{method="device",result="success"}"#,
        1.0,
    );
    expect(r#"latchkey_token_refreshes_total{result="success"}"#, 1.0);
    expect(
        r#"latchkey_token_refreshes_total{result="invalid_grant"}"#,
        1.0,
    );
    expect(
        r#"latchkey_http_requests_total{route="/oauth/token",method="POST",status="200"}"#,
        2.0,
    );
    expect(
        r#"latchkey_http_requests_total{route="/oauth/token",method="POST",status="400"}"#,
        2.0,
    );
    expect(
        r#"latchkey_http_requests_total{route="/oauth/device_authorization",method="POST",status="200"}"#,
        2.0,
    );
    expect(
        r#"latchkey_http_request_duration_seconds_count{route="/v1/me",method="GET"}"#,
        1.0,
    );
    expect(
        r#"latchkey_http_request_duration_seconds_bucket{route="/v1/me",method="GET",le="+Inf"}"#,
        1.0,
    );
    expect("latchkey_device_flows_pending", 1.0);
    expect(r#"latchkey_signing_keys{state="active"}"#, 1.0);
    assert!(sample(&m, "latchkey_db_pool_max_connections").unwrap() >= 1.0);
    let backend_name = match backend() {
        latchkey_server::config::Backend::Sqlite => "sqlite",
        latchkey_server::config::Backend::Postgres => "postgres",
    };
    assert!(
        m.contains(&format!("backend=\"{backend_name}\"")),
        "build info names the backend:\n{m}"
    );
    // Paths are route templates, never raw paths with ids or query strings.
    assert!(!m.contains(&code) && !m.contains("user_code"));
    srv.stop().await;
}

#[tokio::test]
async fn request_ids_and_forwarded_headers_only_from_trusted_proxies() {
    // Not trusted: X-Forwarded-For and X-Request-Id from the client are ignored.
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let r = http()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    let id1 = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id1, "client-chosen-id");
    let r = http().get(format!("{base}/nope")).send().await.unwrap();
    let id2 = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id1, id2, "every request gets its own id");

    let ip_seen = |base: String| async move {
        let browser = Browser::new(&base);
        browser
            .sign_up("fw@example.com", "forwarded for me 1")
            .await;
        let r = http()
            .post(format!("{base}/oauth/device_authorization"))
            .header("x-forwarded-for", "203.0.113.66, 198.51.100.23")
            .form(&[("client_id", "latchkey-cli"), ("device_name", "fw")])
            .send()
            .await
            .unwrap();
        let dev: Value = r.json().await.unwrap();
        let page = browser
            .get(&format!(
                "/device?user_code={}",
                dev["user_code"].as_str().unwrap()
            ))
            .await;
        page.body
    };
    let page = ip_seen(base.clone()).await;
    assert!(page.contains("127.0.0.1"), "{page}");
    assert!(
        !page.contains("198.51.100.23"),
        "an untrusted header was believed"
    );
    srv.stop().await;

    // Behind a trusted proxy: the rightmost address that is not a trusted proxy is the client,
    // and the proxy's request id is kept.
    let srv = TestServer::start_with(Settings {
        trusted_proxies: Some(vec!["127.0.0.1".into(), "::1".into()]),
        ..Settings::default()
    })
    .await;
    let base = srv.url().to_owned();
    let page = ip_seen(base.clone()).await;
    assert!(page.contains("198.51.100.23"), "{page}");
    assert!(
        !page.contains("203.0.113.66"),
        "a client-written hop was believed"
    );
    let r = http()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "proxy-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "proxy-id-42");
    srv.stop().await;
}

/// `(path, methods)` of every route listed in `app()`, read from its source: `app()` is the
/// only place routes are listed, so this is the list.
fn routes_in_app() -> Vec<(String, String)> {
    let src = include_str!("../../src/lib.rs");
    let start = src.find("pub fn app(").expect("app() in lib.rs");
    let body = &src[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}\n").unwrap()];
    // `let name = Router::new()...;` sub-routers, then the final expression.
    let mut named: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut rest = body;
    let mut out = Vec::new();
    // Only statements of app() itself (four spaces in), not `let`s inside closures.
    while let Some(i) = rest.find("\n    let ").map(|i| i + 5) {
        let after = &rest[i + 4..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let chain_start = i + 4 + after.find('=').unwrap() + 1;
        let end = statement_end(&rest[chain_start..]) + chain_start;
        let routes = parse_chain(&rest[chain_start..end], "", &named);
        named.insert(name, routes);
        rest = &rest[end + 1..];
    }
    out.extend(parse_chain(rest, "", &named));
    out
}

fn statement_end(s: &str) -> usize {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ';' if depth == 0 => return i,
            _ => {}
        }
    }
    s.len()
}

/// The text inside the parentheses that open at `s[0]`.
fn balanced(s: &str) -> &str {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in app(): {s}")
}

fn first_string(s: &str) -> String {
    let a = s.find('"').unwrap() + 1;
    let b = s[a..].find('"').unwrap() + a;
    s[a..b].to_owned()
}

fn join(prefix: &str, path: &str) -> String {
    if path == "/" && !prefix.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}{path}")
    }
}

fn parse_chain(
    chain: &str,
    prefix: &str,
    named: &BTreeMap<String, Vec<(String, String)>>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let bytes = chain.as_bytes();
    let mut i = 0;
    while i < chain.len() {
        let c = bytes[i] as char;
        if depth == 0 && c == '.' {
            let tail = &chain[i + 1..];
            let call = |name: &str| tail.starts_with(name) && tail[name.len()..].starts_with('(');
            if call("route") {
                let args = balanced(&tail[5..]);
                let path = join(prefix, &first_string(args));
                for m in ["get", "post", "put", "patch", "delete"] {
                    let needle = format!("{m}(");
                    let found = args.match_indices(&needle).any(|(j, _)| {
                        j == 0
                            || !args.as_bytes()[j - 1].is_ascii_alphanumeric()
                                && args.as_bytes()[j - 1] != b'_'
                    });
                    if found {
                        out.push((path.clone(), m.to_owned()));
                    }
                }
                i += 1 + 5 + args.len() + 2;
                continue;
            }
            if call("nest") || call("merge") {
                let kw = if call("nest") { 4 } else { 5 };
                let args = balanced(&tail[kw..]);
                let (p, inner) = if kw == 4 {
                    let p = first_string(args);
                    let comma = args.find(',').unwrap();
                    (join(prefix, &p), args[comma + 1..].trim())
                } else {
                    (prefix.to_owned(), args.trim())
                };
                if let Some(routes) = named.get(inner) {
                    out.extend(routes.iter().map(|(path, m)| (join(&p, path), m.clone())));
                } else {
                    out.extend(parse_chain(inner, &p, named));
                }
                i += 1 + kw + args.len() + 2;
                continue;
            }
        }
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    out
}

#[tokio::test]
async fn openapi_describes_every_json_route() {
    let srv = TestServer::start().await;
    let base = srv.url().to_owned();
    let (s, _, doc) = get_json(&format!("{base}/openapi.json"), None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["servers"][0]["url"], base);
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| *m != "parameters")
                .map(move |m| (p.clone(), m.clone()))
        })
        .collect();

    let routes = routes_in_app();
    assert!(
        routes.len() > 20,
        "route parsing found too little: {routes:?}"
    );
    for probe in ["/oauth/token", "/v1/me", "/healthz", "/metrics"] {
        assert!(
            routes.iter().any(|(p, _)| p == probe),
            "route parsing missed {probe}: {routes:?}"
        );
    }
    let mut missing = Vec::new();
    for (path, method) in &routes {
        let url = format!(
            "{base}{}",
            path.split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/")
        );
        let req = match method.as_str() {
            "get" => http().get(&url),
            "delete" => http().delete(&url),
            "post" => http().post(&url).form(&[("x", "y")]),
            "put" => http().put(&url).form(&[("x", "y")]),
            _ => http().patch(&url).form(&[("x", "y")]),
        };
        let r = req.send().await.unwrap();
        assert_ne!(
            r.status().as_u16(),
            405,
            "{method} {path} is listed but refused"
        );
        let json = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json && !described.contains(&(path.clone(), method.clone())) {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "JSON routes missing from src/http/openapi.json: {missing:?}"
    );
    // And nothing described that app() does not route.
    let routed: BTreeSet<(String, String)> = routes.into_iter().collect();
    let stale: Vec<_> = described.difference(&routed).collect();
    assert!(
        stale.is_empty(),
        "openapi.json describes routes app() does not have: {stale:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let db = latchkey_server::testkit::TestDatabase::new().await;
    let d = super::replicas::Daemon::start(&db.url, &["--log-format", "json"]);
    let r = http()
        .get(format!("{}/v1/me", d.url))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let logs = d.logs();
    d.stop();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "request"
                && l["spans"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["request_id"] == id.as_str()))
        })
        .unwrap_or_else(|| panic!("no request log line with request_id {id}:\n{logs}"));
    assert_eq!(line["fields"]["status"], 401);
    assert!(!logs.contains("not-a-token"), "a token reached the log");
}

#[test]
fn every_setting_is_documented() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_latchkeyd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    // Option lines of the Options section start with the flag.
    let flags: BTreeSet<String> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split([' ', '=']).next())
        .map(str::to_owned)
        .filter(|w| {
            !w.is_empty()
                && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && !["help", "version", "config"].contains(&w.as_str())
        })
        .collect();
    assert!(flags.contains("database-url") && flags.contains("trusted-proxies"));
    let configuration = include_str!("../../../../docs/configuration.md");
    let operating = include_str!("../../../../docs/operating.md");
    for flag in &flags {
        let key = flag.replace('-', "_");
        let env = format!("LATCHKEYD_{}", key.to_uppercase());
        for needle in [
            format!("`--{flag}`"),
            format!("`{env}`"),
            format!("`{key}`"),
        ] {
            assert!(
                configuration.contains(&needle),
                "docs/configuration.md does not document {needle}"
            );
        }
        assert!(
            operating.contains(&format!("`{key}`")),
            "docs/operating.md does not mention `{key}`"
        );
    }
}
