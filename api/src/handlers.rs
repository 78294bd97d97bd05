//! Route handlers: translate HTTP to `Node` calls and back, nothing more.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::body::{JsonBody, read_bytes};
use crate::error::{ApiError, ErrorBody};
use crate::guard::Access;
use crate::idempotency;
use crate::wire::*;
use troupe_engine::state::MigrationPlan;
use troupe_node::{AlertsNow, Node, PendingApproval, Readiness, RunDetail, RunOptions};
use troupe_security::auth::permissions::Permission;
use troupe_store::StoreError;
use troupe_store::events::{RunStatus, StoredEvent};
use troupe_store::{RunFilter, RunId, RunRecord, TaskId, WorkflowId, WorkflowRecord, project_of};

pub(crate) type NodeState = State<Arc<Node>>;
type ApiResult<T> = Result<T, ApiError>;

/// Create a workflow, or a new version of it, from YAML (`application/yaml` or
/// `text/plain` body) or JSON `{"source": ...}`.
#[utoipa::path(post, path = "/api/v1/workflows", request_body(content = CreateWorkflow, description = "JSON, or the YAML text itself"),
    responses((status = 201, body = WorkflowCreated), (status = 422, body = ErrorBody, description = "every validation error, with file, line and column")))]
pub async fn create_workflow(
    State(node): NodeState,
    access: Access,
    request: Request,
) -> ApiResult<(StatusCode, Json<WorkflowCreated>)> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    let body = read_bytes(request, &()).await?;
    let create = if is_json {
        serde_json::from_slice::<CreateWorkflow>(&body).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("expected {{\"source\": \"...\"}}: {error}"),
            )
        })?
    } else {
        let source = String::from_utf8(body.to_vec()).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_utf8",
                "the workflow text is not UTF-8",
            )
        })?;
        CreateWorkflow {
            source,
            file_name: None,
        }
    };
    let file_name = create.file_name.as_deref().unwrap_or("request");
    let (workflow, existing) = node.prepare_workflow(&create.source, file_name).await?;
    let project = project_of(&workflow);
    access.require(Permission::WorkflowsCreate, &project, || {
        StoreError::ProjectNotFound(project.to_string())
    })?;
    // A new version of a workflow the caller cannot see is refused as if it were new
    // to the caller: the save then fails on the project, not here.
    if let Some(existing) = &existing {
        access.require(
            Permission::WorkflowsCreate,
            existing.project.as_str(),
            || {
                StoreError::InvalidRequest(format!(
                    "workflow id `{}` is taken; give yours another id",
                    workflow.id
                ))
            },
        )?;
    }
    let (workflow_id, version) = node
        .store_workflow(&workflow, &create.source, &access.actor(None))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WorkflowCreated {
            workflow_id,
            version,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/workflows", responses((status = 200, body = Vec<WorkflowRecord>)))]
pub async fn list_workflows(
    State(node): NodeState,
    access: Access,
) -> ApiResult<Json<Vec<WorkflowRecord>>> {
    let visible = access.projects_with(Permission::WorkflowsView);
    let mut workflows = node.workflows().await?;
    if let Some(projects) = visible {
        workflows.retain(|workflow| projects.contains(&workflow.project));
    }
    Ok(Json(workflows))
}

/// The workflow's record after checking `permission` in its project.
pub(crate) async fn workflow_for(
    node: &Node,
    access: &Access,
    permission: Permission,
    id: &WorkflowId,
) -> ApiResult<WorkflowRecord> {
    let not_found = || StoreError::WorkflowNotFound(id.clone());
    let record = node.workflow_record(id).await?;
    access.require(permission, &record.project, not_found)?;
    Ok(record)
}

/// The run's record after checking `permission` in its project.
async fn run_for(
    node: &Node,
    access: &Access,
    permission: Permission,
    id: &RunId,
) -> ApiResult<RunRecord> {
    let record = node.store().run(id).await?;
    access.require(permission, &record.project, || {
        StoreError::RunNotFound(id.clone())
    })?;
    Ok(record)
}

#[utoipa::path(get, path = "/api/v1/workflows/{id}", responses((status = 200, body = WorkflowWithVersions), (status = 404, body = ErrorBody)))]
pub async fn get_workflow(
    State(node): NodeState,
    access: Access,
    Path(id): Path<WorkflowId>,
) -> ApiResult<Json<WorkflowWithVersions>> {
    workflow_for(&node, &access, Permission::WorkflowsView, &id).await?;
    let versions = node.workflow_versions(&id).await?;
    Ok(Json(WorkflowWithVersions {
        workflow_id: id,
        versions,
    }))
}

/// Hides the workflow; its versions and runs are kept.
#[utoipa::path(delete, path = "/api/v1/workflows/{id}", responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_workflow(
    State(node): NodeState,
    access: Access,
    Path(id): Path<WorkflowId>,
) -> ApiResult<StatusCode> {
    workflow_for(&node, &access, Permission::WorkflowsDelete, &id).await?;
    node.delete_workflow(&id, &access.actor(None)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a run; with an `Idempotency-Key` header, at most one per key (see
/// `idempotency`).
#[utoipa::path(post, path = "/api/v1/workflows/{id}/runs", request_body = StartRunRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key gets the same run")),
    responses((status = 201, body = RunStarted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_run(
    State(node): NodeState,
    Path(id): Path<WorkflowId>,
    access: Access,
    headers: axum::http::HeaderMap,
    JsonBody(request): JsonBody<StartRunRequest>,
) -> ApiResult<axum::response::Response> {
    // A node that is not a live member of its cluster answers at once, without asking
    // the store it may have lost: the caller (or its load balancer) goes elsewhere.
    if !node.is_acting() {
        let refused = troupe_engine::EngineError::NotMember;
        return Err(troupe_node::NodeError::Engine(refused).into());
    }
    workflow_for(&node, &access, Permission::WorkflowsExecute, &id).await?;
    // An authenticated caller starts runs as itself, whatever the body says.
    let started_by = access.person(request.started_by.as_deref());
    let options = RunOptions {
        version: request.version,
        variables: request.variables,
        seed: request.seed,
    };
    let Some(key) = idempotency::key(&headers, &access)? else {
        let run_id = node.start_run(&id, options, &started_by).await?;
        return Ok((StatusCode::CREATED, Json(RunStarted { run_id })).into_response());
    };
    // What tells a retry from another request under the same key.
    let fingerprint = troupe_store::digest::sha256_hex(
        &serde_json::json!([
            id,
            options.version,
            options.variables,
            options.seed,
            started_by.name
        ])
        .to_string(),
    );
    let start = node.start_run(&id, options, &started_by);
    idempotency::start_once(&node, key, &fingerprint, start).await
}

#[utoipa::path(get, path = "/api/v1/runs", params(RunQuery), responses((status = 200, body = Vec<RunRecord>)))]
pub async fn list_runs(
    State(node): NodeState,
    access: Access,
    Query(query): Query<RunQuery>,
) -> ApiResult<Json<Vec<RunRecord>>> {
    let status = match query.status.as_deref() {
        None => None,
        Some("running") => Some(RunStatus::Running),
        Some("completed") => Some(RunStatus::Completed),
        Some("failed") => Some(RunStatus::Failed),
        Some("cancelled") => Some(RunStatus::Cancelled),
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "status `{other}` is not one of running, completed, failed, cancelled"
            )));
        }
    };
    let filter = RunFilter {
        status,
        workflow_id: query.workflow_id.map(WorkflowId::from),
        projects: access.projects_with(Permission::WorkflowsView),
        // A page of the newest runs: the list is for people, and a page is bounded.
        limit: Some(query.limit.unwrap_or(100).clamp(1, 1000)),
    };
    Ok(Json(node.runs(&filter).await?))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", responses((status = 200, body = RunDetail), (status = 404, body = ErrorBody)))]
pub async fn get_run(
    State(node): NodeState,
    access: Access,
    Path(id): Path<RunId>,
) -> ApiResult<Json<RunDetail>> {
    let record = run_for(&node, &access, Permission::WorkflowsView, &id).await?;
    Ok(Json(node.detail_of(record).await?))
}

/// The run's whole event log, in order.
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", responses((status = 200, body = Vec<StoredEvent>), (status = 404, body = ErrorBody)))]
pub async fn get_run_events(
    State(node): NodeState,
    access: Access,
    Path(id): Path<RunId>,
) -> ApiResult<Json<Vec<StoredEvent>>> {
    run_for(&node, &access, Permission::WorkflowsView, &id).await?;
    Ok(Json(node.store().run_events(&id).await?))
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", request_body = CancelRequest,
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_run(
    State(node): NodeState,
    Path(id): Path<RunId>,
    access: Access,
    JsonBody(request): JsonBody<CancelRequest>,
) -> ApiResult<StatusCode> {
    run_for(&node, &access, Permission::WorkflowsExecute, &id).await?;
    node.cancel_run(&id, &access.actor(request.by.as_deref()))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Continues a failed or cancelled run as a new attempt: its failed and cancelled tasks
/// (and `from` with what follows it) run again; completed tasks keep their outputs.
#[utoipa::path(post, path = "/api/v1/runs/{id}/retry", request_body = RetryRequest,
    responses((status = 202, body = Retried), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "still running, or completed"),
        (status = 422, body = ErrorBody, description = "`from` names no task of the run")))]
pub async fn retry_run(
    State(node): NodeState,
    Path(id): Path<RunId>,
    access: Access,
    JsonBody(request): JsonBody<RetryRequest>,
) -> ApiResult<(StatusCode, Json<Retried>)> {
    run_for(&node, &access, Permission::WorkflowsExecute, &id).await?;
    let from = request.from.map(TaskId::from);
    let by = access.actor(request.by.as_deref());
    let tasks = node.retry_run(&id, from, &by).await?;
    let retried = Retried {
        run_id: id.to_string(),
        tasks: tasks.iter().map(ToString::to_string).collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(retried)))
}

/// Moves an unfinished run to another version of its workflow, or (`dry_run`) shows
/// the plan: tasks added, removed and changed, completed tasks that keep their outputs,
/// and why the move is refused when it is.
#[utoipa::path(post, path = "/api/v1/runs/{id}/migrate", request_body = MigrateRequest,
    responses((status = 200, body = MigrationPlan), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the plan changes or removes a task that started")))]
pub async fn migrate_run(
    State(node): NodeState,
    Path(id): Path<RunId>,
    access: Access,
    JsonBody(request): JsonBody<MigrateRequest>,
) -> ApiResult<Json<MigrationPlan>> {
    run_for(&node, &access, Permission::WorkflowsExecute, &id).await?;
    let by = access.actor(request.by.as_deref());
    let plan = node
        .migrate_run(&id, request.to_version, request.dry_run, &by)
        .await?;
    Ok(Json(plan))
}

/// Approve or reject a task waiting at its approval gate.
#[utoipa::path(post, path = "/api/v1/runs/{id}/tasks/{task}/decision", request_body = DecisionBody,
    responses((status = 200), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "not waiting, or already decided")))]
pub async fn decide(
    State(node): NodeState,
    Path((id, task)): Path<(RunId, TaskId)>,
    access: Access,
    JsonBody(body): JsonBody<DecisionBody>,
) -> ApiResult<StatusCode> {
    // Only a reviewer or above in the run's project decides; the gate itself refuses
    // the run's starter when the workflow says `separate_approver`.
    run_for(&node, &access, Permission::WorkflowsApprove, &id).await?;
    // An authenticated caller decides as itself: an approval cannot be signed in
    // someone else's name.
    let approver = access.person(Some(&body.approver));
    let (decision, expected_digest) = body.into_decision(approver);
    node.decide(&id, &task, decision, expected_digest).await?;
    Ok(StatusCode::OK)
}

#[utoipa::path(get, path = "/api/v1/approvals", responses((status = 200, body = Vec<PendingApproval>)))]
pub async fn list_approvals(
    State(node): NodeState,
    access: Access,
) -> ApiResult<Json<Vec<PendingApproval>>> {
    let visible = access.projects_with(Permission::WorkflowsView);
    Ok(Json(node.pending_approvals(visible).await?))
}

/// Each agent pool's load, by kind: attempts admitted, those running (holding a node
/// slot; the rest are queued) and the pool's capacity.
#[utoipa::path(get, path = "/api/v1/pools", responses((status = 200, body = std::collections::BTreeMap<String, troupe_engine::agent_pool::PoolLoad>)))]
pub async fn list_pools(
    State(node): NodeState,
) -> Json<std::collections::BTreeMap<String, troupe_engine::agent_pool::PoolLoad>> {
    Json(node.pool_loads().await)
}

/// The nodes sharing this node's store, with their leases read by the store's clock:
/// live or not, how long since each renewed, and what each said of its load; and the
/// members this node has a link to.
#[utoipa::path(get, path = "/api/v1/cluster", responses((status = 200, body = troupe_node::ClusterView)))]
pub async fn list_cluster(State(node): NodeState) -> ApiResult<Json<troupe_node::ClusterView>> {
    Ok(Json(node.cluster_view().await?))
}

#[utoipa::path(get, path = "/api/v1/agents", responses((status = 200, body = Vec<AgentKind>)))]
pub async fn list_agents(State(node): NodeState) -> Json<Vec<AgentKind>> {
    let kinds = node
        .registry()
        .agents()
        .map(|agent| AgentKind {
            kind: agent.kind().into(),
            description: agent.description().into(),
            input_schema: serde_json::to_value(agent.input_schema()).unwrap_or_default(),
        })
        .collect();
    Json(kinds)
}

/// Every metric of this node in Prometheus's text format, or in OpenMetrics with the
/// trace ids of observations as exemplars when `Accept` names it, for a scraper holding
/// `metrics.read` (an API key scoped to it, say).
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4, or OpenMetrics 1.0.0", content_type = "text/plain"),
    (status = 503, body = ErrorBody, description = "the embedding program exports metrics itself")))]
pub async fn metrics(
    State(node): NodeState,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    // A scraper that takes OpenMetrics (Prometheus does) gets it, with exemplars.
    let open = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let (text, content_type) = if open {
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        (node.metrics_openmetrics().await, content_type)
    } else {
        (
            node.metrics_text().await,
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let text = text.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_elsewhere",
            "the program that runs this node installed its own metrics recorder: scrape it there",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// Liveness: the process answers (Kubernetes restarts a node that stops answering).
/// Whether it can serve is `/readyz`'s question.
#[utoipa::path(get, path = "/livez", responses((status = 200, description = "ok")))]
pub async fn livez() -> &'static str {
    "ok"
}

/// The node can serve: the store answers, the supervision tree runs and, in a cluster,
/// the node is a live member.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(node): NodeState) -> impl IntoResponse {
    let readiness = node.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// The node's alerts: the rules of `deploy/prometheus/alerts.yaml` evaluated on its own
/// metrics (`alerts.*`), pending and firing.
#[utoipa::path(get, path = "/api/v1/alerts", responses((status = 200, body = AlertsNow)))]
pub async fn alerts(State(node): NodeState) -> Json<AlertsNow> {
    Json(node.alerts().borrow().clone())
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see /docs",
    )
}
