//! Agent memory rows: text, kind, scope (project, user, and run for short-term entries)
//! and the embedding, with an HNSW index over the embeddings. The index is defined when
//! the node knows its embedding model's dimension (`ensure_memory_index`), not in a
//! migration: the dimension belongs to the model the settings name.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use troupe_agents::{MemoryKind, MemoryScope};

use crate::Store;
use crate::error::StoreError;

/// HNSW search breadth: candidates kept while searching, above `k` so that filtering by
/// scope still leaves `k` results.
const SEARCH_EF: usize = 100;

/// A memory entry as stored and listed (the embedding left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemoryEntry {
    pub id: String,
    pub project: String,
    pub user: String,
    pub run_id: String,
    /// `short_term`, `long_term` or `episodic`.
    pub kind: String,
    pub text: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at_ms: i64,
    /// Cosine similarity to the query, in search results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A row as SurrealDB returns it: metadata is kept as JSON text (its shape is the
/// writer's, and a SCHEMAFULL table would drop the keys of an untyped object).
#[derive(Deserialize)]
struct EntryRow {
    id: String,
    project: String,
    user: String,
    run_id: String,
    kind: String,
    text: String,
    metadata: String,
    created_at_ms: i64,
    #[serde(default)]
    score: Option<f64>,
}

impl From<EntryRow> for MemoryEntry {
    fn from(row: EntryRow) -> Self {
        MemoryEntry {
            id: row.id,
            project: row.project,
            user: row.user,
            run_id: row.run_id,
            kind: row.kind,
            text: row.text,
            metadata: serde_json::from_str(&row.metadata).unwrap_or(Value::String(row.metadata)),
            created_at_ms: row.created_at_ms,
            score: row.score,
        }
    }
}

const ENTRY_FIELDS: &str =
    "record::id(id) AS id, project, user, run_id, kind, text, metadata, created_at_ms";

/// Which entries a listing or search covers: always one project and one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryFilter {
    pub project: String,
    pub user: String,
    pub kind: Option<MemoryKind>,
    /// Short-term entries of this run are included; those of other runs never are.
    pub run_id: Option<String>,
    pub limit: usize,
}

impl From<&MemoryScope> for MemoryFilter {
    fn from(scope: &MemoryScope) -> Self {
        MemoryFilter {
            project: scope.project.clone(),
            user: scope.user.clone(),
            kind: None,
            run_id: Some(scope.run_id.clone()),
            limit: 0,
        }
    }
}

impl MemoryFilter {
    fn condition(&self) -> String {
        let mut condition = String::from(
            "project = $project AND user = $user AND (kind != 'short_term' OR run_id = $run)",
        );
        if self.kind.is_some() {
            condition.push_str(" AND kind = $kind");
        }
        condition
    }

    fn vars(&self) -> Value {
        json!({
            "project": self.project,
            "user": self.user,
            // No run named: no short-term entry matches (run ids are never empty).
            "run": self.run_id.clone().unwrap_or_default(),
            "kind": self.kind.map(MemoryKind::name),
        })
    }
}

impl Store {
    /// Defines the HNSW index for `dimensions`-long embeddings, refusing a store whose
    /// entries were embedded by a model of another dimension.
    pub async fn ensure_memory_index(&self, dimensions: usize) -> Result<(), StoreError> {
        let stored: Vec<Value> = self
            .rows(
                "SELECT VALUE array::len(embedding) FROM memory LIMIT 1",
                json!({}),
            )
            .await?;
        if let Some(found) = stored.first().and_then(Value::as_u64)
            && found as usize != dimensions
        {
            return Err(StoreError::MemoryDimensions {
                found,
                expected: dimensions,
            });
        }
        self.execute(
            &format!(
                "DEFINE INDEX IF NOT EXISTS memory_embedding ON memory FIELDS embedding \
                 HNSW DIMENSION {dimensions} DIST COSINE"
            ),
            json!({}),
        )
        .await
    }

    pub async fn insert_memory(
        &self,
        scope: &MemoryScope,
        kind: MemoryKind,
        text: &str,
        metadata: &Value,
        embedding: &[f32],
    ) -> Result<String, StoreError> {
        if scope.project.is_empty() || scope.user.is_empty() {
            return Err(StoreError::InvalidRequest(
                "a memory entry needs a project and a user".into(),
            ));
        }
        let id = uuid::Uuid::now_v7().to_string();
        self.execute(
            "CREATE type::record('memory', $id) CONTENT {
                project: $project, user: $user, run_id: $run, kind: $kind, text: $text,
                metadata: $metadata, embedding: $embedding, created_at_ms: $now
            } RETURN NONE",
            json!({
                "id": id,
                "project": scope.project,
                "user": scope.user,
                "run": scope.run_id,
                "kind": kind.name(),
                "text": text,
                "metadata": metadata.to_string(),
                "embedding": embedding,
                "now": crate::clock::now_ms(),
            }),
        )
        .await?;
        Ok(id)
    }

    /// Entries of the filter's scope, newest first.
    pub async fn memories(&self, filter: &MemoryFilter) -> Result<Vec<MemoryEntry>, StoreError> {
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(1000)
        };
        let rows: Vec<EntryRow> = self
            .rows(
                &format!(
                    "SELECT {ENTRY_FIELDS} FROM memory WHERE {} ORDER BY created_at_ms DESC LIMIT {limit}",
                    filter.condition()
                ),
                filter.vars(),
            )
            .await?;
        Ok(rows.into_iter().map(MemoryEntry::from).collect())
    }

    /// The `k` entries of the filter's scope nearest to `embedding`, through the HNSW
    /// index, best first.
    pub async fn search_memory(
        &self,
        filter: &MemoryFilter,
        embedding: &[f32],
        k: usize,
    ) -> Result<Vec<MemoryEntry>, StoreError> {
        let k = k.clamp(1, 100);
        let mut vars = filter.vars();
        vars["query"] = json!(embedding);
        let rows: Vec<EntryRow> = self
            .rows(
                &format!(
                    "SELECT {ENTRY_FIELDS}, vector::similarity::cosine(embedding, $query) AS score \
                     FROM memory WHERE {} AND embedding <|{k},{ef}|> $query ORDER BY score DESC",
                    filter.condition(),
                    ef = SEARCH_EF.max(k),
                ),
                vars,
            )
            .await?;
        Ok(rows.into_iter().map(MemoryEntry::from).collect())
    }

    /// Deletes entry `id` of the given project and user; false when there is none (an
    /// entry of another scope is "none" too: its existence is not revealed).
    pub async fn delete_memory(
        &self,
        project: &str,
        user: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let deleted: Vec<Value> = self
            .rows(
                "DELETE type::record('memory', $id) WHERE project = $project AND user = $user RETURN BEFORE",
                json!({"id": id, "project": project, "user": user}),
            )
            .await?;
        Ok(!deleted.is_empty())
    }
}
