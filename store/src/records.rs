//! Rows as stored, and their conversion to and from the engine's types.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::StoreError;
use crate::events::{RunEvent, RunStatus, StoredEvent};
use crate::ids::{ProjectId, RunId, WorkflowId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowRecord {
    pub workflow_id: WorkflowId,
    pub name: String,
    pub latest_version: u32,
    pub updated_at_ms: i64,
    pub project: ProjectId,
    /// Its schedule and push triggers start nothing while set (`troupe triggers pause`).
    #[serde(default)]
    pub triggers_paused: bool,
    /// When they were last paused or resumed (Unix ms; 0: never): a schedule's ticks
    /// from before a resume are not missed ticks.
    #[serde(default)]
    pub triggers_changed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowVersion {
    pub workflow_id: WorkflowId,
    pub version: u32,
    pub name: String,
    pub source: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub run_id: RunId,
    pub workflow_id: WorkflowId,
    pub workflow_version: u32,
    pub workflow_name: String,
    pub status: RunStatus,
    pub started_by: String,
    pub created_at_ms: i64,
    /// 0 while the run is going.
    pub finished_at_ms: i64,
    /// Its workflow's project, at the time the run started.
    pub project: ProjectId,
    /// The node that runs it now (its `cluster.node_name`).
    pub owner: String,
    /// How many times a node took it on: every take-over adds one, and only the owner
    /// of the current epoch may append to the run's log (see [`crate::Store::take_over_run`]).
    pub epoch: u64,
    /// The W3C `traceparent` of the run's root span, chosen when it started; empty
    /// when no spans were exported then.
    #[serde(default)]
    pub trace: String,
    /// The `traceparent` of the span that started the run (a traced request), if any.
    #[serde(default)]
    pub trace_parent: String,
    /// The tick of the schedule that started the run (Unix ms); `None` for a run that
    /// a person, a program or a push started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<i64>,
}

pub const RUN_FIELDS: &str = "run_id, workflow_id, workflow_version, workflow_name, status, started_by, created_at_ms, finished_at_ms, project, owner, epoch, trace, trace_parent, tick_ms";

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow_id: Option<WorkflowId>,
    /// Only runs of these projects; `None`: every project.
    pub projects: Option<Vec<ProjectId>>,
    /// The newest this many; `None`: every run that matches (what the approvals list
    /// reads: a cap there would silently drop the oldest runs).
    pub limit: Option<usize>,
}

/// One append to a run's log: its events as one row, keyed `[run_id, first_seq]`.
///
/// Why chunks: a row costs SurrealDB about as much as a whole batch of events in it
/// (measured: 130 µs for a one-row insert against 220 µs for two rows behind a unique
/// index), and a run appends in batches (an outcome with the steps it unlocks, a wide
/// fan-out at once). Why the key: it makes a second writer an error without an index.
/// Every writer reads whole chunks and appends right after the last event it has seen,
/// so chunk boundaries form one chain; a stale writer's chunk starts where a chunk
/// already starts, and its insert is refused. Reading checks the chain has no gap or
/// overlap, so a broken log is reported, never replayed.
///
/// The events are JSON text: the log is written once and read whole, and a text column
/// keeps SCHEMAFULL strict without describing every event shape twice.
pub fn chunk_row(events: &[StoredEvent]) -> Result<Value, StoreError> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(StoreError::InvalidWrite(
            "an empty append has no chunk".into(),
        ));
    };
    for (pair_index, pair) in events.windows(2).enumerate() {
        if pair[1].run_id != first.run_id || pair[1].seq != pair[0].seq + 1 {
            return Err(StoreError::InvalidWrite(format!(
                "an append must hold consecutive events of one run; event {} is {} #{} after {} #{}",
                pair_index + 1,
                pair[1].run_id,
                pair[1].seq,
                pair[0].run_id,
                pair[0].seq
            )));
        }
    }
    let entries: Vec<ChunkEntry<'_>> = events
        .iter()
        .map(|stored| ChunkEntry {
            seq: stored.seq,
            at_ms: stored.at_ms,
            event: std::borrow::Cow::Borrowed(&stored.event),
        })
        .collect();
    let text = serde_json::to_string(&entries).map_err(|source| StoreError::Encode {
        what: "events",
        source,
    })?;
    Ok(json!({
        "id": [first.run_id, first.seq],
        "run_id": first.run_id,
        "first_seq": first.seq,
        "last_seq": last.seq,
        "events": text,
    }))
}

#[derive(Serialize, Deserialize)]
struct ChunkEntry<'a> {
    seq: u64,
    at_ms: i64,
    event: std::borrow::Cow<'a, RunEvent>,
}

/// The events of a run's chunks, in order; refuses a log whose chunks do not follow one
/// another exactly from event 0.
pub fn events_from_chunks(
    run_id: &RunId,
    rows: Vec<Value>,
) -> Result<Vec<StoredEvent>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        first_seq: u64,
        events: String,
    }
    let mut events: Vec<StoredEvent> = Vec::new();
    for row in rows {
        let row: Row = serde_json::from_value(row).map_err(|error| {
            StoreError::Corrupt(format!("bad run_log row of run {run_id}: {error}"))
        })?;
        let entries: Vec<ChunkEntry<'static>> =
            serde_json::from_str(&row.events).map_err(|error| {
                StoreError::Corrupt(format!(
                    "run {run_id}, chunk at event {}: {error}",
                    row.first_seq
                ))
            })?;
        for entry in entries {
            let expected = events.len() as u64;
            if entry.seq != expected {
                return Err(StoreError::Corrupt(format!(
                    "the log of run {run_id} is broken: event {} where {expected} should be (chunk at {})",
                    entry.seq, row.first_seq
                )));
            }
            events.push(StoredEvent {
                run_id: run_id.clone(),
                seq: entry.seq,
                at_ms: entry.at_ms,
                event: entry.event.into_owned(),
            });
        }
    }
    Ok(events)
}
