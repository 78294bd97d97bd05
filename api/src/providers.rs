//! The provider chain and its ledger over HTTP: `POST /api/v1/complete` asks the chain
//! (local first, paid fallbacks by quality), `GET /api/v1/costs` reports what calls cost
//! and saved.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use troupe_inference::chat::ChatMessage;
use troupe_inference::generation::Priority;
use troupe_inference::providers::{Answered, CompletionRequest};
use troupe_inference::quality::TaskType;
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::NodeState;
use troupe_security::auth::permissions::Permission;
use troupe_store::clock::now_ms;
use troupe_store::{CostReport, DEFAULT_PROJECT, ProjectId, StoreError};

#[derive(Debug, Deserialize, ToSchema)]
pub struct WireMessage {
    role: String,
    content: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CompleteBody {
    messages: Vec<WireMessage>,
    #[serde(default = "default_max_tokens")]
    max_tokens: usize,
    #[serde(default)]
    temperature: f64,
    #[serde(default)]
    task_type: String,
    min_quality: Option<f64>,
    agent: Option<String>,
    /// Let a paid provider answer when the local model is overloaded or the prompt
    /// overflows its context (default false: those failures are the answer).
    #[serde(default)]
    escalate_local_failures: bool,
    /// The project the call is billed to (default `default`): the caller needs
    /// `agents.execute` there, and its daily cap applies.
    project: Option<ProjectId>,
}

fn default_max_tokens() -> usize {
    256
}

/// One answer from the provider chain: the local model first, paid providers by quality
/// when it falls short.
#[utoipa::path(post, path = "/api/v1/complete", request_body = CompleteBody,
    responses((status = 200, body = Answered), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody, description = "every provider failed")))]
pub async fn complete(
    State(node): NodeState,
    access: crate::guard::Access,
    JsonBody(body): JsonBody<CompleteBody>,
) -> Result<Json<Answered>, ApiError> {
    let task_type = TaskType::parse(&body.task_type).map_err(ApiError::invalid_request)?;
    let most = node.settings().providers.max_tokens;
    if u64::try_from(body.max_tokens).unwrap_or(u64::MAX) > most {
        return Err(ApiError::invalid_request(format!(
            "max_tokens is {}; a request may ask for at most {most} (providers.max_tokens)",
            body.max_tokens
        )));
    }
    if let Some(min) = body.min_quality.filter(|min| !(0.0..=1.0).contains(min)) {
        return Err(ApiError::invalid_request(format!(
            "min_quality must be between 0 and 1, got {min}"
        )));
    }
    let project = body
        .project
        .unwrap_or_else(|| ProjectId::from(DEFAULT_PROJECT));
    access.require(Permission::AgentsExecute, &project, || {
        StoreError::ProjectNotFound(project.to_string())
    })?;
    let request = CompletionRequest {
        messages: body
            .messages
            .iter()
            .map(|message| ChatMessage::new(&message.role, &message.content))
            .collect(),
        max_tokens: body.max_tokens,
        temperature: body.temperature,
        seed: None,
        task_type,
        min_quality: body.min_quality,
        agent: body.agent,
        caller: access.actor(None),
        exclude_providers: Vec::new(),
        escalate_local_failures: body.escalate_local_failures,
        // Filled in from the ledger by the node.
        paid_budget_left_usd: None,
        spend_guard: None,
        priority: Priority::Interactive,
    };
    Ok(Json(node.complete(&request, &project).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CostsQuery {
    /// Report the last this many days (default 30).
    days: Option<u32>,
}

/// What model calls cost and what serving them locally saved, by day, agent, provider
/// and project: of the projects where the caller holds `costs.view` (an org owner's
/// organisation, a super admin's node).
#[utoipa::path(get, path = "/api/v1/costs", params(CostsQuery), responses((status = 200, body = CostReport)))]
pub async fn costs(
    State(node): NodeState,
    access: crate::guard::Access,
    Query(query): Query<CostsQuery>,
) -> Result<Json<CostReport>, ApiError> {
    let days = i64::from(query.days.unwrap_or(30).max(1));
    let since = now_ms() - days * 86_400_000;
    let projects = access.projects_with(Permission::CostsView);
    Ok(Json(node.cost_report(since, projects.as_deref()).await?))
}
