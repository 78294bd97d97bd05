//! The security crate's one error type. A failure of the store underneath keeps its own
//! variant (`Store`), so a database fault is never mistaken for a refused credential;
//! every fault with a cause below it keeps that cause as its `source`.

use std::path::PathBuf;

use troupe_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file kept beside the store (the checkpoint log, the keyring) could not be read
    /// or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the audit checkpoint log is not a checkpoint.
    #[error("audit checkpoints {} line {line}: {source}", path.display())]
    CheckpointUnreadable {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint's signature does not hold: the file was altered or its key replaced.
    #[error(
        "audit checkpoints {} line {line}: the signature does not match: the checkpoint \
         file was altered or the key replaced", path.display()
    )]
    CheckpointAltered { path: PathBuf, line: usize },
    /// A value we made could not be encoded (a bug, not bad input).
    #[error("encoding {what}: {source}")]
    Encoding {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Argon2 refused to hash (its parameters or salt).
    #[error("hashing a password: {0}")]
    PasswordHash(argon2::password_hash::Error),
    /// The blocking task that hashes or verifies a password panicked or was cancelled.
    #[error("hashing a password: the worker stopped")]
    PasswordWorkStopped(#[source] Option<tokio::task::JoinError>),
    #[error("signing a token: {0}")]
    TokenSigning(#[source] jsonwebtoken::errors::Error),
    #[error("the enrolment URI is too long for a QR code")]
    QrCodeTooLong,
    /// A key or a sealed value that cannot be used; the message says which and why (the
    /// cipher's own errors carry nothing more).
    #[error("secrets: {0}")]
    Secrets(String),
    /// Credentials or a token that do not let the caller in; the reason names the check,
    /// never the secret.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A change that needs proof, given again, that the account's owner is at the
    /// keyboard, and the proof was missing or wrong (see `auth::step_up`).
    #[error("{0}")]
    StepUp(String),
    #[error("too many attempts; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Input the caller can fix: a malformed email, a weak password, a bad secret name.
    #[error("{0}")]
    InvalidRequest(String),
}
