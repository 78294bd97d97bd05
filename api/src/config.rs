//! The node's settings over HTTP: when they were loaded and what waits for a restart
//! (`GET /api/v1/config`), and a reload (`POST /api/v1/config/reload`, which
//! `troupe config reload` and SIGHUP also do). Both for who manages settings.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use troupe_node::Reloaded;

use crate::error::{ApiError, ErrorBody};
use crate::guard::Access;
use crate::handlers::NodeState;

/// The settings a node runs with.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigNow {
    pub node: String,
    /// When they were loaded: at start, or at the last reload.
    pub loaded_at_ms: i64,
    /// Of the settings as last read, secrets masked (the audit log's `config.reload`
    /// and `node.start` entries carry the same).
    pub settings_sha256: String,
    /// Keys changed by a reload that wait for a restart.
    pub waiting_for_restart: Vec<String>,
    /// The settings in effect, as TOML, secrets masked.
    pub settings: String,
}

#[utoipa::path(get, path = "/api/v1/config", responses((status = 200, body = ConfigNow)))]
pub async fn show(State(node): NodeState) -> Json<ConfigNow> {
    let running = node.running_settings().borrow().clone();
    Json(ConfigNow {
        node: node.node_name().to_owned(),
        loaded_at_ms: running.loaded_at_ms,
        settings_sha256: running.settings_sha256,
        waiting_for_restart: running.waiting_for_restart,
        settings: troupe_config::render_masked(&running.settings),
    })
}

/// Reads the node's settings again from where it got them and applies those that
/// change live (alert rules, providers and their prices and budgets, the agent policy,
/// the log level, trace sampling); on a cluster every node follows. Settings that do
/// not hold change nothing: 422 names the key and where its value came from.
#[utoipa::path(post, path = "/api/v1/config/reload", responses(
    (status = 200, body = Reloaded),
    (status = 409, body = ErrorBody, description = "the node was given its settings by the program that embeds it"),
    (status = 422, body = ErrorBody, description = "the settings read do not hold")))]
pub async fn reload(State(node): NodeState, access: Access) -> Result<Json<Reloaded>, ApiError> {
    Ok(Json(node.reload(&access.actor(None)).await?))
}
