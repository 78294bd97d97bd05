//! Agent attempts invoked outside any workflow. The node that accepts one records it
//! running, and records its end (which node ran it, its outputs or its error) when the
//! attempt ends, so a caller polling any node sees where it stands. An invocation whose
//! node stopped before it ended is marked failed when that node starts again
//! ([`Store::abandon_invocations`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Store;
use crate::error::StoreError;
use crate::ids::{InvocationId, ProjectId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvocationStatus {
    Running,
    Succeeded,
    Failed,
}

/// One invocation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvocationRecord {
    pub id: InvocationId,
    pub project: ProjectId,
    pub kind: String,
    pub requested_by: String,
    /// The node that accepted the request (and waits for the attempt's end).
    pub accepted_by: String,
    /// The node the attempt ran on, once it ended.
    pub node: Option<String>,
    pub status: InvocationStatus,
    /// The agent's outputs, when it succeeded.
    pub outputs: Option<Map<String, Value>>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// What its model calls cost (each is in the ledger too, billed to the project).
    pub cost_usd: f64,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

impl InvocationRecord {
    /// Invocation `id` of `kind` for `project`, asked by `requested_by`, as node
    /// `accepted_by` accepts it at `created_ms`: running, nowhere yet.
    pub fn accepted(
        id: InvocationId,
        (project, kind, requested_by): (ProjectId, String, String),
        accepted_by: String,
        created_ms: i64,
    ) -> Self {
        InvocationRecord {
            id,
            project,
            kind,
            requested_by,
            accepted_by,
            node: None,
            status: InvocationStatus::Running,
            outputs: None,
            error: None,
            cost_usd: 0.0,
            created_ms,
            finished_ms: None,
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationEnd {
    pub node: Option<String>,
    pub outcome: Result<Map<String, Value>, String>,
    pub cost_usd: f64,
}

impl Store {
    /// Records `record` (running) under its id.
    pub async fn create_invocation(&self, record: &InvocationRecord) -> Result<(), StoreError> {
        self.execute(
            "CREATE type::record('invocation', $id) CONTENT {
                project: $project, kind: $kind, requested_by: $requested_by,
                accepted_by: $accepted_by, node: NONE, status: 'running',
                output: NONE, error: NONE, cost_usd: 0, created_ms: $created_ms, finished_ms: NONE }",
            json!({
                "id": record.id,
                "project": record.project,
                "kind": record.kind,
                "requested_by": record.requested_by,
                "accepted_by": record.accepted_by,
                "created_ms": record.created_ms,
            }),
        )
        .await
    }

    /// Records how invocation `id` ended, if it still runs (an end recorded already,
    /// such as an abandonment, stays).
    pub async fn finish_invocation(
        &self,
        id: &InvocationId,
        end: &InvocationEnd,
    ) -> Result<(), StoreError> {
        // Only the field that applies is set: SurrealDB stores a JSON null as NULL,
        // which an `option<string>` field refuses.
        let (status, field, value) = match &end.outcome {
            Ok(outputs) => (
                "succeeded",
                "output",
                Value::Object(outputs.clone()).to_string(),
            ),
            Err(error) => ("failed", "error", error.clone()),
        };
        let node = end.node.as_deref().map_or("NONE", |_| "$node");
        self.execute(
            &format!(
                "UPDATE type::record('invocation', $id) SET node = {node}, status = $status,
                    {field} = $value, cost_usd = $cost, finished_ms = time::millis(time::now())
                 WHERE status = 'running'"
            ),
            json!({"id": id, "node": end.node, "status": status, "value": value,
                "cost": end.cost_usd}),
        )
        .await
    }

    /// Marks failed every invocation node `node` accepted and did not see end: it
    /// stopped (or lost its lease) while they ran, and no one waits for them any more.
    pub async fn abandon_invocations(&self, node: &str, why: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE invocation SET status = 'failed', error = $why,
                finished_ms = time::millis(time::now())
             WHERE accepted_by = $node AND status = 'running'",
            json!({"node": node, "why": why}),
        )
        .await
    }

    pub async fn invocation(&self, id: &InvocationId) -> Result<InvocationRecord, StoreError> {
        let rows: Vec<Value> = self
            .rows(
                "SELECT meta::id(id) AS id, project, kind, requested_by, accepted_by, node,
                    status, output, error, cost_usd, created_ms, finished_ms
                 FROM type::record('invocation', $id)",
                json!({"id": id}),
            )
            .await?;
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::InvocationNotFound(id.clone()))?;
        record_of(row).map_err(|error| StoreError::Corrupt(format!("invocation `{id}`: {error}")))
    }
}

/// The record of a row, whose outputs are stored as JSON text.
fn record_of(mut row: Value) -> Result<InvocationRecord, serde_json::Error> {
    let outputs = match row["output"].as_str() {
        Some(text) => Some(serde_json::from_str::<Map<String, Value>>(text)?),
        None => None,
    };
    row["outputs"] = json!(outputs);
    serde_json::from_value(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_ms;

    async fn store() -> Store {
        Store::memory().await.unwrap()
    }

    fn running(id: &InvocationId, accepted_by: &str) -> InvocationRecord {
        let what = ("default".into(), "echo".into(), "ann".into());
        InvocationRecord::accepted(id.clone(), what, accepted_by.into(), now_ms())
    }

    #[tokio::test]
    async fn an_invocation_reads_back_running_then_with_its_end() {
        let store = store().await;
        let id = InvocationId::generate();
        let record = running(&id, "a");
        store.create_invocation(&record).await.unwrap();
        assert_eq!(store.invocation(&id).await.unwrap(), record);
        let outputs = json!({"echo": {"x": 1}}).as_object().cloned().unwrap();
        let end = InvocationEnd {
            node: Some("b".into()),
            outcome: Ok(outputs.clone()),
            cost_usd: 0.5,
        };
        store.finish_invocation(&id, &end).await.unwrap();
        let done = store.invocation(&id).await.unwrap();
        assert_eq!(done.status, InvocationStatus::Succeeded);
        assert_eq!(done.node.as_deref(), Some("b"));
        assert_eq!(done.outputs, Some(outputs));
        assert_eq!(done.cost_usd, 0.5);
        assert!(done.finished_ms.is_some());
        // An end recorded stays: a late second one does not overwrite it.
        let late = InvocationEnd {
            node: None,
            outcome: Err("late".into()),
            cost_usd: 0.0,
        };
        store.finish_invocation(&id, &late).await.unwrap();
        assert_eq!(store.invocation(&id).await.unwrap(), done);
    }

    #[tokio::test]
    async fn a_restarted_node_abandons_only_its_own_running_invocations() {
        let store = store().await;
        let (mine, theirs, ended) = (
            InvocationId::generate(),
            InvocationId::generate(),
            InvocationId::generate(),
        );
        for (id, node) in [(&mine, "a"), (&theirs, "b"), (&ended, "a")] {
            store.create_invocation(&running(id, node)).await.unwrap();
        }
        let end = InvocationEnd {
            node: Some("a".into()),
            outcome: Err("boom".into()),
            cost_usd: 0.0,
        };
        store.finish_invocation(&ended, &end).await.unwrap();
        store
            .abandon_invocations("a", "node a restarted")
            .await
            .unwrap();
        let abandoned = store.invocation(&mine).await.unwrap();
        assert_eq!(abandoned.status, InvocationStatus::Failed);
        assert_eq!(abandoned.error.as_deref(), Some("node a restarted"));
        assert_eq!(
            store.invocation(&theirs).await.unwrap().status,
            InvocationStatus::Running
        );
        assert_eq!(
            store.invocation(&ended).await.unwrap().error.as_deref(),
            Some("boom")
        );
        let missing = store.invocation(&InvocationId::from("inv-none")).await;
        assert!(matches!(missing, Err(StoreError::InvocationNotFound(id)) if id == "inv-none"));
    }
}
