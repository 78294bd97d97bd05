//! One delivery as its headers and body describe it: who sent it (GitHub or GitLab, by
//! their headers), its id, its proof, and the push it reports.

use axum::http::HeaderMap;
use serde_json::Value;
use troupe_workflow::push::{Push, Sender};

use crate::error::ApiError;

/// What the headers say.
#[derive(Debug)]
pub struct Delivery {
    pub sender: Sender,
    pub id: String,
    /// `push`, `ping`, `Push Hook`, ...
    event: String,
    /// The signature (GitHub) or the token (GitLab).
    proof: String,
}

const MAX_ID_CHARS: usize = 200;

impl Delivery {
    pub fn read(headers: &HeaderMap) -> Result<Delivery, ApiError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (sender, id, event, proof) = if let Some(signature) = header("x-hub-signature-256") {
            let id = header("x-github-delivery");
            (Sender::GitHub, id, header("x-github-event"), signature)
        } else if let Some(token) = header("x-gitlab-token") {
            let id = header("x-gitlab-event-uuid").or(header("x-gitlab-webhook-uuid"));
            (Sender::GitLab, id, header("x-gitlab-event"), token)
        } else {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "bad_signature",
                "no X-Hub-Signature-256 (GitHub) or X-Gitlab-Token (GitLab) header: set the \
                 webhook's secret to the one the workflow's on_push.secret names",
            ));
        };
        let id = id
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_CHARS)
            .ok_or_else(|| {
                ApiError::invalid_request(
                    "no delivery id (X-GitHub-Delivery or X-Gitlab-Event-UUID, at most 200 \
                     characters): it is what keeps a redelivery from starting a second run",
                )
            })?;
        Ok(Delivery {
            sender,
            id: id.to_owned(),
            event: event.unwrap_or_default().to_owned(),
            proof: proof.to_owned(),
        })
    }

    /// Whether the delivery proves it knows `secret`; the reason when not.
    pub fn verify(&self, secret: Option<&[u8]>, body: &[u8]) -> Result<(), String> {
        let Some(secret) = secret else {
            return Err(
                "the workflow's on_push names no secret, or the node holds none by \
                        that name (troupe secrets set NAME): no delivery is believed"
                    .to_owned(),
            );
        };
        let checked = match self.sender {
            Sender::GitHub => troupe_security::webhook::verify_github(secret, body, &self.proof),
            Sender::GitLab => troupe_security::webhook::verify_gitlab(secret, &self.proof),
        };
        checked.map_err(|rejection| rejection.reason().to_owned())
    }

    /// The push the body reports, `Err` with why when the event starts nothing (not a
    /// push, a tag, a deleted branch); a body that is no push payload is a 400.
    pub fn push(&self, body: &[u8]) -> Result<Result<Push, String>, ApiError> {
        let is_push = match self.sender {
            Sender::GitHub => self.event == "push",
            Sender::GitLab => self.event == "Push Hook",
        };
        if !is_push {
            return Ok(Err(format!("a `{}` event starts nothing", self.event)));
        }
        let payload: Value = serde_json::from_slice(body).map_err(|error| {
            ApiError::invalid_request(format!("the push event is not JSON: {error}"))
        })?;
        Ok(Push::read(self.sender, &payload))
    }
}
