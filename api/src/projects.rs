//! Projects, their members and their execution policy over HTTP. Creating one is
//! node-wide (`projects.create`); reading one, changing its members and granting it agent
//! kinds (`agents.configure`) are checked in the project itself, so a project owner
//! manages their own project and no other.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::guard::Access;
use crate::handlers::NodeState;
use troupe_node::policy::PolicyChange;
use troupe_security::audit::AuditAction;
use troupe_security::auth::permissions::{Permission, Role};
use troupe_store::StoreError;
use troupe_store::clock::now_ms;
use troupe_store::{DEFAULT_PROJECT, MemberRecord, ProjectPolicy, ProjectRecord};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewProject {
    /// `[a-z0-9_-]{1,64}`: the `project:` a workflow names.
    pub project_id: String,
    pub name: Option<String>,
    /// Only a super admin chooses; everyone else makes projects in their own organisation.
    pub org: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MemberRole {
    /// A project role (viewer, developer, reviewer, project_owner); it decides what the
    /// member may do in this project only.
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectWithMembers {
    #[serde(flatten)]
    pub project: ProjectRecord,
    pub members: Vec<MemberRecord>,
}

fn check_id(id: &str) -> ApiResult<()> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid || id == DEFAULT_PROJECT {
        return Err(ApiError::invalid_request(format!(
            "project id `{id}` must match [a-z0-9_-]{{1,64}} and not be `{DEFAULT_PROJECT}`"
        )));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/projects", request_body = NewProject, responses((status = 201, body = ProjectRecord), (status = 400, body = crate::error::ErrorBody)))]
pub async fn create(
    State(node): NodeState,
    access: Access,
    JsonBody(body): JsonBody<NewProject>,
) -> ApiResult<(StatusCode, Json<ProjectRecord>)> {
    check_id(&body.project_id)?;
    let actor = access.actor(None);
    let org = access.org_for_new(body.org.as_deref());
    troupe_security::auth::check_org(&org)?;
    let project = ProjectRecord {
        org,
        name: body
            .name
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| body.project_id.clone()),
        project_id: body.project_id.into(),
        created_by: actor.clone(),
        created_at_ms: now_ms(),
    };
    if project.name.len() > 200 {
        return Err(ApiError::invalid_request(
            "`name` must hold at most 200 characters",
        ));
    }
    node.store().insert_project(&project).await?;
    // An org owner's projects just grew.
    node.auth().invalidate_callers();
    node.audit()
        .record(
            &actor,
            AuditAction::ProjectCreate {
                name: project.name.clone(),
                org: project.org.clone(),
            },
            project.project_id.as_str(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// The projects the caller can read.
#[utoipa::path(get, path = "/api/v1/projects", responses((status = 200, body = Vec<ProjectRecord>)))]
pub async fn list(State(node): NodeState, access: Access) -> ApiResult<Json<Vec<ProjectRecord>>> {
    let mut projects = node.store().projects().await?;
    if let Some(visible) = access.projects_with(Permission::ProjectsRead) {
        projects.retain(|project| visible.contains(&project.project_id));
    }
    Ok(Json(projects))
}

async fn project_for(
    node: &troupe_node::Node,
    access: &Access,
    permission: Permission,
    id: &str,
) -> ApiResult<ProjectRecord> {
    let not_found = || StoreError::ProjectNotFound(id.into());
    access.require(permission, id, not_found)?;
    Ok(node.store().project(id).await?.ok_or_else(not_found)?)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", responses((status = 200, body = ProjectWithMembers), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(node): NodeState,
    access: Access,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectWithMembers>> {
    let project = project_for(&node, &access, Permission::ProjectsRead, &id).await?;
    let members = node.store().members(&id).await?;
    Ok(Json(ProjectWithMembers { project, members }))
}

/// Gives a user a role in the project (replacing the one it had there).
#[utoipa::path(put, path = "/api/v1/projects/{id}/members/{user}", request_body = MemberRole, responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_member(
    State(node): NodeState,
    access: Access,
    Path((id, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<MemberRole>,
) -> ApiResult<StatusCode> {
    let project = project_for(&node, &access, Permission::ProjectsUpdate, &id).await?;
    // Organisation-wide roles are account roles; a membership cannot hand them out.
    if !body.role.fits_a_membership() {
        return Err(ApiError::invalid_request(format!(
            "role `{}` is not one of project_owner, developer, reviewer, viewer",
            body.role
        )));
    }
    let member = node.auth().find_user(&user).await?.ok_or_else(|| {
        ApiError::invalid_request(format!("no user `{user}` (give an email or a user id)"))
    })?;
    if member.org != project.org {
        return Err(ApiError::invalid_request(format!(
            "`{}` is in organisation `{}`; project `{id}` takes members of `{}`",
            member.email, member.org, project.org
        )));
    }
    node.store()
        .set_member(&MemberRecord {
            project_id: id.clone().into(),
            user_id: member.user_id.clone(),
            role: body.role,
        })
        .await?;
    node.auth().invalidate_callers();
    node.audit()
        .record(
            &access.actor(None),
            AuditAction::ProjectMemberSet {
                user: member.email.clone(),
                role: body.role,
            },
            &id,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{user}", responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove_member(
    State(node): NodeState,
    access: Access,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    project_for(&node, &access, Permission::ProjectsUpdate, &id).await?;
    let not_member = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("`{user}` is not a member of project `{id}`"),
        )
    };
    let member = node.auth().find_user(&user).await?.ok_or_else(not_member)?;
    if !node.store().remove_member(&id, &member.user_id).await? {
        return Err(not_member());
    }
    node.auth().invalidate_callers();
    node.audit()
        .record(
            &access.actor(None),
            AuditAction::ProjectMemberRemove {
                user: member.email.clone(),
            },
            &id,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's execution policy; `default` included, which has no record of its own.
async fn policy_project(
    node: &troupe_node::Node,
    access: &Access,
    permission: Permission,
    id: &str,
) -> ApiResult<troupe_store::ProjectId> {
    let not_found = || StoreError::ProjectNotFound(id.into());
    access.require(permission, id, not_found)?;
    if !node.store().project_exists(id).await? {
        return Err(not_found().into());
    }
    Ok(id.into())
}

/// The agent kinds the project was granted and those it gates (none when never set).
#[utoipa::path(get, path = "/api/v1/projects/{id}/policy", responses((status = 200, body = ProjectPolicy), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_policy(
    State(node): NodeState,
    access: Access,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectPolicy>> {
    let project = policy_project(&node, &access, Permission::ProjectsRead, &id).await?;
    Ok(Json(node.store().project_policy(&project).await?))
}

/// Changes the project's policy: each list given replaces the one in force. Only
/// `agents.configure`.
#[utoipa::path(put, path = "/api/v1/projects/{id}/policy", request_body = PolicyChange, responses((status = 200, body = ProjectPolicy), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_policy(
    State(node): NodeState,
    access: Access,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<PolicyChange>,
) -> ApiResult<Json<ProjectPolicy>> {
    let project = policy_project(&node, &access, Permission::AgentsConfigure, &id).await?;
    let known = node.registry().kind_names();
    let policy = troupe_node::policy::change_project_policy(
        node.store(),
        node.audit(),
        &project,
        change,
        Some(&known),
        &access.actor(None),
    )
    .await?;
    Ok(Json(policy))
}
