//! One delivery as its headers and body describe it: who sent it (GitHub or GitLab, by
//! their headers), its id, its proof, and the push it reports.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    GitHub,
    GitLab,
}

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

/// A push to a branch: what the run gets as `variables.push`.
#[derive(Debug, PartialEq)]
pub struct Push {
    pub repository: String,
    pub branch: String,
    pub commit: String,
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
        Ok(read_push(self.sender, &payload))
    }
}

fn read_push(sender: Sender, payload: &Value) -> Result<Push, String> {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let (repository, commit) = match sender {
        Sender::GitHub => (
            text(&payload["repository"]["full_name"]),
            text(&payload["after"]).filter(|_| payload["deleted"] != json!(true)),
        ),
        Sender::GitLab => (
            text(&payload["project"]["path_with_namespace"]),
            text(&payload["checkout_sha"]),
        ),
    };
    let reference = text(&payload["ref"]).ok_or("the push names no `ref`")?;
    let branch = reference
        .strip_prefix("refs/heads/")
        .ok_or_else(|| format!("`{reference}` is not a branch: only branch pushes start runs"))?;
    let commit = commit
        .filter(|sha| !sha.trim_start_matches('0').is_empty())
        .ok_or_else(|| format!("branch `{branch}` was deleted: that starts nothing"))?;
    Ok(Push {
        repository: repository.ok_or("the push names no repository")?,
        branch: branch.to_owned(),
        commit,
    })
}

impl Push {
    /// The run's variables: `push`, the one a workflow with `on_push` may read.
    pub fn variables(&self) -> std::collections::BTreeMap<String, Value> {
        let push = json!({
            "repository": self.repository,
            "branch": self.branch,
            "commit": self.commit,
        });
        std::collections::BTreeMap::from([(troupe_workflow::PUSH_VARIABLE.to_owned(), push)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_and_gitlab_pushes_read_to_the_same_variables() {
        let github = json!({"ref": "refs/heads/main", "after": "abc123",
            "repository": {"full_name": "acme/shop"}});
        let gitlab = json!({"object_kind": "push", "ref": "refs/heads/main",
            "checkout_sha": "abc123", "project": {"path_with_namespace": "acme/shop"}});
        let expected = Ok(Push {
            repository: "acme/shop".into(),
            branch: "main".into(),
            commit: "abc123".into(),
        });
        assert_eq!(read_push(Sender::GitHub, &github), expected);
        assert_eq!(read_push(Sender::GitLab, &gitlab), expected);
    }

    #[test]
    fn tags_deletions_and_hostile_payloads_start_nothing_and_say_why() {
        let cases = [
            (
                json!({"ref": "refs/tags/v1", "after": "abc", "repository": {"full_name": "a/b"}}),
                "`refs/tags/v1` is not a branch: only branch pushes start runs",
            ),
            (
                json!({"ref": "refs/heads/old", "after": "0000000000000000000000000000000000000000",
                    "deleted": true, "repository": {"full_name": "a/b"}}),
                "branch `old` was deleted: that starts nothing",
            ),
            (json!({"after": "abc"}), "the push names no `ref`"),
            (
                json!({"ref": "refs/heads/main", "after": "abc"}),
                "the push names no repository",
            ),
            (json!([1, 2, 3]), "the push names no `ref`"),
            (json!({"ref": 7}), "the push names no `ref`"),
        ];
        for (payload, reason) in cases {
            assert_eq!(
                read_push(Sender::GitHub, &payload),
                Err(reason.to_owned()),
                "{payload}"
            );
        }
    }
}
