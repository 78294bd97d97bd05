//! `auth.required`: every route but health, docs and the login/refresh/logout routes
//! takes an access token or an API key (`Authorization: Bearer`, or `?access_token=` on the event
//! WebSocket, where browsers cannot set headers). The caller is put in the request's
//! extensions for handlers to act as; an account with a one-time password may only
//! change it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::node::Node;
use crate::store::UserRecord;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub UserRecord);

const OPEN: [&str; 7] = [
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
];

/// Routes an account whose password must change may still use.
const BEFORE_PASSWORD_CHANGE: [&str; 2] = ["/api/v1/auth/password", "/api/v1/auth/me"];

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

fn token(request: &Request) -> Option<String> {
    bearer(request.headers()).map(String::from).or_else(|| {
        (request.uri().path() == "/api/v1/events")
            .then(|| request.uri().query())
            .flatten()
            .and_then(|query| {
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("access_token="))
                    .map(String::from)
            })
    })
}

pub async fn require_caller(
    State(node): State<Arc<Node>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !node.settings().auth.required || OPEN.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(token) = token(&request) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this node requires an access token: POST /api/v1/auth/login, then send \
             `Authorization: Bearer <access_token>`",
        )
        .into_response();
    };
    let authenticated = if token.starts_with("tk_") {
        node.auth()
            .authenticate_key(&token)
            .await
            .map(|(_, user)| user)
    } else {
        node.auth().authenticate(&token).await.map(|(_, user)| user)
    };
    match authenticated {
        Ok(user) => {
            if user.must_change_password && !BEFORE_PASSWORD_CHANGE.contains(&request.uri().path())
            {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "password_change_required",
                    "this account has a one-time password: change it first (POST /api/v1/auth/password)",
                )
                .into_response();
            }
            request.extensions_mut().insert(Caller(user));
            next.run(request).await
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}
