//! What a push webhook's payload says: the repository, branch and commit a run started
//! by `on_push` gets as `variables.push`. GitHub and GitLab name them differently; both
//! read to the same [`Push`]. Pure, so the fuzz targets reach it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::ast::PUSH_VARIABLE;

/// Who sent a delivery, by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    GitHub,
    GitLab,
}

impl Sender {
    pub fn name(self) -> &'static str {
        match self {
            Sender::GitHub => "github",
            Sender::GitLab => "gitlab",
        }
    }
}

/// A push to a branch: what the run gets as `variables.push`.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub repository: String,
    pub branch: String,
    pub commit: String,
}

impl Push {
    /// The push `payload` reports, or why it starts nothing (a tag, a deleted branch, a
    /// payload without what a push has).
    pub fn read(sender: Sender, payload: &Value) -> Result<Push, String> {
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
            .filter(|branch| !branch.is_empty())
            .ok_or_else(|| {
                format!("`{reference}` is not a branch: only branch pushes start runs")
            })?;
        let commit = commit
            .filter(|sha| !sha.trim_start_matches('0').is_empty())
            .ok_or_else(|| format!("branch `{branch}` was deleted: that starts nothing"))?;
        Ok(Push {
            repository: repository
                .filter(|name| !name.is_empty())
                .ok_or("the push names no repository")?,
            branch: branch.to_owned(),
            commit,
        })
    }

    /// The run's variables: `push`, the one a workflow with `on_push` may read.
    pub fn variables(&self) -> BTreeMap<String, Value> {
        let push = json!({
            "repository": self.repository,
            "branch": self.branch,
            "commit": self.commit,
        });
        BTreeMap::from([(PUSH_VARIABLE.to_owned(), push)])
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
        assert_eq!(Push::read(Sender::GitHub, &github), expected);
        assert_eq!(Push::read(Sender::GitLab, &gitlab), expected);
    }

    #[test]
    fn tags_deletions_and_hostile_payloads_start_nothing_and_say_why() {
        let cases = [
            (
                json!({"ref": "refs/tags/v1", "after": "abc", "repository": {"full_name": "a/b"}}),
                "`refs/tags/v1` is not a branch: only branch pushes start runs",
            ),
            (
                json!({"ref": "refs/heads/", "after": "abc", "repository": {"full_name": "a/b"}}),
                "`refs/heads/` is not a branch: only branch pushes start runs",
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
            (
                json!({"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": ""}}),
                "the push names no repository",
            ),
            (json!([1, 2, 3]), "the push names no `ref`"),
            (json!({"ref": 7}), "the push names no `ref`"),
        ];
        for (payload, reason) in cases {
            assert_eq!(
                Push::read(Sender::GitHub, &payload),
                Err(reason.to_owned()),
                "{payload}"
            );
        }
    }
}
