//! Accounts over HTTP: log in, refresh, log out, change the password, and `me`, the
//! first route that requires a bearer token.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use crate::api::body::JsonBody;
use crate::api::error::ApiError;
use crate::api::handlers::NodeState;
use crate::auth::TokenPair;
use crate::store::UserRecord;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// The user behind the request's `Authorization: Bearer` access token.
pub async fn caller(node: &crate::node::Node, headers: &HeaderMap) -> Result<UserRecord, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <access token>` (POST /api/v1/auth/login)",
            )
        })?;
    Ok(node.auth().authenticate(bearer.trim()).await?.1)
}

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginBody, responses((status = 200, body = TokenPair), (status = 401)))]
pub async fn login(
    State(node): NodeState,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        node.auth()
            .login(&body.email, &body.password, node.audit())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", request_body = RefreshBody, responses((status = 200, body = TokenPair), (status = 401)))]
pub async fn refresh(
    State(node): NodeState,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(
        node.auth()
            .refresh(&body.refresh_token, node.audit())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", request_body = RefreshBody, responses((status = 204)))]
pub async fn logout(
    State(node): NodeState,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    node.auth().logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", responses((status = 200, body = UserRecord), (status = 401)))]
pub async fn me(State(node): NodeState, headers: HeaderMap) -> Result<Json<UserRecord>, ApiError> {
    Ok(Json(caller(&node, &headers).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/password", request_body = PasswordBody, responses((status = 204), (status = 401)))]
pub async fn change_password(
    State(node): NodeState,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&node, &headers).await?;
    node.auth()
        .change_password(
            &user,
            &body.current_password,
            &body.new_password,
            node.audit(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
