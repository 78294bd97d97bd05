//! The engine's one error type: what starting, deciding and cancelling runs can fail
//! with. The API maps each variant to a status (`troupe_api::error`).

use troupe_store::{ProjectId, RunId, StoreError, TaskId};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid workflow:\n{0}")]
    InvalidWorkflow(String),
    #[error("invalid variables: {0}")]
    InvalidVariables(String),
    /// A migration whose plan would change what already started, or lose what the run
    /// has: each reason, `; `-separated.
    #[error("the run cannot move to that version: {0}")]
    MigrationRefused(String),
    /// A retry the run's state refuses: still running, completed, or an unknown task.
    #[error("{0}")]
    RetryRefused(#[from] crate::state::RetryRefusal),
    #[error("run `{run}` is {status}; it no longer accepts this")]
    RunFinished { run: RunId, status: String },
    /// The run is going, on another node (its owner in the store).
    #[error("run `{run}` is run by node `{owner}`, not this one: send the request there")]
    RunElsewhere { run: RunId, owner: String },
    #[error("task `{task}` of run `{run}` is not waiting for approval (it is {status})")]
    NotWaitingForApproval {
        run: RunId,
        task: TaskId,
        status: String,
    },
    #[error("approval refused: {0}")]
    ApprovalRefused(String),
    #[error("the node is overloaded; retry after {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// An actor the request needs is being restarted by its supervisor: a moment later
    /// the same request succeeds (the API answers 503 with Retry-After).
    #[error("{what} is restarting; try again")]
    Restarting { what: String },
    /// The execution policy: a task's kind is not run by this node at all. `user` is
    /// what uses it: "task `build`", or "the invocation".
    #[error(
        "{user} uses agent kind `{kind}`, which this node does not run: an operator adds \
         it to agents.allowed_kinds"
    )]
    KindNotOnNode { user: String, kind: String },
    /// The execution policy: a task's kind needs a grant its project does not have.
    #[error(
        "{user} uses agent kind `{kind}`, which {why}; project `{project}` is not allowed \
         it. A project owner (agents.configure) grants it: `troupe projects allow {project} {kind}`"
    )]
    KindNotGranted {
        user: String,
        kind: String,
        why: &'static str,
        project: ProjectId,
    },
    /// The execution policy: a task of a kind its project gates is not a gate.
    #[error(
        "task `{task}` uses agent kind `{kind}`, whose tasks project `{project}` requires to \
         wait for a second person's approval: add {missing}"
    )]
    GateRequired {
        task: String,
        kind: String,
        missing: &'static str,
        project: ProjectId,
    },
    /// In a cluster, a node whose lease is not live (joining, or fenced after losing
    /// its store) starts no run: another node can.
    #[error(
        "this node is not a live member of its cluster right now; try another node or again shortly"
    )]
    NotMember,
    /// An invocation names a kind no node has.
    #[error("there is no agent kind `{kind}`; the kinds are: {known}")]
    KindUnknown { kind: String, known: String },
    /// The execution policy: a kind its project gates runs only behind a workflow's
    /// approval gate, which an invocation has not.
    #[error(
        "project `{project}` gates agent kind `{kind}`: each of its attempts waits for a \
         second person's approval, so it runs only as a task of a workflow \
         (`requires_approval: true`, `separate_approver: true`), not by invocation"
    )]
    GatedInvocation { kind: String, project: ProjectId },
    #[error("actor system: {0}")]
    Actor(String),
    #[error("{0}")]
    InvalidRequest(String),
}

/// A message that could not be sent or answered. ractor's error holds the unsent
/// message, which is not an error source; its text names what failed.
impl<T> From<ractor::RactorErr<T>> for EngineError {
    fn from(error: ractor::RactorErr<T>) -> Self {
        EngineError::Actor(error.to_string())
    }
}
