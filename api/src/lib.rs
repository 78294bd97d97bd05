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
mod config;
mod docs;
mod error;
mod events_ws;
mod guard;
mod handlers;
pub mod headers;
mod hooks;
mod idempotency;
mod invocations;
mod memory;
mod openai;
mod projects;
mod providers;
mod routes;
mod trace;
mod triggers;
mod users;
pub mod wire;
mod without_accounts;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use audit::to_csv as audit_csv;
pub use error::ApiError;
use troupe_node::Node;

pub fn router(node: Arc<Node>) -> Router {
    let max_body_bytes =
        usize::try_from(node.settings().server.max_body_bytes).unwrap_or(usize::MAX);
    trace::describe();
    let declared = routes::declare();
    let guarded = guard::Guarded {
        node: node.clone(),
        table: Arc::new(declared.table),
        local_only: without_accounts::LocalOnly::for_node(&node.settings()).map(Arc::new),
    };
    let forwarding = openai::forward::Forwarding::new(node.clone());
    declared
        .router
        .layer(axum::middleware::from_fn_with_state(
            forwarding,
            openai::forward::to_the_model,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guarded,
            guard::require_caller,
        ))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(trace::trace_request))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::Extension(Arc::new(events_ws::OpenStreams::default())))
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
mod invocation_tests;
#[cfg(test)]
mod mfa_tests;
#[cfg(test)]
mod test_node;
#[cfg(test)]
mod tests;
