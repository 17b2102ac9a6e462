//! Organizations: which ones the signed-in user belongs to, and switching the session's active
//! one without a new login.
//!
//! The server puts the active org and the user's role in it into each access token when it is
//! issued. So after `PUT /v1/session/org` the client refreshes at once, under the credentials
//! lock, whatever the token's expiry: the very next request (from this process or another one)
//! carries the new org.

use crate::api_keys::Method;
use crate::credentials::Credentials;
use crate::error::Result;
use crate::{Client, identity, session};
use latchkey_proto::{OrgList, OrgMembership, SwitchOrgRequest};

/// The result of [`Client::switch_org`].
#[derive(Debug, Clone)]
pub struct OrgSwitch {
    /// The org that is now active, with the user's role in it.
    pub org: OrgMembership,
    /// Whether the access token was replaced by one that carries the new org. `false` when the
    /// token came from `<APP>_TOKEN` or the server issued no refresh token: the old token keeps
    /// the previous org until it expires.
    pub token_refreshed: bool,
}

impl Client {
    /// The organizations of the signed-in user, with the session's active one
    /// (`GET /v1/orgs`).
    pub async fn orgs(&self) -> Result<OrgList> {
        let resp = self.api_send::<()>(Method::Get, "/v1/orgs", None).await?;
        self.check_write(&resp, "list organizations").await?;
        resp.json()
    }

    /// Makes `org` (a slug or an id) the session's active organization
    /// (`PUT /v1/session/org`), then refreshes the access token at once so that it carries the
    /// new org and role. API-key credentials cannot switch: a key acts in one org.
    pub async fn switch_org(&self, org: &str) -> Result<OrgSwitch> {
        let req = SwitchOrgRequest {
            org: org.trim().to_owned(),
        };
        let resp = self
            .api_send(Method::Put, "/v1/session/org", Some(&req))
            .await?;
        self.check_write(&resp, &format!("switch to {}", req.org))
            .await?;
        let membership: OrgMembership = resp.json()?;
        if self.env_token.is_some() {
            return Ok(OrgSwitch {
                org: membership,
                token_refreshed: false,
            });
        }
        let summary = identity::org_summary(&membership);
        let update = move |c: &mut Credentials| c.identity.org = Some(summary);
        let refreshed =
            session::force_refresh(&self.http, &self.credential_store(), &self.app, update).await?;
        Ok(OrgSwitch {
            org: membership,
            token_refreshed: refreshed,
        })
    }
}
