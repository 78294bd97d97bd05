//! Sealed secrets (see `crate::secrets`) and each account's second factor. Nothing here
//! sees a plaintext: values arrive sealed and leave sealed.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Store;
use crate::error::StoreError;
use crate::ids::UserId;

/// A named secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretRecord {
    pub name: String,
    pub key_id: String,
    pub updated_at_ms: i64,
    #[serde(skip_serializing, default)]
    #[schema(ignore)]
    pub sealed: String,
}

/// An account's TOTP second factor. `pending` is an enrolment not yet confirmed with a
/// code; recovery codes are kept as SHA-256 hashes, each removed when used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MfaRecord {
    pub user_id: UserId,
    pub sealed_secret: String,
    pub enabled: bool,
    pub last_step: Option<u64>,
    pub recovery_hashes: Vec<String>,
}

impl Store {
    pub async fn put_secret(&self, record: &SecretRecord) -> Result<(), StoreError> {
        self.execute(
            "UPSERT type::record('secret', $r.name) CONTENT {
                name: $r.name, key_id: $r.key_id, updated_at_ms: $r.updated_at_ms, sealed: $sealed
            } RETURN NONE",
            json!({ "r": record, "sealed": record.sealed }),
        )
        .await
    }

    pub async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let rows: Vec<SecretRecord> = self
            .rows(
                "SELECT name, key_id, updated_at_ms, sealed FROM type::record('secret', $name)",
                json!({ "name": name }),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    pub async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        self.rows(
            "SELECT name, key_id, updated_at_ms, sealed FROM secret ORDER BY name",
            json!({}),
        )
        .await
    }

    pub async fn put_mfa(&self, record: &MfaRecord) -> Result<(), StoreError> {
        self.execute(
            "UPSERT type::record('mfa', $r.user_id) CONTENT {
                user_id: $r.user_id, sealed_secret: $r.sealed_secret, enabled: $r.enabled,
                last_step: $r.last_step ?? NONE, recovery_hashes: $r.recovery_hashes
            } RETURN NONE",
            json!({ "r": record }),
        )
        .await
    }

    pub async fn mfa(&self, user_id: &UserId) -> Result<Option<MfaRecord>, StoreError> {
        let rows: Vec<MfaRecord> = self
            .rows(
                "SELECT user_id, sealed_secret, enabled, last_step, recovery_hashes
                 FROM type::record('mfa', $user)",
                json!({ "user": user_id }),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Removes the account's second factor, enrolled or half-enrolled.
    pub async fn delete_mfa(&self, user_id: &UserId) -> Result<(), StoreError> {
        self.execute(
            "DELETE type::record('mfa', $user)",
            json!({ "user": user_id }),
        )
        .await
    }

    pub async fn all_mfa(&self) -> Result<Vec<MfaRecord>, StoreError> {
        self.rows(
            "SELECT user_id, sealed_secret, enabled, last_step, recovery_hashes FROM mfa",
            json!({}),
        )
        .await
    }

    /// Records `step` as used, only if it is later than the last one: two requests with
    /// one code cannot both pass.
    pub async fn use_mfa_step(&self, user_id: &UserId, step: u64) -> Result<bool, StoreError> {
        let rows: Vec<serde_json::Value> = self
            .rows(
                "UPDATE type::record('mfa', $user) SET last_step = $step
                 WHERE last_step = NONE OR last_step < $step RETURN AFTER",
                json!({ "user": user_id, "step": step }),
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Removes one recovery code's hash; false when it was not there (unknown or used).
    pub async fn use_recovery_code(
        &self,
        user_id: &UserId,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let rows: Vec<serde_json::Value> = self
            .rows(
                "UPDATE type::record('mfa', $user) SET recovery_hashes -= $hash
                 WHERE recovery_hashes CONTAINS $hash RETURN AFTER",
                json!({ "user": user_id, "hash": hash }),
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
