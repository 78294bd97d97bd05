//! Granting agent kinds to a project (the project's part of the execution policy, see
//! `troupe_engine::policy`): one function for the API and for the CLI on a stopped
//! node's store, so both validate and audit the same way.

use troupe_security::audit::{AuditAction, AuditLog};
use troupe_store::clock::now_ms;
use troupe_store::{ProjectId, ProjectPolicy, Store};

use crate::NodeError;

/// Longest agent kind name accepted in a grant.
const MAX_KIND_CHARS: usize = 64;

/// Replaces the kinds `project` was granted with `kinds` (sorted, without repeats),
/// audited as done `by`. `known`, when given, is every kind the node has: a grant of
/// another name is refused as a typo.
pub async fn set_project_kinds(
    store: &Store,
    audit: &AuditLog,
    project: &ProjectId,
    mut kinds: Vec<String>,
    known: Option<&[&str]>,
    by: &str,
) -> Result<ProjectPolicy, NodeError> {
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
    let policy = ProjectPolicy {
        project_id: project.clone(),
        allowed_kinds: kinds,
        updated_by: by.into(),
        updated_at_ms: now_ms(),
    };
    store.set_project_policy(&policy).await?;
    audit
        .record(
            by,
            AuditAction::ProjectPolicySet {
                allowed_kinds: policy.allowed_kinds.clone(),
            },
            project.as_str(),
        )
        .await?;
    Ok(policy)
}
