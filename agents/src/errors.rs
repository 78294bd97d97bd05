//! The crate's one error type. Every variant says whether retrying could help.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentError {
    #[error("input `{field}`: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("unknown agent kind `{kind}`; known kinds: {known}")]
    UnknownKind { kind: String, known: String },
    #[error("cancelled")]
    Cancelled,
    #[error("timed out after {secs} s")]
    TimedOut { secs: u64 },
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Io(String),
    /// The model's answers failed validation on every call this attempt made.
    #[error("{agent}: the model's answer was unusable after {calls} call(s): {problem}")]
    ModelOutput {
        agent: String,
        calls: u32,
        problem: String,
    },
    /// A model-backed kind on a node with no model (or memory) to give it.
    #[error("{0}")]
    Unavailable(String),
}

impl AgentError {
    /// Whether another attempt could succeed. Bad input stays bad; a cancelled task must
    /// not come back.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            AgentError::InvalidInput { .. }
                | AgentError::UnknownKind { .. }
                | AgentError::Cancelled
        )
    }
}
