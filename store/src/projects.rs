//! Projects and who belongs to them. A member row is keyed `[project, user]`, so a user
//! holds one role per project. The `default` project has no row: every account is in
//! it with its own role (see `auth::access`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Store;
use crate::access::Role;
use crate::error::StoreError;
use crate::ids::{ProjectId, UserId};

pub const DEFAULT_PROJECT: &str = "default";
/// The organisation of accounts and projects made without one; `default` is its project.
pub const DEFAULT_ORG: &str = "default";

/// The project a workflow (and so each of its runs) belongs to.
pub fn project_of(workflow: &troupe_workflow::Workflow) -> ProjectId {
    ProjectId::from(workflow.project.as_deref().unwrap_or(DEFAULT_PROJECT))
}

/// The id a workflow's definition declares, as the id type every layer above it takes.
/// (The workflow crate, below the store, keeps its own `id` a plain string.)
pub fn workflow_id_of(workflow: &troupe_workflow::Workflow) -> crate::WorkflowId {
    crate::WorkflowId::from(workflow.id.as_str())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectRecord {
    pub project_id: ProjectId,
    pub name: String,
    #[serde(default = "default_org")]
    pub org: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRecord {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub role: Role,
}

fn default_org() -> String {
    DEFAULT_ORG.into()
}

impl Store {
    /// Creates a project; an id already taken is refused.
    pub async fn insert_project(&self, project: &ProjectRecord) -> Result<(), StoreError> {
        self.execute(
            "CREATE type::record('project', $project.project_id) CONTENT $project RETURN NONE",
            json!({ "project": project }),
        )
        .await
        .map_err(|error| {
            if error.is_taken("already exists") {
                StoreError::InvalidRequest(format!("a project `{}` exists", project.project_id))
            } else {
                error
            }
        })
    }

    pub async fn project(&self, project_id: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let rows: Vec<ProjectRecord> = self
            .rows(
                "SELECT project_id, name, org, created_by, created_at_ms FROM type::record('project', $id)",
                json!({ "id": project_id }),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Whether workflows may name `project_id`: `default` always, any other once made.
    pub async fn project_exists(&self, project_id: &str) -> Result<bool, StoreError> {
        Ok(project_id == DEFAULT_PROJECT || self.project(project_id).await?.is_some())
    }

    pub async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        self.rows(
            "SELECT project_id, name, org, created_by, created_at_ms FROM project ORDER BY project_id",
            json!({}),
        )
        .await
    }

    /// Gives `user_id` `role` in the project, replacing any role it had there.
    pub async fn set_member(&self, member: &MemberRecord) -> Result<(), StoreError> {
        self.execute(
            "UPSERT type::record('member', [$m.project_id, $m.user_id]) CONTENT $m RETURN NONE",
            json!({ "m": member }),
        )
        .await
    }

    /// False when the user was not a member.
    pub async fn remove_member(
        &self,
        project_id: &str,
        user_id: &UserId,
    ) -> Result<bool, StoreError> {
        let rows: Vec<serde_json::Value> = self
            .rows(
                "DELETE type::record('member', [$project, $user]) RETURN BEFORE",
                json!({ "project": project_id, "user": user_id }),
            )
            .await?;
        Ok(!rows.is_empty())
    }

    pub async fn members(&self, project_id: &str) -> Result<Vec<MemberRecord>, StoreError> {
        self.rows(
            "SELECT project_id, user_id, role FROM member WHERE project_id = $project ORDER BY user_id",
            json!({ "project": project_id }),
        )
        .await
    }

    pub async fn memberships_of(&self, user_id: &UserId) -> Result<Vec<MemberRecord>, StoreError> {
        self.rows(
            "SELECT project_id, user_id, role FROM member WHERE user_id = $user",
            json!({ "user": user_id }),
        )
        .await
    }
}

impl Store {
    /// The ids of the projects of organisation `org`.
    pub async fn projects_of_org(&self, org: &str) -> Result<Vec<ProjectId>, StoreError> {
        self.rows(
            "SELECT VALUE project_id FROM project WHERE org = $org",
            json!({ "org": org }),
        )
        .await
    }
}
