//! The scanner's one error type.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    /// An input the caller gave (the repository path, an advisory file) is unusable;
    /// `field` names it.
    #[error("input `{field}`: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("cancelled")]
    Cancelled,
}
