//! Managing upstream sign-in from the web pages: a user's linked identities on `/account`
//! (link another, unlink while another way in remains) and an organization's own single
//! sign-on on `/orgs/{slug}` (provider, email domains proven by DNS, require SSO). Admins and
//! owners only, as `domain::roles` decides.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::account::{org_page, require_user};
use super::orgs::{self, Actor};
use super::sso::{open_org_secret, source_label};
use super::web::{WebCtx, WebForm};
use crate::domain::accounts::Role;
use crate::domain::dns;
use crate::domain::roles::{self, Action};
use crate::domain::sealing;
use crate::domain::secrets::new_secret;
use crate::federation::config::{ClientSecret, UpstreamConfig, normalize_domain, normalize_issuer};
use crate::state::{AppState, SharedState};
use crate::store::{OrgRow, OrgSsoRow, StoreError, UnlinkError, UserRow};

/// The identities part of `/account`: linked ones and the providers still available.
pub async fn identities_context(st: &AppState, user: &UserRow) -> Result<Value, StoreError> {
    let linked = st.store.identities_of(&user.id).await?;
    let mut rows = Vec::new();
    for i in &linked {
        rows.push(json!({
            "id": i.id,
            "provider": source_label(st, &i.provider).await,
            "email": i.email,
            "last_used": super::account::relative(st.now(), i.last_used_at),
        }));
    }
    let available: Vec<Value> = st
        .config
        .upstreams
        .iter()
        .filter(|p| !linked.iter().any(|i| i.provider == p.id))
        .map(|p| json!({"id": p.id, "name": p.name}))
        .collect();
    Ok(json!({
        "identities": rows,
        "linkable": available,
        "has_password": user.password_hash.is_some(),
    }))
}

/// `POST /account/identities/{id}/unlink`.
pub async fn unlink(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(id): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    if let Some(r) = ctx.csrf_rejection(&form) {
        return r;
    }
    let user = match require_user(&ctx, "/account") {
        Ok(u) => u,
        Err(r) => return *r,
    };
    // An organization that requires SSO keeps its members' SSO link.
    if let Ok(Some(i)) = st
        .store
        .identities_of(&user.id)
        .await
        .map(|v| v.into_iter().find(|i| i.id == id))
        && let Some(org_id) = i.provider.strip_prefix("org:")
        && let Ok(Some(sso)) = st.store.org_sso(org_id).await
        && sso.require_sso
    {
        return ctx.message_link(
            StatusCode::CONFLICT,
            "This sign-in method is required",
            "Your organization requires single sign-on, so its link stays. Ask an owner of the organization if it should be removed.",
            "/account#identities",
            "Back to your account",
        );
    }
    // Links to providers that are gone (no longer configured, SSO removed) are no way in.
    match st.store.identities_of(&user.id).await {
        Ok(all) => {
            let mut live_others = 0;
            for i in all.iter().filter(|i| i.id != id) {
                let live = match i.provider.strip_prefix("org:") {
                    Some(org_id) => matches!(st.store.org_sso(org_id).await, Ok(Some(_))),
                    None => st.upstream(&i.provider).is_some(),
                };
                live_others += usize::from(live);
            }
            if all.iter().any(|i| i.id == id) && live_others == 0 && user.password_hash.is_none() {
                return ctx.message_link(
                    StatusCode::CONFLICT,
                    "This is your only way to sign in",
                    "Unlinking it would lock you out. Set a password or link another provider first, then unlink this one.",
                    "/account#identities",
                    "Back to your account",
                );
            }
        }
        Err(e) => return ctx.internal(&e),
    }
    match st.store.unlink_identity(&user.id, &id).await {
        Ok(i) => {
            tracing::info!(user = %user.id, provider = %i.provider, "identity unlinked");
            Redirect::to("/account?done=unlinked#identities").into_response()
        }
        Err(UnlinkError::NotFound) => ctx.message_link(
            StatusCode::NOT_FOUND,
            "Nothing to unlink",
            "That sign-in method is not linked to your account (any more).",
            "/account#identities",
            "Back to your account",
        ),
        Err(UnlinkError::LastWayIn) => ctx.message_link(
            StatusCode::CONFLICT,
            "This is your only way to sign in",
            "Unlinking it would lock you out. Set a password or link another provider first, then unlink this one.",
            "/account#identities",
            "Back to your account",
        ),
        Err(UnlinkError::Store(e)) => ctx.internal(&e),
    }
}

/// The SSO part of `/orgs/{slug}`, for those who may configure it (`None` otherwise).
pub async fn org_sso_context(
    st: &AppState,
    org: &OrgRow,
    role: Role,
) -> Result<Option<Value>, StoreError> {
    if !roles::allowed(role, Action::ConfigureSso) || org.personal {
        return Ok(None);
    }
    let sso = st.store.org_sso(&org.id).await?;
    let domains: Vec<Value> = st
        .store
        .org_domains(&org.id)
        .await?
        .iter()
        .map(|d| {
            json!({
                "domain": d.domain,
                "verified": d.verified_at.is_some(),
                "record_name": dns::challenge_name(&d.domain),
                "record_value": dns::challenge_value(&d.token),
            })
        })
        .collect();
    Ok(Some(json!({
        "configured": sso.is_some(),
        "issuer": sso.as_ref().map(|s| s.issuer.clone()),
        "client_id": sso.as_ref().map(|s| s.client_id.clone()),
        "has_secret": sso.as_ref().is_some_and(|s| s.client_secret.is_some()),
        "secret_unreadable": sso.as_ref().is_some_and(|s| open_org_secret(st, s).is_err()),
        "can_store_secret": !st.config.sealing_keys.is_empty(),
        "default_role": sso.as_ref().map_or("member".to_owned(), |s| s.default_role.clone()),
        "require_sso": sso.as_ref().is_some_and(|s| s.require_sso),
        "redirect_uri": format!("{}/sso/org/{}/callback", st.issuer, org.slug),
        "domains": domains,
    })))
}

/// Checks the form and that the signed-in user may configure the org's SSO.
async fn admin_of(
    st: &AppState,
    ctx: &WebCtx,
    form: &super::extract::Params,
    slug: &str,
) -> Result<(UserRow, OrgRow, Role), Response> {
    if let Some(r) = ctx.csrf_rejection(form) {
        return Err(r);
    }
    let user = require_user(ctx, &format!("/orgs/{slug}")).map_err(|r| *r)?;
    let actor = Actor {
        user_id: &user.id,
        key: None,
    };
    let (org, role) = orgs::org_and_role(st, &actor, slug).await.map_err(|_| {
        ctx.message(
            StatusCode::NOT_FOUND,
            "Organization not found",
            "You are not a member of an organization by that name.",
            false,
        )
    })?;
    if !roles::allowed(role, Action::ConfigureSso) {
        return Err(ctx.message(
            StatusCode::FORBIDDEN,
            "Only owners can do this",
            "Single sign-on is set up by the organization's owners: its provider speaks for every address of the organization's domains. Ask an owner.",
            false,
        ));
    }
    if org.personal {
        return Err(ctx.message(
            StatusCode::BAD_REQUEST,
            "Not for personal organizations",
            "Single sign-on is for team organizations. Create one from your account page.",
            false,
        ));
    }
    Ok((user, org, role))
}

async fn back(
    st: &AppState,
    ctx: &WebCtx,
    user: &UserRow,
    slug: &str,
    r: Result<&str, (StatusCode, String)>,
) -> Response {
    match r {
        Ok(done) => Redirect::to(&format!("/orgs/{slug}?done={done}#sso")).into_response(),
        Err((status, msg)) => org_page(st, ctx, user, slug, status, json!({"error": msg})).await,
    }
}

/// Runs an owner's change to the org's SSO: form and permission checked, then `f`; back to
/// the org page with its notice, or its error in place.
async fn org_action(
    st: &AppState,
    ctx: &WebCtx,
    form: &super::extract::Params,
    slug: &str,
    f: impl AsyncFnOnce(&UserRow, &OrgRow, Role) -> Result<&'static str, (StatusCode, String)>,
) -> Response {
    let (user, org, role) = match admin_of(st, ctx, form, slug).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let result = f(&user, &org, role).await;
    back(st, ctx, &user, slug, result).await
}

/// `POST /orgs/{slug}/sso`: set up or change the org's provider. The provider must answer
/// discovery before anything is saved.
pub async fn save(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    org_action(&st, &ctx, &form, &slug, async |user, org, role| {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let issuer = normalize_issuer(form.get("issuer").unwrap_or(""))
            .map_err(|e| bad(format!("Issuer URL: {e}.")))?;
        let client_id = form.get("client_id").unwrap_or("").trim().to_owned();
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(bad("Enter the client ID your identity provider gave you.".into()));
        }
        let secret = form
            .get("client_secret")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        // "No client secret": forget the saved one and become a public client (PKCE only).
        let no_secret = form.get("no_secret") == Some("on");
        if no_secret && secret.is_some() {
            return Err(bad("Enter a client secret or tick \u{201c}No client secret\u{201d}, not both.".into()));
        }
        let default_role = form.get("default_role").unwrap_or("member");
        let default_role = Role::parse(default_role)
            .filter(|r| *r != Role::Owner && roles::may_invite(role, *r))
            .ok_or_else(|| bad("Choose admin, member or viewer as the role of new members (not above your own).".into()))?;
        let existing = st.store.org_sso(&org.id).await.map_err(internal)?;
        // Another provider (issuer or client) is a new trust relationship: the stored secret
        // is never sent to it, and the old provider's subjects no longer sign anyone in.
        let same_provider = existing
            .as_ref()
            .is_some_and(|e| e.issuer == issuer && e.client_id == client_id);
        let keep_secret = same_provider && secret.is_none() && !no_secret;
        let probe_secret = match (&existing, keep_secret) {
            (Some(e), true) => open_org_secret(&st, e).map_err(|_| {
                bad("The stored client secret cannot be read: it was saved under a key this server no longer has. Enter the client secret again, or tick \u{201c}No client secret\u{201d} for a public client.".into())
            })?,
            _ => secret.clone().map(ClientSecret::new),
        };
        let sealed = secret
            .as_deref()
            .map(|plain| {
                st.config
                    .sealing_keys
                    .seal(plain, &sealing::org_sso_context(&org.id, &issuer, &client_id))
            })
            .transpose()
            .map_err(|_| {
                bad("This server cannot store client secrets: its operator has not set a secret key (secret_key_file, see docs/configuration.md). Leave the client secret empty to use a public client with PKCE, or ask the operator.".into())
            })?;
        let probe = UpstreamConfig::for_org(
            &org.slug,
            &org.name,
            &issuer,
            &client_id,
            probe_secret,
            !st.config.org_sso_allow_private_networks,
        );
        st.federation.endpoints(&probe, st.now()).await.map_err(|e| {
            bad(format!(
                "Could not use {issuer}: {e}. Check the issuer URL (its /.well-known/openid-configuration must load)."
            ))
        })?;
        let row = OrgSsoRow {
            org_id: org.id.clone(),
            issuer,
            client_id,
            client_secret: sealed,
            default_role: default_role.as_str().to_owned(),
            // A new provider has not been shown to work: requiring it waits for an owner to
            // link it again.
            require_sso: same_provider && existing.as_ref().is_some_and(|s| s.require_sso),
        };
        st.store
            .save_org_sso(&row, keep_secret, st.now())
            .await
            .map_err(internal)?;
        // Links made by another provider go: when the client changed, all of them; otherwise
        // those of another issuer (also left from a provider removed before this one).
        let keep_issuer = match &existing {
            Some(e) if e.client_id != row.client_id => None,
            _ => Some(row.issuer.as_str()),
        };
        let n = st
            .store
            .forget_org_identities(&org.id, keep_issuer)
            .await
            .map_err(internal)?;
        if n > 0 {
            tracing::info!(org = %org.id, identities = n, "organization SSO provider changed; old links removed");
        }
        tracing::info!(org = %org.id, user = %user.id, "organization SSO saved");
        Ok("sso-saved")
    })
    .await
}

fn internal(e: StoreError) -> (StatusCode, String) {
    tracing::error!(error = %e, "internal error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server failed. Try again in a moment.".to_owned(),
    )
}

/// `POST /orgs/{slug}/sso/delete`.
pub async fn delete(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    org_action(&st, &ctx, &form, &slug, async |_, org, _| {
        st.store
            .delete_org_sso(&org.id)
            .await
            .map(|()| "sso-removed")
            .map_err(internal)
    })
    .await
}

/// `POST /orgs/{slug}/sso/require`: `require=on|off`. Turning it on needs a verified domain
/// and that the admin has signed in through the org's SSO (so nobody locks themselves out).
pub async fn require(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    let on = form.get("require") == Some("on");
    org_action(&st, &ctx, &form, &slug, async |user, org, _| {
        let conflict = |m: &str| (StatusCode::CONFLICT, m.to_owned());
        let Some(mut sso) = st.store.org_sso(&org.id).await.map_err(internal)? else {
            return Err(conflict("Set up the identity provider first."));
        };
        if on {
            let domains = st.store.org_domains(&org.id).await.map_err(internal)?;
            if !domains.iter().any(|d| d.verified_at.is_some()) {
                return Err(conflict("Verify at least one email domain first: SSO is required for the addresses of verified domains."));
            }
            let mine = st.store.identities_of(&user.id).await.map_err(internal)?;
            if !mine.iter().any(|i| i.provider == format!("org:{}", org.id)) {
                return Err(conflict("Link the organization's SSO to your own account first (the button next to Require SSO), so that it is known to work."));
            }
        }
        sso.require_sso = on;
        sso.client_secret = None;
        st.store
            .save_org_sso(&sso, true, st.now())
            .await
            .map_err(internal)?;
        if on {
            // Sign-ins made another way end now; the next one goes through SSO. The admin's
            // own browser stays signed in.
            let domains = st.store.org_domains(&org.id).await.map_err(internal)?;
            for d in domains.iter().filter(|d| d.verified_at.is_some()) {
                let n = st
                    .store
                    .end_sessions_at_domain(&d.domain, ctx.session_hash(), st.now())
                    .await
                    .map_err(internal)?;
                tracing::info!(org = %org.id, domain = %d.domain, users = n, "sessions ended: SSO now required");
            }
        }
        tracing::info!(org = %org.id, user = %user.id, require = on, "organization SSO requirement changed");
        Ok(if on { "sso-required" } else { "sso-optional" })
    })
    .await
}

/// `POST /orgs/{slug}/domains`: claim an email domain (to be verified by DNS).
pub async fn add_domain(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path(slug): Path<String>,
    WebForm(form): WebForm,
) -> Response {
    org_action(&st, &ctx, &form, &slug, async |_, org, _| {
        let domain = normalize_domain(form.get("domain").unwrap_or(""))
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}.")))?;
        let token = new_secret("");
        match st
            .store
            .add_org_domain(&org.id, &domain, &token, st.now())
            .await
        {
            Ok(()) => Ok("domain-added"),
            Err(StoreError::Conflict) => {
                Err((StatusCode::CONFLICT, format!("{domain} is already listed.")))
            }
            Err(e) => Err(internal(e)),
        }
    })
    .await
}

/// `POST /orgs/{slug}/domains/{domain}/verify`: looks for the TXT record.
pub async fn verify_domain(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path((slug, domain)): Path<(String, String)>,
    WebForm(form): WebForm,
) -> Response {
    org_action(&st, &ctx, &form, &slug, async |_, org, _| {
        let domains = st.store.org_domains(&org.id).await.map_err(internal)?;
        let Some(d) = domains.iter().find(|d| d.domain == domain) else {
            return Err((StatusCode::NOT_FOUND, format!("{domain} is not listed.")));
        };
        let servers = if st.config.dns_resolvers.is_empty() {
            dns::system_resolvers()
        } else {
            st.config.dns_resolvers.clone()
        };
        let name = dns::challenge_name(&d.domain);
        let want = dns::challenge_value(&d.token);
        let records = dns::txt_records(&servers, &name).await.map_err(|e| {
            (StatusCode::BAD_GATEWAY, format!("Could not look up {name}: {e}"))
        })?;
        if !records.iter().any(|r| r.trim() == want) {
            return Err((
                StatusCode::CONFLICT,
                format!("No TXT record {name} with the value {want} was found yet. DNS changes can take a while to appear; try again later."),
            ));
        }
        match st.store.verify_org_domain(&org.id, &d.domain, st.now()).await {
            Ok(_) => {
                tracing::info!(org = %org.id, domain = %d.domain, "domain verified by DNS");
                Ok("domain-verified")
            }
            Err(StoreError::Conflict) => Err((
                StatusCode::CONFLICT,
                format!("Another organization has already verified {}.", d.domain),
            )),
            Err(e) => Err(internal(e)),
        }
    })
    .await
}

/// `POST /orgs/{slug}/domains/{domain}/delete`.
pub async fn remove_domain(
    State(st): State<SharedState>,
    ctx: WebCtx,
    Path((slug, domain)): Path<(String, String)>,
    WebForm(form): WebForm,
) -> Response {
    org_action(&st, &ctx, &form, &slug, async |_, org, _| {
        st.store
            .remove_org_domain(&org.id, &domain)
            .await
            .map(|_| "domain-removed")
            .map_err(internal)
    })
    .await
}
