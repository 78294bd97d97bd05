//! Agent memory over HTTP: list, search, add and delete the entries of one project and
//! user. On a node with `auth.required` the user is always the caller, whatever the
//! request names, and the project is checked like any other object's.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_agents::{MemoryKind, MemoryScope};

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::guard::Access;
use crate::handlers::NodeState;
use troupe_security::auth::permissions::Permission;
use troupe_store::StoreError;
use troupe_store::{MemoryEntry, MemoryFilter};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MemoryQuery {
    pub project: String,
    /// Required without accounts; with them, the caller.
    #[serde(default)]
    pub user: String,
    /// `short_term`, `long_term` or `episodic`.
    pub kind: Option<String>,
    /// Include this run's short-term entries.
    pub run_id: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SearchMemory {
    pub project: String,
    #[serde(default)]
    pub user: String,
    pub query: String,
    #[serde(default = "default_k")]
    pub k: usize,
    pub kind: Option<String>,
    pub run_id: Option<String>,
}

fn default_k() -> usize {
    5
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewMemoryEntry {
    pub project: String,
    #[serde(default)]
    pub user: String,
    pub text: String,
    /// Default `long_term`.
    pub kind: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemoryCreated {
    pub id: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MemoryOwner {
    pub project: String,
    #[serde(default)]
    pub user: String,
}

/// The user whose memory a request reaches, after checking `permission` in `project`:
/// the caller when there are accounts, else the user the request names.
fn owner(access: &Access, permission: Permission, project: &str, named: &str) -> ApiResult<String> {
    access.require(permission, project, || {
        StoreError::ProjectNotFound(project.into())
    })?;
    Ok(match &access.0 {
        Some(principal) => principal.email().to_owned(),
        None => named.to_owned(),
    })
}

fn kind(name: Option<&str>) -> ApiResult<Option<MemoryKind>> {
    name.map(|name| MemoryKind::parse(name).map_err(ApiError::invalid_request))
        .transpose()
}

fn scope_filter(
    project: &str,
    user: &str,
    kind_name: Option<&str>,
    run_id: Option<String>,
    limit: usize,
) -> ApiResult<MemoryFilter> {
    for (name, value) in [("project", project), ("user", user)] {
        if value.trim().is_empty() {
            return Err(ApiError::invalid_request(format!(
                "`{name}` is required: memory is kept per project and user"
            )));
        }
    }
    Ok(MemoryFilter {
        project: project.into(),
        user: user.into(),
        kind: kind(kind_name)?,
        run_id,
        limit,
    })
}

#[utoipa::path(get, path = "/api/v1/memory", params(MemoryQuery), responses((status = 200, body = Vec<MemoryEntry>)))]
pub async fn list(
    State(node): NodeState,
    access: Access,
    Query(query): Query<MemoryQuery>,
) -> ApiResult<Json<Vec<MemoryEntry>>> {
    let user = owner(
        &access,
        Permission::ProjectsRead,
        &query.project,
        &query.user,
    )?;
    let filter = scope_filter(
        &query.project,
        &user,
        query.kind.as_deref(),
        query.run_id,
        query.limit.unwrap_or(100),
    )?;
    Ok(Json(node.memories(&filter).await?))
}

#[utoipa::path(post, path = "/api/v1/memory/search", request_body = SearchMemory, responses((status = 200, body = Vec<MemoryEntry>)))]
pub async fn search(
    State(node): NodeState,
    access: Access,
    JsonBody(body): JsonBody<SearchMemory>,
) -> ApiResult<Json<Vec<MemoryEntry>>> {
    let user = owner(&access, Permission::ProjectsRead, &body.project, &body.user)?;
    if body.query.trim().is_empty() {
        return Err(ApiError::invalid_request("`query` is empty"));
    }
    if !(1..=100).contains(&body.k) {
        return Err(ApiError::invalid_request(format!(
            "`k` must be 1 to 100, got {}",
            body.k
        )));
    }
    let filter = scope_filter(&body.project, &user, body.kind.as_deref(), body.run_id, 0)?;
    Ok(Json(
        node.search_memory(&filter, &body.query, body.k).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/memory", request_body = NewMemoryEntry, responses((status = 201, body = MemoryCreated)))]
pub async fn create(
    State(node): NodeState,
    access: Access,
    JsonBody(body): JsonBody<NewMemoryEntry>,
) -> ApiResult<(StatusCode, Json<MemoryCreated>)> {
    let user = owner(&access, Permission::MemoryManage, &body.project, &body.user)?;
    let filter = scope_filter(&body.project, &user, body.kind.as_deref(), None, 0)?;
    let kind = filter.kind.unwrap_or(MemoryKind::LongTerm);
    if kind == MemoryKind::ShortTerm {
        return Err(ApiError::invalid_request(
            "short-term memory belongs to a run; add long_term or episodic entries",
        ));
    }
    if body.text.trim().is_empty() || body.text.len() > 16 * 1024 {
        return Err(ApiError::invalid_request(
            "`text` must hold 1 to 16384 bytes",
        ));
    }
    let scope = MemoryScope {
        project: body.project,
        user,
        run_id: String::new(),
    };
    let id = node
        .remember(&scope, kind, &body.text, &body.metadata)
        .await?;
    Ok((StatusCode::CREATED, Json(MemoryCreated { id })))
}

#[utoipa::path(delete, path = "/api/v1/memory/{id}", params(MemoryOwner), responses((status = 204), (status = 404)))]
pub async fn delete(
    State(node): NodeState,
    access: Access,
    Path(id): Path<String>,
    Query(named): Query<MemoryOwner>,
) -> ApiResult<StatusCode> {
    let user = owner(
        &access,
        Permission::MemoryManage,
        &named.project,
        &named.user,
    )?;
    scope_filter(&named.project, &user, None, None, 0)?;
    if node.delete_memory(&named.project, &user, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no memory entry `{id}` in project `{}` for user `{user}`",
                named.project
            ),
        ))
    }
}
