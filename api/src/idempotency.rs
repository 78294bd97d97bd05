//! `Idempotency-Key` on `POST /api/v1/workflows/{id}/runs`: a client that retries a
//! start (a timeout, a dropped connection) with the same key gets the run the first
//! request started, with `Idempotent-Replayed: true`, never a second run. Keys are the
//! caller's own, remembered for 24 hours; a key reused for a different request (another
//! workflow, version, variables or starter) is refused.

use std::future::Future;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use troupe_node::{Node, NodeError};
use troupe_store::clock::now_ms;
use troupe_store::{Claim, RunId};

use crate::error::ApiError;
use crate::guard::Access;
use crate::wire::RunStarted;

const HEADER: &str = "idempotency-key";
const MAX_KEY_CHARS: usize = 255;

/// A caller's key, scoped so that two callers' equal keys never meet.
pub(crate) struct ScopedKey(String);

impl ScopedKey {
    /// A webhook delivery's id, scoped to the workflow and the sender: the same
    /// delivery sent again is the same key.
    pub(crate) fn delivery(workflow: &troupe_store::WorkflowId, sender: &str, id: &str) -> Self {
        ScopedKey(format!("hook:{workflow}:{sender}\n{id}"))
    }
}

/// The request's key, if it sent one; a malformed one is refused.
pub(crate) fn key(headers: &HeaderMap, access: &Access) -> Result<Option<ScopedKey>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|text| !text.is_empty() && text.len() <= MAX_KEY_CHARS)
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "the Idempotency-Key header must be 1 to {MAX_KEY_CHARS} visible ASCII \
                 characters (a UUID is usual)"
            ))
        })?;
    let caller = access
        .0
        .as_ref()
        .map_or("anonymous", |principal| principal.user.user_id.as_str());
    Ok(Some(ScopedKey(format!("{caller}\n{text}"))))
}

/// Runs `start` once per key: the first request with `key` starts the run, a retry gets
/// the same run. `fingerprint` tells a retry from a different request.
pub(crate) async fn start_once(
    node: &Node,
    key: ScopedKey,
    fingerprint: &str,
    start: impl Future<Output = Result<RunId, NodeError>>,
) -> Result<Response, ApiError> {
    let store = node.store();
    match store
        .claim_idempotency_key(&key.0, fingerprint, now_ms())
        .await?
    {
        Claim::Won => match start.await {
            Ok(run_id) => {
                store.complete_idempotency_key(&key.0, &run_id).await?;
                Ok((StatusCode::CREATED, Json(RunStarted { run_id })).into_response())
            }
            Err(error) => {
                if let Err(release) = store.release_idempotency_key(&key.0).await {
                    tracing::warn!(%release, "an Idempotency-Key of a failed start stays claimed for 24 h");
                }
                Err(error.into())
            }
        },
        Claim::Started(run_id) => {
            let mut response = (StatusCode::CREATED, Json(RunStarted { run_id })).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Claim::InFlight => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still starting its run; retry in a moment",
        )
        .retry_after(1)),
        Claim::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request (another workflow, \
             version, variables or starter); send a new key with a new request",
        )),
    }
}
