//! Every action the audit log records, with its details: the one list a compliance
//! review reads. The stored action name (`run.start`) and the details' JSON fields are
//! part of the log's format: renaming one breaks queries over old entries.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use troupe_store::{Permission, ProjectId, Role};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AuditAction {
    /// A node started; the digest identifies the settings it ran with.
    NodeStart {
        settings_sha256: String,
    },
    UserCreate {
        email: String,
        role: Role,
        #[serde(skip_serializing_if = "Option::is_none")]
        org: Option<String>,
        /// The first super admin, made at the first start of a store.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        bootstrap: bool,
    },
    UserDisable {},
    UserEnable {},
    /// A session was opened; `second_factor` says which one let it in, if any.
    AuthLogin {
        #[serde(skip_serializing_if = "Option::is_none")]
        second_factor: Option<SecondFactor>,
    },
    /// The password was right and a second factor is now asked for.
    AuthLoginPasswordOk {},
    AuthLoginFailed {
        client: Option<String>,
    },
    AuthMfaEnable {},
    AuthMfaFailed {},
    /// The owner removed their own second factor (after a step-up).
    AuthMfaRemove {},
    /// An administrator removed another account's second factor.
    AuthMfaReset {},
    /// The proof a sensitive change asked for was wrong.
    AuthStepUpFailed {},
    /// A rotated refresh token came back: its whole session was revoked.
    AuthRefreshReuse {
        revoked_session: bool,
    },
    AuthSessionEnd {},
    AuthPasswordChange {},
    ApiKeyCreate {
        name: String,
        scopes: Vec<Permission>,
        projects: Vec<ProjectId>,
    },
    ApiKeyRevoke {},
    WorkflowCreate {
        version: u32,
        project: ProjectId,
        source_sha256: String,
    },
    WorkflowDelete {},
    RunStart {
        workflow: String,
        version: Option<u32>,
    },
    RunCancel {},
    /// A failed or cancelled run continued; `tasks` run again.
    RunRetry {
        tasks: Vec<String>,
    },
    /// An unfinished run moved to another version of its workflow.
    RunMigrate {
        from_version: u32,
        to_version: u32,
    },
    /// One agent attempt invoked outside any workflow; the target is the invocation.
    AgentInvoke {
        kind: String,
        project: ProjectId,
    },
    ApprovalDecide {
        approved: bool,
        comment: Option<String>,
    },
    ProjectCreate {
        name: String,
        org: String,
    },
    ProjectMemberSet {
        user: String,
        role: Role,
    },
    /// A project's execution policy after the change: the kinds it was granted and
    /// the kinds whose tasks must wait for a second person's approval.
    ProjectPolicySet {
        allowed_kinds: Vec<String>,
        #[serde(default)]
        gated_kinds: Vec<String>,
        #[serde(default)]
        allowed_networks: Vec<String>,
    },
    ProjectMemberRemove {
        user: String,
    },
    SecretSet {},
    SecretsRotate {
        secrets: usize,
        mfa: usize,
    },
    /// A prompt held sensitive values (counted by kind); the target says whether they
    /// were redacted or the prompt refused.
    PromptSensitiveData {
        kinds: BTreeMap<String, usize>,
    },
    /// A model call left the machine for a paid provider: the prompt went to a third
    /// party.
    ModelPaidCall {
        request_id: String,
        model: String,
        tokens_in: usize,
        tokens_out: usize,
        cost_usd: f64,
        served: bool,
        error: Option<String>,
    },
    /// An alert rule's condition held for its `for`; the target is the alert's
    /// fingerprint, the same when it resolves.
    AlertFiring {
        alert: String,
        severity: String,
        labels: BTreeMap<String, String>,
        summary: String,
    },
    AlertResolved {
        alert: String,
        labels: BTreeMap<String, String>,
        fired_at_ms: i64,
    },
    /// A push webhook was not believed (no secret, a wrong signature or token); the
    /// target is the workflow. `sender` is `github` or `gitlab`, by the headers.
    WebhookRejected {
        sender: String,
        reason: String,
    },
    /// A workflow's schedule and push triggers were paused, or resumed; the target is
    /// the workflow.
    TriggersPause {},
    TriggersResume {},
    /// The node read its settings again; the target is the node. The digest is of the
    /// settings read (secrets masked); `needs_restart` changed but wait for a restart.
    ConfigReload {
        settings_sha256: String,
        applied: Vec<String>,
        needs_restart: Vec<String>,
    },
}

/// What let a login in after the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
}

impl AuditAction {
    /// The stored name, `area.verb`.
    pub fn name(&self) -> &'static str {
        match self {
            AuditAction::NodeStart { .. } => "node.start",
            AuditAction::UserCreate { .. } => "user.create",
            AuditAction::UserDisable {} => "user.disable",
            AuditAction::UserEnable {} => "user.enable",
            AuditAction::AuthLogin { .. } => "auth.login",
            AuditAction::AuthLoginPasswordOk {} => "auth.login_password_ok",
            AuditAction::AuthLoginFailed { .. } => "auth.login_failed",
            AuditAction::AuthMfaEnable {} => "auth.mfa_enable",
            AuditAction::AuthMfaFailed {} => "auth.mfa_failed",
            AuditAction::AuthMfaRemove {} => "auth.mfa_remove",
            AuditAction::AuthMfaReset {} => "auth.mfa_reset",
            AuditAction::AuthStepUpFailed {} => "auth.step_up_failed",
            AuditAction::AuthRefreshReuse { .. } => "auth.refresh_reuse",
            AuditAction::AuthSessionEnd {} => "auth.session_end",
            AuditAction::AuthPasswordChange {} => "auth.password_change",
            AuditAction::ApiKeyCreate { .. } => "api_key.create",
            AuditAction::ApiKeyRevoke {} => "api_key.revoke",
            AuditAction::WorkflowCreate { .. } => "workflow.create",
            AuditAction::WorkflowDelete {} => "workflow.delete",
            AuditAction::RunStart { .. } => "run.start",
            AuditAction::RunCancel {} => "run.cancel",
            AuditAction::RunRetry { .. } => "run.retry",
            AuditAction::RunMigrate { .. } => "run.migrate",
            AuditAction::AgentInvoke { .. } => "agent.invoke",
            AuditAction::ApprovalDecide { .. } => "approval.decide",
            AuditAction::ProjectCreate { .. } => "project.create",
            AuditAction::ProjectMemberSet { .. } => "project.member_set",
            AuditAction::ProjectMemberRemove { .. } => "project.member_remove",
            AuditAction::ProjectPolicySet { .. } => "project.policy_set",
            AuditAction::SecretSet {} => "secret.set",
            AuditAction::SecretsRotate { .. } => "secrets.rotate",
            AuditAction::PromptSensitiveData { .. } => "prompt.sensitive_data",
            AuditAction::ModelPaidCall { .. } => "model.paid_call",
            AuditAction::AlertFiring { .. } => "alert.firing",
            AuditAction::AlertResolved { .. } => "alert.resolved",
            AuditAction::ConfigReload { .. } => "config.reload",
            AuditAction::WebhookRejected { .. } => "webhook.rejected",
            AuditAction::TriggersPause {} => "triggers.pause",
            AuditAction::TriggersResume {} => "triggers.resume",
        }
    }

    /// The details as the entry stores them: a JSON object of the variant's fields.
    pub fn details(&self) -> Value {
        // Plain strings, numbers and maps with string keys: serialising cannot fail.
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Default::default()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn details_are_the_fields_and_a_variant_without_any_is_an_empty_object() {
        let start = AuditAction::RunStart {
            workflow: "ship".into(),
            version: Some(3),
        };
        assert_eq!(start.name(), "run.start");
        assert_eq!(start.details(), json!({"workflow": "ship", "version": 3}));
        assert_eq!(AuditAction::RunCancel {}.details(), json!({}));
        let login = AuditAction::AuthLogin {
            second_factor: Some(SecondFactor::RecoveryCode),
        };
        assert_eq!(login.details(), json!({"second_factor": "recovery_code"}));
        let bootstrap = AuditAction::UserCreate {
            email: "a@b.c".into(),
            role: Role::SuperAdmin,
            org: None,
            bootstrap: true,
        };
        assert_eq!(
            bootstrap.details(),
            json!({"email": "a@b.c", "role": "super_admin", "bootstrap": true})
        );
    }
}
