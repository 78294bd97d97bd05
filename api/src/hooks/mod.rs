//! `POST /api/v1/hooks/{workflow}`: push events from GitHub and GitLab start runs of a
//! workflow whose `on_push` trigger takes them, on any node.
//!
//! The route needs no account: a delivery is believed only when it proves it knows the
//! secret the trigger names ([`troupe_security::webhook`]); one that does not is a 401,
//! audited. A body over `server.max_body_bytes` is refused before any of this. The
//! delivery id is an idempotency key: a redelivered event gets the run the first one
//! started, never a second run. The push's repository, branch and commit become the
//! run's `variables.push`.

mod delivery;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use troupe_node::{Node, Person, PushHook, RunOptions};
use troupe_store::WorkflowId;

use crate::body::read_bytes;
use crate::error::ApiError;
use crate::idempotency::{self, ScopedKey};
use delivery::Delivery;

/// A delivery that was believed and starts nothing, and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ignored {
    pub reason: String,
}

/// Starts a run of the workflow for a signed push event.
#[utoipa::path(post, path = "/api/v1/hooks/{workflow}",
    responses((status = 201, body = crate::wire::RunStarted), (status = 202, body = Ignored),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
pub async fn push(
    State(node): State<Arc<Node>>,
    Path(id): Path<WorkflowId>,
    request: Request,
) -> Result<Response, ApiError> {
    let delivery = Delivery::read(request.headers())?;
    let body = read_bytes(request, &()).await?;
    let hook = hook_of(&node, &id).await?;
    if let Err(reason) = delivery.verify(hook.secret.as_deref(), &body) {
        node.push_rejected(&id, delivery.sender.name(), &reason)
            .await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            reason,
        ));
    }
    let push = match delivery.push(&body)? {
        Ok(push) => push,
        Err(reason) => return Ok(ignored(reason)),
    };
    if hook.paused {
        let reason = format!("the triggers of `{id}` are paused: troupe triggers resume {id}");
        return Ok(ignored(reason));
    }
    let branches = &hook.trigger.branches;
    if !branches.is_empty() && !branches.contains(&push.branch) {
        let reason = format!(
            "branch `{}` is not in the workflow's on_push.branches ({})",
            push.branch,
            branches.join(", ")
        );
        return Ok(ignored(reason));
    }
    let key = ScopedKey::delivery(&id, delivery.sender.name(), &delivery.id);
    let fingerprint = troupe_store::digest::sha256_hex(&String::from_utf8_lossy(&body));
    let started_by = Person::named(format!("{} push", delivery.sender.name()));
    let options = RunOptions {
        variables: push.variables(),
        ..RunOptions::default()
    };
    let start = node.start_run(&id, options, &started_by);
    idempotency::start_once(&node, key, &fingerprint, start).await
}

/// The workflow's push trigger; a workflow that is missing and one that takes no
/// pushes look the same to a caller who has not proved anything yet.
async fn hook_of(node: &Node, id: &WorkflowId) -> Result<PushHook, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_push_trigger",
            format!("no workflow `{id}` takes pushes: its latest version needs triggers.on_push"),
        )
    };
    match node.push_hook(id).await {
        Ok(Some(hook)) => Ok(hook),
        Ok(None) => Err(not_found()),
        Err(troupe_node::NodeError::Store(troupe_store::StoreError::WorkflowNotFound(_))) => {
            Err(not_found())
        }
        Err(error) => Err(error.into()),
    }
}

fn ignored(reason: String) -> Response {
    (StatusCode::ACCEPTED, Json(Ignored { reason })).into_response()
}
