//! `POST /api/v1/agents/{kind}/invoke` and `GET /api/v1/invocations/{id}`: one agent
//! attempt outside any workflow, placed anywhere in the cluster, with the same pool,
//! limits, ledger and audit as a task. The caller needs `workflows.execute` in the
//! project it runs for, as it would to run a workflow with that task.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use troupe_engine::invoke::Invocation;
use troupe_security::auth::permissions::Permission;
use troupe_store::{DEFAULT_PROJECT, InvocationId, InvocationRecord, ProjectId, StoreError};

use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody};
use crate::guard::Access;
use crate::handlers::NodeState;
use crate::wire::InvokeRequest;

/// How long an attempt may run when the request does not say.
const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// Run one attempt of agent kind `kind`. With `wait` (the default) the answer is the
/// ended invocation (`status` succeeded or failed, with `outputs` or `error`); without,
/// 202 with the running invocation and its `Location` to poll.
#[utoipa::path(post, path = "/api/v1/agents/{kind}/invoke", request_body = InvokeRequest,
    responses((status = 200, body = InvocationRecord, description = "ended (or still running past its timeout)"),
        (status = 202, body = InvocationRecord, description = "accepted; poll its Location"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invoke(
    State(node): NodeState,
    access: Access,
    Path(kind): Path<String>,
    JsonBody(request): JsonBody<InvokeRequest>,
) -> Result<Response, ApiError> {
    let project = ProjectId::from(request.project.as_deref().unwrap_or(DEFAULT_PROJECT));
    let not_found = || StoreError::ProjectNotFound(project.to_string());
    access.require(Permission::WorkflowsExecute, &project, not_found)?;
    if !node.store().project_exists(project.as_str()).await? {
        return Err(not_found().into());
    }
    let invocation = Invocation {
        id: InvocationId::generate(),
        project,
        kind,
        inputs: request.inputs,
        runs_on: request.runs_on,
        timeout_secs: request.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
        requested_by: access.actor(None),
    };
    let wait = request.wait.unwrap_or(true);
    let record = node.invoke(invocation, wait).await?;
    if wait {
        return Ok(Json(record).into_response());
    }
    let location = format!("/api/v1/invocations/{}", record.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(record),
    )
        .into_response())
}

/// An invocation as it stands.
#[utoipa::path(get, path = "/api/v1/invocations/{id}",
    responses((status = 200, body = InvocationRecord), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(node): NodeState,
    access: Access,
    Path(id): Path<InvocationId>,
) -> Result<Json<InvocationRecord>, ApiError> {
    let record = node.invocation(&id).await?;
    access.require(Permission::WorkflowsView, &record.project, || {
        StoreError::InvocationNotFound(id.clone())
    })?;
    Ok(Json(record))
}
