//! The security crate's one error type. A failure of the store underneath keeps its own
//! variant (`Store`), so a database fault is never mistaken for a refused credential.

use troupe_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// Input the caller can fix: a malformed email, a weak password, a bad secret name.
    #[error("{0}")]
    InvalidRequest(String),
}
