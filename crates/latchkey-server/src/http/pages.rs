//! HTML rendering: the embedded templates and the shared page context (who is signed in, the
//! CSRF token), plus the security headers every response carries.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde_json::{Value, json};

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("signin.html", include_str!("../templates/signin.html")),
    ("signup.html", include_str!("../templates/signup.html")),
    ("signout.html", include_str!("../templates/signout.html")),
    (
        "device_enter.html",
        include_str!("../templates/device_enter.html"),
    ),
    (
        "device_confirm.html",
        include_str!("../templates/device_confirm.html"),
    ),
    ("message.html", include_str!("../templates/message.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("connect.html", include_str!("../templates/connect.html")),
    ("account.html", include_str!("../templates/account.html")),
    ("org.html", include_str!("../templates/org.html")),
    ("invite.html", include_str!("../templates/invite.html")),
    (
        "sso_email.html",
        include_str!("../templates/sso_email.html"),
    ),
    ("sso_link.html", include_str!("../templates/sso_link.html")),
];

/// The copy-button script.
pub const COPY_SCRIPT: &str = include_str!("../static/copy.js");

/// The one stylesheet.
pub const STYLESHEET: &str = include_str!("../static/style.css");

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Loads every template; a template that does not parse is a build defect, caught by the
    /// unit test below.
    pub fn new() -> Self {
        let mut env = Environment::new();
        // Optional data (a user without an org, a page without a notice) renders as empty.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        Self { env }
    }

    /// Renders a template with `ctx` merged over `base`.
    pub fn render(&self, name: &str, base: &Value, ctx: Value) -> Response {
        let mut merged = base.clone();
        if let (Some(m), Value::Object(extra)) = (merged.as_object_mut(), ctx) {
            m.extend(extra);
        }
        match self.env.get_template(name).and_then(|t| t.render(&merged)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<h1>Something went wrong</h1><p>Try again in a moment.</p>"),
                )
                    .into_response()
            }
        }
    }

    /// A simple message page.
    pub fn message(
        &self,
        base: &Value,
        status: StatusCode,
        heading: &str,
        message: &str,
    ) -> Response {
        let mut r = self.render(
            "message.html",
            base,
            json!({ "title": heading, "heading": heading, "message": message }),
        );
        *r.status_mut() = status;
        r
    }
}

/// Adds the security headers: no sniffing, no referrer to other sites, a strict CSP that forbids
/// framing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` with
    // form POSTs (Fetch, "serializing a request origin"), which the CSRF origin check refuses.
    // Other sites still get no referrer, so codes in URLs never leak.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A handler may set a narrower-purpose policy of its own (the consent page allows its
    // form to redirect to the loopback listener); otherwise this strict one applies.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders() {
        let t = Templates::new();
        let base =
            json!({"title": "t", "csrf": "c", "allow_signup": true, "user": {"email": "a@b.c"}});
        for (name, _) in TEMPLATES {
            let r = t.render(
                name,
                &base,
                json!({"heading": "h", "message": "m", "user_code": "BCDF-GHJK"}),
            );
            assert_eq!(r.status(), StatusCode::OK, "{name}");
        }
    }

    #[test]
    fn escapes_html() {
        let t = Templates::new();
        let base = json!({"title": "t", "csrf": "c"});
        let r = t.render("signin.html", &base, json!({"email": "<script>x</script>"}));
        assert_eq!(r.status(), StatusCode::OK);
    }
}
