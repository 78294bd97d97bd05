//! Changing a project's execution policy (the project's part of it, see
//! `troupe_engine::policy`): one function for the API and for the CLI on a stopped
//! node's store, so both validate and audit the same way.

use troupe_security::audit::{AuditAction, AuditLog};
use troupe_store::clock::now_ms;
use troupe_store::{ProjectId, ProjectPolicy, Store};

use crate::NodeError;

/// Longest agent kind name accepted in a policy.
const MAX_KIND_CHARS: usize = 64;

/// A change to a project's policy: each list given replaces the one in force, each
/// list left out stays as it is.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PolicyChange {
    /// Every kind that needs a grant (shell, http, test_runner with a command, a live
    /// deployment_agent, plugins) that the project's workflows may use.
    #[serde(default)]
    pub allowed_kinds: Option<Vec<String>>,
    /// Every kind whose tasks must be approval gates (`requires_approval`) in a workflow
    /// with `separate_approver`.
    #[serde(default)]
    pub gated_kinds: Option<Vec<String>>,
    /// Every private network (CIDR) the project's `http` and `osv_url` requests may
    /// reach beyond the node's; never loopback or link-local.
    #[serde(default)]
    pub allowed_networks: Option<Vec<String>>,
}

/// Applies `change` to `project`'s policy, audited as done `by`. `known`, when given,
/// is every kind the node has: another name is refused as a typo.
pub async fn change_project_policy(
    store: &Store,
    audit: &AuditLog,
    project: &ProjectId,
    change: PolicyChange,
    known: Option<&[&str]>,
    by: &str,
) -> Result<ProjectPolicy, NodeError> {
    if change.allowed_kinds.is_none()
        && change.gated_kinds.is_none()
        && change.allowed_networks.is_none()
    {
        return Err(NodeError::InvalidRequest(
            "the change names no list: give allowed_kinds, gated_kinds or allowed_networks".into(),
        ));
    }
    let current = store.project_policy(project).await?;
    let policy = ProjectPolicy {
        project_id: project.clone(),
        allowed_kinds: checked_kinds(change.allowed_kinds, current.allowed_kinds, known)?,
        gated_kinds: checked_kinds(change.gated_kinds, current.gated_kinds, known)?,
        allowed_networks: checked_networks(change.allowed_networks, current.allowed_networks)?,
        updated_by: by.into(),
        updated_at_ms: now_ms(),
    };
    store.set_project_policy(&policy).await?;
    audit
        .record(
            by,
            AuditAction::ProjectPolicySet {
                allowed_kinds: policy.allowed_kinds.clone(),
                gated_kinds: policy.gated_kinds.clone(),
                allowed_networks: policy.allowed_networks.clone(),
            },
            project.as_str(),
        )
        .await?;
    Ok(policy)
}

/// `new` (or `current` when there is no new list), checked, sorted and without repeats.
fn checked_kinds(
    new: Option<Vec<String>>,
    current: Vec<String>,
    known: Option<&[&str]>,
) -> Result<Vec<String>, NodeError> {
    let Some(mut kinds) = new else {
        return Ok(current);
    };
    for kind in &kinds {
        let well_formed = !kind.is_empty()
            && kind.chars().count() <= MAX_KIND_CHARS
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed {
            return Err(NodeError::InvalidRequest(format!(
                "`{kind}` is not an agent kind name ([a-z0-9_-], at most {MAX_KIND_CHARS})"
            )));
        }
        if let Some(known) = known
            && !known.contains(&kind.as_str())
        {
            return Err(NodeError::InvalidRequest(format!(
                "`{kind}` is not an agent kind of this node; it has: {}",
                known.join(", ")
            )));
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// `new` (or `current` when there is no new list), each a network a project may be
/// allowed, sorted and without repeats.
fn checked_networks(
    new: Option<Vec<String>>,
    current: Vec<String>,
) -> Result<Vec<String>, NodeError> {
    let Some(mut networks) = new else {
        return Ok(current);
    };
    for network in &mut networks {
        *network = network.trim().to_owned();
        troupe_agents::egress::check_project_network(network).map_err(NodeError::InvalidRequest)?;
    }
    networks.sort();
    networks.dedup();
    Ok(networks)
}
