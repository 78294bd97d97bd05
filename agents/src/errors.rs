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
    /// An external process (`host` is "plugin" or "MCP server") crashed, hung, or broke
    /// the protocol. It has been killed and is started afresh on next use.
    #[error("{host} `{name}`: {reason}")]
    External {
        host: &'static str,
        name: String,
        reason: String,
    },
    /// The external process answered the call with a JSON-RPC error.
    #[error("{host} `{name}` answered `{method}` with error {code}: {message}")]
    ExternalRefused {
        host: &'static str,
        name: String,
        method: String,
        code: i64,
        message: String,
    },
    /// A model call was not made: it could have taken the run or the task past its
    /// budget. Another attempt would meet the same budget.
    #[error("budget_exceeded: {0}")]
    BudgetExceeded(String),
    /// A failure recorded by the node that ran the attempt, kept as its text and whether
    /// another attempt could help (an attempt on another node, or before a take-over).
    #[error("{message}")]
    Recorded { message: String, retryable: bool },
    /// It failed more often than its restart intensity allows: calls are refused until
    /// the period has passed, instead of starting it in a loop.
    #[error(
        "{host} `{name}` failed {failures} times within {period_secs} s (at most \
         {max_restarts} restarts allowed); not started again for {retry_in_secs} s. \
         Last failure: {last_failure}"
    )]
    RestartLimit {
        host: &'static str,
        name: String,
        failures: usize,
        max_restarts: u32,
        period_secs: u64,
        retry_in_secs: u64,
        last_failure: String,
    },
}

/// JSON-RPC codes that say the request itself is wrong: sending it again cannot help.
const REQUEST_ERROR_CODES: [i64; 3] = [-32600, -32601, -32602];

impl AgentError {
    /// Whether another attempt could succeed. Bad input stays bad; a cancelled task must
    /// not come back.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            AgentError::InvalidInput { .. }
                | AgentError::UnknownKind { .. }
                | AgentError::Cancelled
                | AgentError::Unavailable(_)
                | AgentError::BudgetExceeded(_)
                | AgentError::Recorded {
                    retryable: false,
                    ..
                }
        ) && !matches!(self, AgentError::ExternalRefused { code, .. } if REQUEST_ERROR_CODES.contains(code))
    }
}

/// A refused input `field`, with why: the one way the crate builds `InvalidInput`.
pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> AgentError {
    AgentError::InvalidInput {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The scanner library's errors, as the `security_scanner` and `code_analyzer` kinds
/// report them.
impl From<troupe_scanner::ScanError> for AgentError {
    fn from(error: troupe_scanner::ScanError) -> Self {
        match error {
            troupe_scanner::ScanError::InvalidInput { field, reason } => {
                AgentError::InvalidInput { field, reason }
            }
            troupe_scanner::ScanError::Cancelled => AgentError::Cancelled,
        }
    }
}
