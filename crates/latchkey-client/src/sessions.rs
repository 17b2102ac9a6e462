//! The signed-in user's login sessions: every `login` creates one (named by `--name`), and any
//! of them can be ended from any other (`GET /v1/sessions`, `DELETE /v1/sessions/{id}`).
//!
//! Ending a session kills its refresh token at once, so the CLI that held it gets "Session
//! expired" at its next refresh. Ending the caller's own session is allowed; the embedding CLI
//! should then treat it as a logout (the stored credentials are dead).

use crate::Client;
use crate::api_keys::Method;
use crate::error::{Error, Result};
use latchkey_proto::SessionList;

impl Client {
    /// The user's live sessions, most recently used first, with `current` naming the one this
    /// client's token belongs to (`GET /v1/sessions`).
    pub async fn sessions(&self) -> Result<SessionList> {
        self.api_get("/v1/sessions").await
    }

    /// Ends the session `id` (`DELETE /v1/sessions/{id}`). An id that is not one of the user's
    /// live sessions is [`Error::SessionNotFound`].
    pub async fn revoke_session(&self, id: &str) -> Result<()> {
        let id = id.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(Error::InvalidValue {
                key: "ID".to_owned(),
                reason: format!("`{id}` is not a session id (see `{} sessions`)", self.app),
            });
        }
        let path = format!("/v1/sessions/{id}");
        let resp = self.api_send::<()>(Method::Delete, &path, None).await?;
        if resp.status == 404 {
            return Err(Error::SessionNotFound {
                id: id.to_owned(),
                app: self.app.clone(),
            });
        }
        self.check_write(&resp, &format!("end session {id}")).await
    }
}
