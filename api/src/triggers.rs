//! What starts workflows besides people: `GET /api/v1/triggers` lists each workflow's
//! schedule (with its next tick) and push trigger and their last runs; pausing one
//! stops both until it is resumed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use troupe_node::TriggerView;
use troupe_security::auth::permissions::Permission;
use troupe_store::WorkflowId;

use crate::error::ApiError;
use crate::guard::Access;
use crate::handlers::{NodeState, workflow_for};

#[utoipa::path(get, path = "/api/v1/triggers", responses((status = 200, body = Vec<TriggerView>)))]
pub async fn list(
    State(node): NodeState,
    access: Access,
) -> Result<Json<Vec<TriggerView>>, ApiError> {
    let mut triggers = node.triggers().await?;
    if let Some(projects) = access.projects_with(Permission::WorkflowsView) {
        triggers.retain(|view| projects.contains(&view.project));
    }
    Ok(Json(triggers))
}

/// Stops the workflow's schedule and push trigger from starting runs.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/triggers/pause",
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn pause(
    State(node): NodeState,
    access: Access,
    Path(id): Path<WorkflowId>,
) -> Result<StatusCode, ApiError> {
    set_paused(&node, &access, &id, true).await
}

/// Lets them start runs again; ticks from the pause are not caught up.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/triggers/resume",
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn resume(
    State(node): NodeState,
    access: Access,
    Path(id): Path<WorkflowId>,
) -> Result<StatusCode, ApiError> {
    set_paused(&node, &access, &id, false).await
}

async fn set_paused(
    node: &troupe_node::Node,
    access: &Access,
    id: &WorkflowId,
    paused: bool,
) -> Result<StatusCode, ApiError> {
    workflow_for(node, access, Permission::WorkflowsExecute, id).await?;
    node.pause_triggers(id, paused, &access.actor(None)).await?;
    Ok(StatusCode::NO_CONTENT)
}
