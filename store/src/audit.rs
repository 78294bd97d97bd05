//! The audit chain's rows: `audit_log:[seq]`, so a second writer of the same sequence
//! number fails instead of forking the chain.

use serde_json::{Value, json};

use crate::Store;
use crate::error::StoreError;
use serde::{Deserialize, Serialize};

/// One entry of the hash-chained audit log as it is stored (how its hash is made and
/// checked is the security crate's `audit::chain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// 1, 2, 3, ... with no gap.
    pub seq: u64,
    pub at_ms: i64,
    /// Who did it (a user, `system`, or the name a caller gave until accounts exist).
    pub actor: String,
    /// `workflow.create`, `run.start`, `approval.decide`, `model.paid_call`, ...
    pub action: String,
    /// What it was done to (a workflow id, a run id, `run/task`).
    pub target: String,
    /// The action's details as JSON text.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

const ENTRY_FIELDS: &str = "seq, at_ms, actor, action, target, details, prev_hash, hash";

/// Which entries an export covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub actor: Option<String>,
    /// Only the entries by or about these people (an organisation's); `None`: all.
    pub people: Option<People>,
    pub action: Option<String>,
    pub limit: usize,
}

/// Some people: an entry is theirs when one of them acted (`actor`, an email or a user
/// id) or it is about one of them (`target`, a user id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct People {
    pub emails: Vec<String>,
    pub user_ids: Vec<String>,
}

impl Store {
    /// Writes `entry` under its sequence number; fails when that number is taken.
    pub async fn insert_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.traced(
            "insert audit_log",
            "CREATE type::record('audit_log', [$entry.seq]) CONTENT $entry RETURN NONE",
            json!({ "entry": entry }),
        )
        .await
    }

    pub async fn audit_head(&self) -> Result<Option<AuditEntry>, StoreError> {
        let rows: Vec<AuditEntry> = self
            .rows(
                &format!("SELECT {ENTRY_FIELDS} FROM audit_log ORDER BY seq DESC LIMIT 1"),
                json!({}),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Up to `count` entries after `after_seq`, in order (gaps included: a deleted
    /// entry must show as missing, not end the walk).
    pub async fn audit_after(
        &self,
        after_seq: u64,
        count: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.rows(
            &format!(
                "SELECT {ENTRY_FIELDS} FROM audit_log WHERE seq > $after ORDER BY seq LIMIT {count}"
            ),
            json!({ "after": after_seq }),
        )
        .await
    }

    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conditions = vec!["true".to_string()];
        if filter.since_ms.is_some() {
            conditions.push("at_ms >= $since".into());
        }
        if filter.until_ms.is_some() {
            conditions.push("at_ms < $until".into());
        }
        if filter.actor.is_some() {
            conditions.push("actor = $actor".into());
        }
        if filter.action.is_some() {
            conditions.push("action = $action".into());
        }
        if filter.people.is_some() {
            conditions
                .push("(actor IN $emails OR actor IN $user_ids OR target IN $user_ids)".into());
        }
        let limit = if filter.limit == 0 {
            10_000
        } else {
            filter.limit.min(100_000)
        };
        let vars: Value = json!({
            "since": filter.since_ms,
            "until": filter.until_ms,
            "actor": filter.actor,
            "emails": filter.people.as_ref().map(|people| &people.emails),
            "user_ids": filter.people.as_ref().map(|people| &people.user_ids),
            "action": filter.action,
        });
        self.rows(
            &format!(
                "SELECT {ENTRY_FIELDS} FROM audit_log WHERE {} ORDER BY seq LIMIT {limit}",
                conditions.join(" AND ")
            ),
            vars,
        )
        .await
    }
}
