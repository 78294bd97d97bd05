//! Rows as stored, and their conversion to and from the engine's types.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::events::{RunEvent, RunStatus, StoredEvent};
use crate::errors::RuntimeError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowRecord {
    pub workflow_id: String,
    pub name: String,
    pub latest_version: u32,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowVersion {
    pub workflow_id: String,
    pub version: u32,
    pub name: String,
    pub source: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_version: u32,
    pub workflow_name: String,
    pub status: RunStatus,
    pub started_by: String,
    pub created_at_ms: i64,
    /// 0 while the run is going.
    pub finished_at_ms: i64,
}

pub const RUN_FIELDS: &str = "run_id, workflow_id, workflow_version, workflow_name, status, started_by, created_at_ms, finished_at_ms";

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow_id: Option<String>,
    pub limit: usize,
}

/// The payload is stored as JSON text: the log is written once and read whole, and a
/// text column keeps SCHEMAFULL strict without describing every event shape twice.
pub fn event_row(event: &StoredEvent) -> Result<Value, RuntimeError> {
    let payload = serde_json::to_string(&event.event)
        .map_err(|error| RuntimeError::Store(format!("cannot encode event: {error}")))?;
    Ok(json!({
        "run_id": event.run_id,
        "seq": event.seq,
        "at_ms": event.at_ms,
        "kind": event.event.kind(),
        "payload": payload,
    }))
}

pub fn event_from_row(row: Value) -> Result<StoredEvent, RuntimeError> {
    #[derive(Deserialize)]
    struct Row {
        run_id: String,
        seq: u64,
        at_ms: i64,
        payload: String,
    }
    let row: Row = serde_json::from_value(row)
        .map_err(|error| RuntimeError::Store(format!("bad event row: {error}")))?;
    let event: RunEvent = serde_json::from_str(&row.payload).map_err(|error| {
        RuntimeError::Store(format!("event {} of run {}: {error}", row.seq, row.run_id))
    })?;
    Ok(StoredEvent {
        run_id: row.run_id,
        seq: row.seq,
        at_ms: row.at_ms,
        event,
    })
}
