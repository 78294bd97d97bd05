//! The crate's one error type.

use crate::layers::Source;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    ReadFile { path: String, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    ParseFile { path: String, reason: String },
    #[error("`{key}` from {origin}: {reason}")]
    InvalidValue {
        key: String,
        origin: Source,
        reason: String,
    },
    #[error("flag `--set {assignment}` must look like `section.key=value`")]
    MalformedFlag { assignment: String },
    #[error("invalid settings:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}
