//! What a user sees of their sessions: one row per refresh-token family, with the device
//! and address it signed in from and when it was last refreshed. The tokens themselves
//! stay in `refresh_token`; ending a session revokes both.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Store;
use crate::error::StoreError;
use crate::ids::UserId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionRecord {
    pub session_id: String,
    pub user_id: UserId,
    pub created_at_ms: i64,
    /// The sign-in, or the last refresh (access tokens in between are not recorded).
    pub last_used_ms: i64,
    /// The client's `User-Agent`, cut to 200 characters.
    pub device: Option<String>,
    pub client_ip: Option<String>,
}

impl Store {
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.execute(
            "CREATE type::record('session', $s.session_id) CONTENT {
                session_id: $s.session_id, user_id: $s.user_id, created_at_ms: $s.created_at_ms,
                last_used_ms: $s.last_used_ms, device: $s.device ?? NONE,
                client_ip: $s.client_ip ?? NONE, revoked: false
            } RETURN NONE",
            json!({ "s": session }),
        )
        .await
    }

    pub async fn touch_session(&self, session_id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE type::record('session', $id) SET last_used_ms = $at RETURN NONE",
            json!({ "id": session_id, "at": at_ms }),
        )
        .await
    }

    /// The user's sessions that have not ended, most recent first.
    pub async fn open_sessions(&self, user_id: &UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.rows(
            "SELECT session_id, user_id, created_at_ms, last_used_ms, device, client_ip
             FROM session WHERE user_id = $user AND revoked = false ORDER BY last_used_ms DESC",
            json!({ "user": user_id }),
        )
        .await
    }

    pub async fn session(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let rows: Vec<SessionRecord> = self
            .rows(
                "SELECT session_id, user_id, created_at_ms, last_used_ms, device, client_ip
                 FROM type::record('session', $id) WHERE revoked = false",
                json!({ "id": session_id }),
            )
            .await?;
        Ok(rows.into_iter().next())
    }
}
