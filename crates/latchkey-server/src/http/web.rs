//! Web pages: landing, sign-up, sign-in, sign-out, and the device verification page
//! (RFC 8628 §3.3). Forms carry a CSRF token (double-submit cookie, compared in constant time)
//! and POSTs from another origin are refused.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_proto::UserCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ClientIp, Params, UserAgent, cookie, read_form};
use super::pages::STYLESHEET;
use crate::domain::accounts::{self, normalize_email, validate_new_password};
use crate::domain::device::DeviceStatus;
use crate::domain::secrets::{constant_time_eq, hash_secret, new_secret};
use crate::state::{AppState, HashError, SharedState};
use crate::store::{StoreError, UserRow};

const SESSION_COOKIE: &str = "lk_session";
const CSRF_COOKIE: &str = "lk_csrf";

/// What every page needs: the signed-in user (if any) and the CSRF token.
pub struct WebCtx {
    state: SharedState,
    /// The signed-in user.
    pub user: Option<UserRow>,
    session_hash: Option<String>,
    session_created_at: Option<i64>,
    csrf: String,
    csrf_is_new: bool,
    origin_ok: bool,
}

impl FromRequestParts<SharedState> for WebCtx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let existing = cookie(&parts.headers, CSRF_COOKIE).filter(|c| c.len() == 43);
        let (csrf, csrf_is_new) = match existing {
            Some(c) => (c, false),
            None => (new_secret(""), true),
        };
        let mut user = None;
        let mut session_hash = None;
        let mut session_created_at = None;
        if let Some(raw) = cookie(&parts.headers, SESSION_COOKIE) {
            let hash = hash_secret(&raw);
            let found = state
                .store
                .web_session(&hash, state.now())
                .await
                .map_err(|e| internal_page(state, &e))?;
            if let Some(ws) = found {
                user = state
                    .store
                    .user_by_id(&ws.user_id)
                    .await
                    .map_err(|e| internal_page(state, &e))?;
                session_hash = Some(hash);
                session_created_at = Some(ws.created_at);
            }
        }
        Ok(Self {
            state: state.clone(),
            user,
            session_hash,
            session_created_at,
            csrf,
            csrf_is_new,
            origin_ok: origin_matches(&parts.headers, &state.issuer),
        })
    }
}

/// `Origin` (when a browser sends it) must be our own.
fn origin_matches(headers: &HeaderMap, issuer: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    match (url::Url::parse(origin), url::Url::parse(issuer)) {
        (Ok(o), Ok(i)) => o.origin() == i.origin(),
        _ => false,
    }
}

fn internal_page(state: &AppState, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "internal error");
    state.templates.message(
        &json!({"title": "Error"}),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server failed. Try again in a moment.",
    )
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on https.
pub fn cookie_header(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let s = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

impl WebCtx {
    /// The server state.
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    /// The context shared by all templates.
    fn base(&self, title: &str) -> Value {
        let upstreams: Vec<Value> = self
            .state
            .config
            .upstreams
            .iter()
            .map(|p| json!({"id": p.id, "name": p.name}))
            .collect();
        json!({
            "title": title,
            "csrf": self.csrf,
            "upstreams": upstreams,
            "allow_signup": self.state.config.allow_signup,
            "user": self.user.as_ref().map(|u| json!({"email": u.email, "name": u.name})),
        })
    }

    /// Renders a page and sets the CSRF cookie if it is new.
    pub fn page(&self, name: &str, title: &str, status: StatusCode, ctx: Value) -> Response {
        let mut r = self.state.templates.render(name, &self.base(title), ctx);
        *r.status_mut() = status;
        self.finish(r)
    }

    /// A message page.
    pub fn message(&self, status: StatusCode, heading: &str, message: &str, ok: bool) -> Response {
        self.page(
            "message.html",
            heading,
            status,
            json!({"heading": heading, "message": message, "ok": ok}),
        )
    }

    /// A message page with one link onwards.
    pub fn message_link(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        link: &str,
        link_text: &str,
    ) -> Response {
        self.page(
            "message.html",
            heading,
            status,
            json!({"heading": heading, "message": message, "ok": false, "link": link, "link_text": link_text}),
        )
    }

    /// Sets the CSRF cookie on a response if it is new.
    pub fn finish(&self, mut r: Response) -> Response {
        if self.csrf_is_new {
            r.headers_mut().append(
                header::SET_COOKIE,
                cookie_header(CSRF_COOKIE, &self.csrf, 86_400, self.state.secure_cookies),
            );
        }
        r
    }

    /// Checks the form's CSRF token against the cookie, and the request's origin; returns the
    /// error page to answer with when they do not match.
    pub fn csrf_rejection(&self, form: &Params) -> Option<Response> {
        let sent = form.get("csrf").unwrap_or("");
        if self.origin_ok
            && !self.csrf_is_new
            && constant_time_eq(sent.as_bytes(), self.csrf.as_bytes())
        {
            None
        } else {
            Some(self.message(
                StatusCode::FORBIDDEN,
                "This form expired",
                "The page was open too long or came from another site. Go back, reload the page and try again.",
                false,
            ))
        }
    }

    /// Seconds since this browser signed in, when signed in.
    pub fn signed_in_for(&self) -> Option<i64> {
        self.session_created_at.map(|t| self.state.now() - t)
    }

    /// The hash of the browser's session cookie, when signed in.
    pub fn session_hash(&self) -> Option<&str> {
        self.session_hash.as_deref()
    }

    /// A generic error page; the cause is logged.
    pub fn internal(&self, e: &dyn std::fmt::Display) -> Response {
        internal_page(&self.state, e)
    }

    /// Starts a web session for `user` and redirects to `next`.
    pub async fn sign_in_and_redirect(
        &self,
        user: &UserRow,
        next: &str,
        ip: Option<&str>,
        ua: Option<&str>,
    ) -> Response {
        let st = &self.state;
        let raw = new_secret("");
        let now = st.now();
        let ttl = st.config.web_session_ttl;
        if let Err(e) = st
            .store
            .create_web_session(&hash_secret(&raw), &user.id, now, now + ttl, ip, ua)
            .await
        {
            return internal_page(st, &e);
        }
        if let Some(old) = &self.session_hash {
            let _ = st.store.delete_web_session(old).await;
        }
        let mut r = Redirect::to(next).into_response();
        r.headers_mut().append(
            header::SET_COOKIE,
            cookie_header(SESSION_COOKIE, &raw, ttl, st.secure_cookies),
        );
        r
    }
}

/// A web form body; a bad body is an HTML error page.
pub struct WebForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for WebForm {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_form(req).await.map(|(_, p)| Self(p)).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("Bad form submission: {e}."),
            )
                .into_response()
        })
    }
}

/// A `next` target that stays on this site: a path, never `//host` or a full URL. Without
/// one, sign-in leads to the connect page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/connect".to_owned(),
    }
}

/// Query of pages that take `next`.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /`.
pub async fn home(ctx: WebCtx) -> Response {
    ctx.page(
        "home.html",
        "Welcome",
        StatusCode::OK,
        json!({"main_class": "wide"}),
    )
}

/// `GET /static/copy.js`: copy buttons, as progressive enhancement.
pub async fn copy_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        super::pages::COPY_SCRIPT,
    )
        .into_response()
}

/// `GET /static/style.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn signin_notice(next: &str) -> Option<&'static str> {
    next.starts_with("/device")
        .then_some("Sign in to connect your device. You'll come back to your code right after.")
}

/// `GET /signin`.
pub async fn signin_page(ctx: WebCtx, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if ctx.user.is_some() {
        return Redirect::to(&next).into_response();
    }
    let sso = super::sso::sso_offered(&ctx.state).await;
    ctx.page(
        "signin.html",
        "Sign in",
        StatusCode::OK,
        json!({"next": next, "email": "", "notice": signin_notice(&next), "sso": sso}),
    )
}

/// `POST /signin`.
pub async fn signin_submit(
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    WebForm(form): WebForm,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let st = ctx.state.clone();
    let next = safe_next(form.get("next"));
    let email_raw = form.get("email").unwrap_or("").to_owned();
    let sso = super::sso::sso_offered(&st).await;
    let fail = |status: StatusCode, msg: &str| {
        ctx.page(
            "signin.html",
            "Sign in",
            status,
            json!({"next": next, "email": email_raw, "error": msg, "sso": sso}),
        )
    };
    let now = st.now();
    if st
        .signin_per_ip
        .hit(ip.as_deref().unwrap_or("?"), now)
        .is_err()
    {
        st.metrics.login("web", "rate_limited");
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts from your network. Wait a minute and try again.",
        );
    }
    let Ok(email) = normalize_email(&email_raw) else {
        return fail(StatusCode::UNAUTHORIZED, "Wrong email or password.");
    };
    match super::sso::sso_required_message(&st, &email).await {
        Ok(Some(msg)) => {
            st.metrics.login("web", "sso_required");
            return fail(StatusCode::FORBIDDEN, &msg);
        }
        Ok(None) => {}
        Err(e) => return internal_page(&st, &e),
    }
    if st.signin_per_account.check(&email, now).is_err()
        || st.password_backoff.check(&email, now).is_err()
    {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts for this account. Wait a few minutes and try again.",
        );
    }
    let password = form.get("password").unwrap_or("").to_owned();
    let user = match st.store.user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => return internal_page(&st, &e),
    };
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = match st
        .hash_work(move || accounts::verify_password(&password, phc.as_deref()))
        .await
    {
        Ok(ok) => ok,
        Err(HashError::Busy) => {
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy. Try again in a few seconds.",
            );
        }
        Err(e) => return internal_page(&st, &e),
    };
    match user {
        Some(u) if ok && !u.disabled => {
            st.metrics.login("web", "success");
            st.password_backoff.succeed(&email);
            tracing::info!(user = %u.id, "web sign-in");
            ctx.sign_in_and_redirect(&u, &next, ip.as_deref(), ua.as_deref())
                .await
        }
        _ => {
            st.metrics.login("web", "invalid_credentials");
            let _ = st.signin_per_account.hit(&email, now);
            st.password_backoff.fail(&email, now);
            fail(StatusCode::UNAUTHORIZED, "Wrong email or password.")
        }
    }
}

/// `GET /signup`.
pub async fn signup_page(ctx: WebCtx, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if !ctx.state.config.allow_signup {
        return ctx.message(
            StatusCode::FORBIDDEN,
            "Sign-up is closed",
            "This server does not accept new accounts. Ask its operator for one.",
            false,
        );
    }
    ctx.page(
        "signup.html",
        "Create account",
        StatusCode::OK,
        json!({"next": next}),
    )
}

/// `POST /signup`.
pub async fn signup_submit(
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    WebForm(form): WebForm,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let st = ctx.state.clone();
    if !st.config.allow_signup {
        return ctx.message(
            StatusCode::FORBIDDEN,
            "Sign-up is closed",
            "This server does not accept new accounts. Ask its operator for one.",
            false,
        );
    }
    let next = safe_next(form.get("next"));
    let email_raw = form.get("email").unwrap_or("").to_owned();
    let name: String = form
        .get("name")
        .unwrap_or("")
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let fail = |status: StatusCode, msg: &str| {
        ctx.page(
            "signup.html",
            "Create account",
            status,
            json!({"next": next, "email": email_raw, "name": name, "error": msg}),
        )
    };
    if st
        .signin_per_ip
        .hit(ip.as_deref().unwrap_or("?"), st.now())
        .is_err()
    {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts from your network. Wait a minute.",
        );
    }
    let email = match normalize_email(&email_raw) {
        Ok(e) => e,
        Err(msg) => return fail(StatusCode::BAD_REQUEST, msg),
    };
    match super::sso::sso_required_message(&st, &email).await {
        Ok(Some(msg)) => return fail(StatusCode::FORBIDDEN, &msg),
        Ok(None) => {}
        Err(e) => return internal_page(&st, &e),
    }
    let password = form.get("password").unwrap_or("").to_owned();
    if let Err(msg) = validate_new_password(&password) {
        return fail(StatusCode::BAD_REQUEST, msg);
    }
    let phc = match st
        .hash_work(move || accounts::hash_password(&password))
        .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return internal_page(&st, &e),
        Err(HashError::Busy) => {
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy. Try again in a few seconds.",
            );
        }
        Err(e) => return internal_page(&st, &e),
    };
    let name_opt = (!name.is_empty()).then_some(name.as_str());
    match st
        .store
        .create_user(Some(&email), name_opt, Some(&phc), false, st.now())
        .await
    {
        Ok(user) => {
            tracing::info!(user = %user.id, "account created");
            ctx.sign_in_and_redirect(&user, &next, ip.as_deref(), ua.as_deref())
                .await
        }
        Err(StoreError::Conflict) => fail(
            StatusCode::CONFLICT,
            "An account with this email already exists. Sign in instead.",
        ),
        Err(e) => internal_page(&st, &e),
    }
}

/// `GET /signout`: a confirmation page (signing out is a POST so other sites cannot do it).
pub async fn signout_page(ctx: WebCtx) -> Response {
    if ctx.user.is_none() {
        return Redirect::to("/").into_response();
    }
    ctx.page("signout.html", "Sign out", StatusCode::OK, json!({}))
}

/// `POST /signout`.
pub async fn signout_submit(ctx: WebCtx, WebForm(form): WebForm) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    if let Some(h) = &ctx.session_hash
        && let Err(e) = ctx.state.store.delete_web_session(h).await
    {
        {
            return internal_page(&ctx.state, &e);
        }
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", 0, ctx.state.secure_cookies),
    );
    r
}

/// Query of `GET /device`.
#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

fn relative_time(secs: i64) -> String {
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 120 => "1 minute ago".into(),
        s => format!("{} minutes ago", s / 60),
    }
}

const BAD_CODE: &str = "That code is not valid or has expired. Check the code in your terminal, \
                        or start the login again to get a new one.";

/// `GET /device`: enter a code, or confirm the one in the link.
pub async fn device_page(
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    Query(q): Query<DeviceQuery>,
) -> Response {
    let st = ctx.state.clone();
    let Some(user) = &ctx.user else {
        let mut next = "/device".to_owned();
        if let Some(c) = &q.user_code {
            next.push_str("?user_code=");
            next.push_str(&url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>());
        }
        let target = format!(
            "/signin?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return ctx.finish(Redirect::to(&target).into_response());
    };
    let Some(raw) = q.user_code.filter(|c| !c.trim().is_empty()) else {
        return ctx.page(
            "device_enter.html",
            "Connect a device",
            StatusCode::OK,
            json!({"user_code": ""}),
        );
    };
    let now = st.now();
    let ip_key = ip.clone().unwrap_or_else(|| "?".into());
    let enter_again = |status: StatusCode, msg: &str| {
        ctx.page(
            "device_enter.html",
            "Connect a device",
            status,
            json!({"user_code": raw, "error": msg}),
        )
    };
    if let Err(wait) = st.user_code_guesses.check(&ip_key, &user.id, now) {
        let mut r = enter_again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many wrong codes. Wait {wait} seconds and try again."),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let code = match UserCode::parse(&raw) {
        Ok(c) => c,
        Err(e) => {
            st.user_code_guesses.fail(&ip_key, &user.id, now);
            return enter_again(
                StatusCode::BAD_REQUEST,
                &format!("That is not a valid code: {e}."),
            );
        }
    };
    let row = match st.store.device_by_user_code(code.canonical()).await {
        Ok(r) => r,
        Err(e) => return internal_page(&st, &e),
    };
    let Some(row) = row.filter(|r| r.status == DeviceStatus::Pending && r.expires_at > now) else {
        st.user_code_guesses.fail(&ip_key, &user.id, now);
        return enter_again(StatusCode::NOT_FOUND, BAD_CODE);
    };
    let org = match st.store.memberships(&user.id).await {
        Ok(m) => m.into_iter().next().map(|m| m.name),
        Err(e) => return internal_page(&st, &e),
    };
    let client_name = st
        .client(&row.client_id)
        .map_or_else(|| row.client_id.clone(), |c| c.name.clone());
    ctx.page(
        "device_confirm.html",
        "Approve sign-in",
        StatusCode::OK,
        json!({
            "user_code": code.to_string(),
            "client_name": client_name,
            "device_name": row.device_name,
            "ip": row.ip,
            "requested": relative_time(now - row.created_at),
            "scope": row.scope,
            "org": org,
        }),
    )
}

/// `POST /device`: approve or deny.
pub async fn device_submit(
    ctx: WebCtx,
    ClientIp(ip): ClientIp,
    WebForm(form): WebForm,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let st = ctx.state.clone();
    let Some(user) = &ctx.user else {
        return ctx.finish(Redirect::to("/signin?next=/device").into_response());
    };
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return ctx.message(
                StatusCode::BAD_REQUEST,
                "Choose approve or deny",
                "The form did not say whether to approve the request. Go back and press a button.",
                false,
            );
        }
    };
    let now = st.now();
    let ip_key = ip.unwrap_or_else(|| "?".into());
    // Deciding by code is a guess as much as looking one up: the same limits apply.
    if let Err(wait) = st.user_code_guesses.check(&ip_key, &user.id, now) {
        return ctx.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes",
            &format!("Wait {wait} seconds, then enter the code from your terminal again."),
            false,
        );
    }
    let Ok(code) = UserCode::parse(form.get("user_code").unwrap_or("")) else {
        st.user_code_guesses.fail(&ip_key, &user.id, now);
        return ctx.message(StatusCode::BAD_REQUEST, "Unknown code", BAD_CODE, false);
    };
    let org_id = match st.store.memberships(&user.id).await {
        Ok(m) => m.into_iter().next().map(|m| m.org_id),
        Err(e) => return internal_page(&st, &e),
    };
    match st
        .store
        .decide_device(code.canonical(), approve, &user.id, org_id.as_deref(), now)
        .await
    {
        Ok(true) if approve => {
            tracing::info!(user = %user.id, "device approved");
            ctx.message(
                StatusCode::OK,
                "Device connected",
                "You're signed in on your device. You can close this window and return to your terminal.",
                true,
            )
        }
        Ok(true) => ctx.message(
            StatusCode::OK,
            "Request denied",
            "Nothing was connected. The terminal that asked will stop waiting.",
            false,
        ),
        Ok(false) => {
            st.user_code_guesses.fail(&ip_key, &user.id, now);
            ctx.message(
                StatusCode::CONFLICT,
                "This request is no longer waiting",
                "It expired or was already answered. Start the login again in your terminal to get a new code.",
                false,
            )
        }
        Err(e) => internal_page(&st, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_stay_on_site() {
        assert_eq!(
            safe_next(Some("/device?user_code=X")),
            "/device?user_code=X"
        );
        assert_eq!(safe_next(Some("//evil.example")), "/connect");
        assert_eq!(safe_next(Some("https://evil.example")), "/connect");
        assert_eq!(safe_next(Some("/\\evil.example")), "/connect");
        assert_eq!(safe_next(Some("/a\nb")), "/connect");
        assert_eq!(safe_next(None), "/connect");
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        assert!(origin_matches(&h, "http://127.0.0.1:8080"));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().expect("hv"));
        assert!(origin_matches(&h, "http://127.0.0.1:8080"));
        h.insert(header::ORIGIN, "https://evil.example".parse().expect("hv"));
        assert!(!origin_matches(&h, "http://127.0.0.1:8080"));
    }
}
