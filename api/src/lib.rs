//! The HTTP API: REST under `/api/v1`, a WebSocket of run events, health and readiness,
//! the OpenAPI document and its docs page, and the `/v1` OpenAI- and Anthropic-compatible
//! endpoints. `router(node)` builds it, so tests drive it with `oneshot` and the binary
//! serves it.
//!
//! The only crate that knows HTTP. It serves a `troupe_node::Node` and knows nothing of
//! how the node is composed: handlers call the node's operations, the route guard asks
//! `troupe_security` who the caller is, and every error below maps to one status here
//! (`error`).

mod audit;
mod auth;
mod body;
mod browser;
mod docs;
mod error;
mod events_ws;
mod guard;
mod handlers;
mod memory;
mod openai;
mod projects;
mod providers;
mod trace;
mod users;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

pub use audit::to_csv as audit_csv;
pub use error::ApiError;
use troupe_node::Node;

pub fn router(node: Arc<Node>) -> Router {
    let max_body_bytes =
        usize::try_from(node.settings().server.max_body_bytes).unwrap_or(usize::MAX);
    let api = Router::new()
        .route(
            "/workflows",
            post(handlers::create_workflow).get(handlers::list_workflows),
        )
        .route(
            "/workflows/{id}",
            get(handlers::get_workflow).delete(handlers::delete_workflow),
        )
        .route("/workflows/{id}/runs", post(handlers::start_run))
        .route("/runs", get(handlers::list_runs))
        .route("/runs/{id}", get(handlers::get_run))
        .route("/runs/{id}/events", get(handlers::get_run_events))
        .route("/runs/{id}/cancel", post(handlers::cancel_run))
        .route("/runs/{id}/tasks/{task}/decision", post(handlers::decide))
        .route("/approvals", get(handlers::list_approvals))
        .route("/agents", get(handlers::list_agents))
        .route("/pools", get(handlers::list_pools))
        .route("/models", get(openai::loaded_models))
        .route("/complete", post(providers::complete))
        .route("/costs", get(providers::costs))
        .route("/memory", get(memory::list).post(memory::create))
        .route("/memory/search", post(memory::search))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/mfa/enrol", post(auth::enrol_mfa))
        .route("/auth/mfa/confirm", post(auth::confirm_mfa))
        .route("/auth/mfa/verify", post(auth::verify_mfa))
        .route("/auth/browser/login", post(browser::login))
        .route("/auth/browser/mfa", post(browser::verify_mfa))
        .route("/auth/browser/refresh", post(browser::refresh))
        .route("/auth/browser/logout", post(browser::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/password", post(auth::change_password))
        .route("/auth/keys", post(auth::create_key).get(auth::list_keys))
        .route("/auth/keys/{id}", delete(auth::revoke_key))
        .route("/users", post(users::create).get(users::list))
        .route("/users/{id}/disable", post(users::disable))
        .route("/auth/sessions", get(auth::list_sessions))
        .route("/auth/sessions/{id}", delete(auth::end_session))
        .route("/audit", get(audit::export))
        .route("/audit/verify", get(audit::verify))
        .route("/memory/{id}", delete(memory::delete))
        .route("/projects", post(projects::create).get(projects::list))
        .route("/projects/{id}", get(projects::get))
        .route(
            "/projects/{id}/members/{user}",
            put(projects::set_member).delete(projects::remove_member),
        )
        .route("/events", get(events_ws::subscribe));
    let compatible = Router::new()
        .route("/models", get(openai::list_models))
        .route("/chat/completions", post(openai::chat_completions))
        .route("/embeddings", post(openai::embeddings))
        .route("/messages", post(openai::anthropic_messages));
    Router::new()
        .nest("/api/v1", api)
        .nest("/v1", compatible)
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::docs_page))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            guard::require_caller,
        ))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(trace::trace_request))
        .with_state(node)
}

/// Without `auth.required`, only loopback addresses may be bound: anything else would
/// hand the API to the network unauthenticated.
pub fn check_bind_address(address: &str, auth_required: bool) -> Result<SocketAddr, ApiError> {
    let parsed: SocketAddr = address.parse().map_err(|_| {
        ApiError::invalid_request(format!("`{address}` is not an address like 127.0.0.1:7700"))
    })?;
    if !parsed.ip().is_loopback() && !auth_required {
        return Err(ApiError::invalid_request(format!(
            "refusing to listen on {parsed} without authentication: set auth.required = true, \
             or use a loopback address (127.0.0.1, ::1)"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod test_node;
#[cfg(test)]
mod tests;
