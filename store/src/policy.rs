//! Each project's execution policy: the agent kinds it was granted beyond those every
//! project may use (kinds that run code that is not ours or reach the network), and the
//! kinds whose tasks must wait for a second person's approval. One row per project that
//! has a policy, the `default` project included; no row is no grants and no gates.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Store;
use crate::error::StoreError;
use crate::ids::ProjectId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectPolicy {
    pub project_id: ProjectId,
    /// Agent kinds this project's workflows may use although they need a grant
    /// (`shell`, `http`, a live `deployment_agent`, ...), sorted.
    pub allowed_kinds: Vec<String>,
    /// Agent kinds whose every task must be an approval gate (`requires_approval`) in a
    /// workflow with `separate_approver`, sorted: four eyes on a live deploy.
    #[serde(default)]
    pub gated_kinds: Vec<String>,
    /// Private networks (CIDR) the project's `http` and `osv_url` requests may reach
    /// beyond the node's; never loopback or link-local.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
    /// Who changed it last, and when.
    pub updated_by: String,
    pub updated_at_ms: i64,
}

impl Store {
    /// The project's policy; one that grants nothing (and was never updated) when it was
    /// never set.
    pub async fn project_policy(
        &self,
        project_id: &ProjectId,
    ) -> Result<ProjectPolicy, StoreError> {
        let rows: Vec<ProjectPolicy> = self
            .rows(
                "SELECT project_id, allowed_kinds, gated_kinds, allowed_networks, updated_by, \
                 updated_at_ms \
                 FROM type::record('project_policy', $id)",
                json!({ "id": project_id }),
            )
            .await?;
        Ok(rows.into_iter().next().unwrap_or_else(|| ProjectPolicy {
            project_id: project_id.clone(),
            allowed_kinds: Vec::new(),
            gated_kinds: Vec::new(),
            allowed_networks: Vec::new(),
            updated_by: String::new(),
            updated_at_ms: 0,
        }))
    }

    /// Replaces the project's policy.
    pub async fn set_project_policy(&self, policy: &ProjectPolicy) -> Result<(), StoreError> {
        self.execute(
            "UPSERT type::record('project_policy', $p.project_id) CONTENT $p RETURN NONE",
            json!({ "p": policy }),
        )
        .await
    }
}
