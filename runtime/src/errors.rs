//! The runtime's one error type. API handlers map each variant to an HTTP status and a
//! stable code (see `api::error`).

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("store: {0}")]
    Store(String),
    #[error("cannot open the store at {url}: {reason}")]
    StoreOpen { url: String, reason: String },
    #[error("workflow `{0}` not found")]
    WorkflowNotFound(String),
    #[error("workflow `{id}` has no version {version}")]
    WorkflowVersionNotFound { id: String, version: u32 },
    #[error("run `{0}` not found")]
    RunNotFound(String),
    #[error(
        "project `{0}` not found: create it first (POST /api/v1/projects, or `troupe projects create`)"
    )]
    ProjectNotFound(String),
    #[error("invalid workflow:\n{0}")]
    InvalidWorkflow(String),
    #[error("invalid variables: {0}")]
    InvalidVariables(String),
    #[error("run `{run}` is {status}; it no longer accepts this")]
    RunFinished { run: String, status: String },
    #[error("task `{task}` of run `{run}` is not waiting for approval (it is {status})")]
    NotWaitingForApproval {
        run: String,
        task: String,
        status: String,
    },
    #[error("approval refused: {0}")]
    ApprovalRefused(String),
    #[error("the node is overloaded; retry after {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    #[error("local models: {0}")]
    Models(#[from] troupe_inference::InferenceError),
    #[error("actor system: {0}")]
    Actor(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("audit log: {0}")]
    Audit(String),
    #[error("accounts: {0}")]
    Auth(String),
    #[error("secrets: {0}")]
    Secrets(String),
    /// Credentials or a token that do not let the caller in; the reason names the check,
    /// never the secret.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("too many attempts; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The agent kinds in settings cannot be set up (a plugin named like a built-in).
    #[error("agent kinds in settings: {0}")]
    AgentKinds(String),
}

impl From<surrealdb::Error> for RuntimeError {
    fn from(error: surrealdb::Error) -> Self {
        RuntimeError::Store(error.to_string())
    }
}

impl<T> From<ractor::RactorErr<T>> for RuntimeError {
    fn from(error: ractor::RactorErr<T>) -> Self {
        RuntimeError::Actor(error.to_string())
    }
}
