//! What agents remember, as the crate sees it: a scope, three kinds of entry, and
//! nearest-neighbour recall. The runtime keeps the entries in SurrealDB with an
//! embedding from the local model and an HNSW index.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::AgentError;

/// Whose memory: entries are written and recalled within one project and one user, and
/// short-term entries within one run as well. Set by the runtime from the run, never
/// from task inputs, so a workflow cannot read another user's memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemoryScope {
    pub project: String,
    pub user: String,
    pub run_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// The run's own context: visible to later tasks of the same run only.
    ShortTerm,
    /// Facts and outcomes about the project.
    LongTerm,
    /// Past tasks with their result and any human correction.
    Episodic,
}

impl MemoryKind {
    pub const ALL: [MemoryKind; 3] = [
        MemoryKind::ShortTerm,
        MemoryKind::LongTerm,
        MemoryKind::Episodic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::ShortTerm => "short_term",
            MemoryKind::LongTerm => "long_term",
            MemoryKind::Episodic => "episodic",
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                format!("unknown memory kind `{name}`; use short_term, long_term or episodic")
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMemory {
    pub kind: MemoryKind,
    pub text: String,
    /// Who wrote it (agent kind, `human`), the task, the outcome.
    #[serde(default)]
    pub metadata: Value,
}

/// An entry and how near it is to the query (cosine similarity, 1 = same direction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recalled {
    pub id: String,
    pub kind: MemoryKind,
    pub text: String,
    pub score: f64,
    pub metadata: Value,
    pub created_at_ms: i64,
}

#[async_trait::async_trait]
pub trait Memory: Send + Sync + 'static {
    /// The `k` entries of `scope` nearest to `query`, best first. Short-term entries of
    /// other runs are never returned.
    async fn recall(
        &self,
        scope: &MemoryScope,
        query: &str,
        k: usize,
    ) -> Result<Vec<Recalled>, AgentError>;

    /// Stores an entry in `scope`; returns its id.
    async fn remember(&self, scope: &MemoryScope, entry: NewMemory) -> Result<String, AgentError>;
}
