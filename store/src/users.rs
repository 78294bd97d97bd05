//! Accounts and their sessions (refresh-token families). Refresh tokens are kept as
//! SHA-256 hashes only.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Store;
use crate::access::{Permission, Role};
use crate::error::StoreError;
use crate::ids::{ProjectId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRecord {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// The first password (printed once) must be changed before anything else.
    pub must_change_password: bool,
    pub created_at_ms: i64,
    /// The organisation the account belongs to; its projects are the ones an
    /// `org_owner` owns.
    #[serde(default = "default_org")]
    pub org: String,
    #[serde(skip_serializing, default)]
    #[schema(ignore)]
    pub password_hash: String,
}

fn default_org() -> String {
    crate::DEFAULT_ORG.into()
}

const USER_FIELDS: &str =
    "user_id, email, role, disabled, must_change_password, created_at_ms, org, password_hash";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub token_hash: String,
    pub family: String,
    pub user_id: UserId,
    pub expires_at_ms: i64,
    pub used: bool,
    pub revoked: bool,
}

impl Store {
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let ids: Vec<String> = self
            .rows("SELECT VALUE user_id FROM user LIMIT 1", json!({}))
            .await?;
        Ok(!ids.is_empty())
    }

    /// Creates a user; an email already taken is refused.
    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let email = user.email.to_lowercase();
        self.execute(
            "CREATE type::record('user', $user.user_id) CONTENT {
                user_id: $user.user_id, email: $email, role: $user.role, disabled: false,
                must_change_password: $user.must_change_password,
                created_at_ms: $user.created_at_ms, org: $user.org,
                password_hash: $user.password_hash
            } RETURN NONE",
            json!({"user": {
                "user_id": user.user_id, "role": user.role, "org": user.org,
                "must_change_password": user.must_change_password,
                "created_at_ms": user.created_at_ms, "password_hash": user.password_hash,
            }, "email": email}),
        )
        .await
        .map_err(|error| {
            if error.is_taken("user_email") {
                StoreError::InvalidRequest(format!("a user with email `{email}` exists"))
            } else {
                error
            }
        })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let rows: Vec<UserRecord> = self
            .rows(
                &format!("SELECT {USER_FIELDS} FROM user WHERE email = $email LIMIT 1"),
                json!({"email": email.to_lowercase()}),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    pub async fn user_by_id(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let rows: Vec<UserRecord> = self
            .rows(
                &format!("SELECT {USER_FIELDS} FROM type::record('user', $id)"),
                json!({"id": user_id}),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.rows(
            &format!("SELECT {USER_FIELDS} FROM user ORDER BY created_at_ms"),
            json!({}),
        )
        .await
    }

    pub async fn set_user_disabled(
        &self,
        user_id: &UserId,
        disabled: bool,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE type::record('user', $id) SET disabled = $disabled RETURN NONE",
            json!({"id": user_id, "disabled": disabled}),
        )
        .await
    }

    pub async fn set_password(
        &self,
        user_id: &UserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE type::record('user', $id) SET password_hash = $hash, must_change_password = false RETURN NONE",
            json!({"id": user_id, "hash": password_hash}),
        )
        .await
    }

    pub async fn insert_refresh(&self, record: &RefreshRecord) -> Result<(), StoreError> {
        self.execute(
            "CREATE type::record('refresh_token', $record.token_hash) CONTENT $record RETURN NONE",
            json!({"record": record}),
        )
        .await
    }

    /// Marks the token used and returns it as it was; `None` when unknown.
    pub async fn take_refresh(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let rows: Vec<RefreshRecord> = self
            .rows(
                "UPDATE type::record('refresh_token', $hash) SET used = true RETURN BEFORE",
                json!({"hash": token_hash}),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    pub async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE refresh_token SET revoked = true WHERE family = $family RETURN NONE;
             UPDATE type::record('session', $family) SET revoked = true RETURN NONE;",
            json!({"family": family}),
        )
        .await
    }

    pub async fn revoke_user_sessions(&self, user_id: &UserId) -> Result<(), StoreError> {
        self.execute(
            "UPDATE refresh_token SET revoked = true WHERE user_id = $user RETURN NONE;
             UPDATE session SET revoked = true WHERE user_id = $user RETURN NONE;",
            json!({"user": user_id}),
        )
        .await
    }

    /// Whether session `family` of `user_id` is still open (some token of it not
    /// revoked). Another user's session is never open for them.
    pub async fn session_open(&self, family: &str, user_id: &UserId) -> Result<bool, StoreError> {
        let rows: Vec<bool> = self
            .rows(
                "SELECT VALUE revoked FROM refresh_token
                 WHERE family = $family AND user_id = $user AND revoked = false LIMIT 1",
                json!({"family": family, "user": user_id}),
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

/// An API key as stored: its id and a SHA-256 of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub name: String,
    pub user_id: UserId,
    pub scopes: Vec<Permission>,
    /// Empty: every project the owner may reach.
    pub projects: Vec<ProjectId>,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    /// Requests a minute this key may make; `None`: no limit of its own.
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
    pub revoked: bool,
    #[serde(skip_serializing, default)]
    #[schema(ignore)]
    pub secret_hash: String,
}

const KEY_FIELDS: &str = "key_id, name, user_id, scopes, projects, created_at_ms, expires_at_ms, last_used_ms, rate_per_minute, revoked, secret_hash";

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.execute(
            "CREATE type::record('api_key', $key.key_id) CONTENT {
                key_id: $key.key_id, name: $key.name, user_id: $key.user_id,
                scopes: $key.scopes, projects: $key.projects, created_at_ms: $key.created_at_ms,
                expires_at_ms: $key.expires_at_ms ?? NONE, last_used_ms: NONE,
                rate_per_minute: $key.rate_per_minute ?? NONE, revoked: false,
                secret_hash: $hash
            } RETURN NONE",
            json!({"key": key, "hash": key.secret_hash}),
        )
        .await
    }

    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let rows: Vec<ApiKeyRecord> = self
            .rows(
                &format!("SELECT {KEY_FIELDS} FROM type::record('api_key', $id)"),
                json!({"id": key_id}),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    pub async fn api_keys_of(&self, user_id: &UserId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.rows(
            &format!(
                "SELECT {KEY_FIELDS} FROM api_key WHERE user_id = $user ORDER BY created_at_ms"
            ),
            json!({"user": user_id}),
        )
        .await
    }

    pub async fn touch_api_key(&self, key_id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE type::record('api_key', $id) SET last_used_ms = $at RETURN NONE",
            json!({"id": key_id, "at": at_ms}),
        )
        .await
    }

    /// Revokes key `key_id` of `user_id`; false when that user has no such key.
    pub async fn revoke_api_key(&self, user_id: &UserId, key_id: &str) -> Result<bool, StoreError> {
        let rows: Vec<serde_json::Value> = self
            .rows(
                "UPDATE type::record('api_key', $id) SET revoked = true WHERE user_id = $user RETURN BEFORE",
                json!({"id": key_id, "user": user_id}),
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Revokes every key of `user_id` (a password change: whoever knew the old
    /// password may have made one).
    pub async fn revoke_api_keys_of(&self, user_id: &UserId) -> Result<(), StoreError> {
        self.execute(
            "UPDATE api_key SET revoked = true WHERE user_id = $user AND revoked = false RETURN NONE",
            json!({"user": user_id}),
        )
        .await
    }
}
