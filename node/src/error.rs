//! The node's one error type. What the crates below fail with keeps its own variant
//! (`#[from]`), so the API maps a store's "not found" and an engine's "overloaded" the
//! same way whichever layer the call went through.

use troupe_cluster::error::ClusterError;
use troupe_engine::EngineError;
use troupe_inference::InferenceError;
use troupe_security::SecurityError;
use troupe_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Security(#[from] SecurityError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("local models: {0}")]
    Models(#[from] InferenceError),
    #[error("the cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// A part of the node could not be started.
    #[error("{what}: {source}")]
    Start {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The agent kinds in settings cannot be set up (a plugin named like a built-in).
    #[error("agent kinds in settings: {0}")]
    AgentKinds(String),
    /// The links' cookie could not be read from the sealed secrets.
    #[error("cluster.cookie_secret: {0}")]
    ClusterCookie(String),
    /// A provider's key could not be opened from the sealed secrets.
    #[error("secrets: {0}")]
    ProviderKey(String),
    /// The audit chain failed verification at start (`audit.on_tampering = "refuse"`).
    #[error(
        "the audit log failed verification at entry {seq}: {problem}. The node does not \
         start on a tampered log; run `troupe audit verify` to inspect it. If the store \
         was reset on purpose, move the old checkpoint directory ({checkpoints}) aside; to \
         start anyway, set audit.on_tampering = \"warn\""
    )]
    AuditTampered {
        seq: u64,
        problem: String,
        checkpoints: String,
    },
    #[error("the embedding model returned no vector")]
    NoEmbedding,
    #[error("{0}")]
    InvalidRequest(String),
    /// A reload read settings that do not hold; the running ones stay.
    #[error("nothing was reloaded: {0}")]
    Settings(#[source] troupe_config::ConfigError),
    /// A reload on a node whose settings came from the program that embeds it.
    #[error(
        "this node was given its settings by the program that runs it, not read from a \
         file: it cannot read them again (restart it with the new ones)"
    )]
    NoSettingsSource,
}

impl<T> From<ractor::RactorErr<T>> for NodeError {
    fn from(error: ractor::RactorErr<T>) -> Self {
        NodeError::Engine(error.into())
    }
}
