//! The store's one error type: what can go wrong reading and writing the database and
//! the key files beside it. Callers above wrap it (`#[from]`) and the API maps each
//! variant to a status (`troupe_api::error`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("store: {0}")]
    Database(#[from] surrealdb::Error),
    #[error("cannot open the store at {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("store: migration {version}: {source}")]
    Migration {
        version: u32,
        #[source]
        source: surrealdb::Error,
    },
    /// A row that does not read as what Troupe writes: a corrupt or hand-edited store.
    #[error("store: {0}")]
    Corrupt(String),
    /// A caller asked the store for something it never writes (an empty or gapped append).
    #[error("store: {0}")]
    InvalidWrite(String),
    #[error("store: cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A key file beside the store could not be read or written.
    #[error("store: {action} {}: {source}", path.display())]
    KeyFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: the key in {} is shorter than 32 bytes; restore it from a backup", path.display())]
    KeyTooShort { path: PathBuf },
    #[error(
        "store: agent memory holds {found}-dimension embeddings but the embedding model \
         gives {expected}: use the model the memory was written with, or delete the memory \
         entries (DELETE /api/v1/memory/{{id}})"
    )]
    MemoryDimensions { found: u64, expected: usize },
    /// A record the caller may fix: a duplicate email or project id, a memory entry
    /// without a scope.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("workflow `{0}` not found")]
    WorkflowNotFound(crate::WorkflowId),
    #[error("workflow `{id}` has no version {version}")]
    WorkflowVersionNotFound { id: crate::WorkflowId, version: u32 },
    #[error("run `{0}` not found")]
    RunNotFound(crate::RunId),
    #[error("invocation `{0}` not found")]
    InvocationNotFound(crate::InvocationId),
    /// An append by a node that no longer owns the run: another took it over in a
    /// later epoch. The writer must stop acting for the run.
    #[error("run `{run}` has a newer owner than epoch {epoch}: this node no longer runs it")]
    Fenced { run: crate::RunId, epoch: u64 },
    #[error(
        "project `{0}` not found: create it first (POST /api/v1/projects, or `troupe projects create`)"
    )]
    ProjectNotFound(String),
}

impl StoreError {
    /// Whether the database refused the write because a unique key (a record id or a
    /// unique index, named by `key`) is taken.
    pub fn is_taken(&self, key: &str) -> bool {
        matches!(self, StoreError::Database(error) if error.to_string().contains(key))
    }
}
