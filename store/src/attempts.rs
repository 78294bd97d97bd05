//! Attempt outcomes, kept apart from the run's log: the node that ran an attempt writes
//! its outcome here, keyed by the attempt's idempotency key, before it tells the run's
//! owner. A new owner that finds an attempt started and not finished in the log looks
//! here first and takes the recorded outcome instead of running the attempt again.
//!
//! A record is evidence, not the log: only the owner's fenced append makes an outcome
//! part of the run, so a record written under an old epoch can resolve an attempt no
//! one has retried yet, and can never add an event the fence would refuse.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Store;
use crate::error::StoreError;
use crate::ids::RunId;

/// One attempt's outcome as the node that ran it recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub run_id: RunId,
    pub idempotency_key: String,
    /// The epoch of the run the attempt was started in.
    pub epoch: u64,
    /// The node that ran it.
    pub node: String,
    /// The outcome, in the engine's format (`troupe_engine`'s `AttemptOutcome`).
    pub outcome: Value,
}

impl Store {
    /// Records (or records again, the same key twice being the same attempt) an outcome.
    pub async fn record_attempt_outcome(&self, record: &AttemptRecord) -> Result<(), StoreError> {
        self.traced(
            "upsert attempt_outcome",
            "UPSERT type::record('attempt_outcome', $key) CONTENT {
                run_id: $run_id, idempotency_key: $key, epoch: $epoch, node: $node,
                outcome: $outcome, at_ms: time::millis(time::now()) }",
            json!({
                "key": record.idempotency_key,
                "run_id": record.run_id,
                "epoch": record.epoch,
                "node": record.node,
                "outcome": record.outcome.to_string(),
            }),
        )
        .await
    }

    /// The outcome recorded for the attempt with `idempotency_key`, if any.
    pub async fn attempt_outcome(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let rows: Vec<Value> = self
            .rows(
                "SELECT run_id, idempotency_key, epoch, node, outcome
                 FROM type::record('attempt_outcome', $key)",
                json!({"key": idempotency_key}),
            )
            .await?;
        let Some(mut row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let text = row["outcome"].as_str().unwrap_or_default().to_string();
        row["outcome"] = serde_json::from_str(&text).map_err(|error| {
            StoreError::Corrupt(format!("attempt outcome `{idempotency_key}`: {error}"))
        })?;
        serde_json::from_value(row).map(Some).map_err(|error| {
            StoreError::Corrupt(format!("attempt outcome `{idempotency_key}`: {error}"))
        })
    }

    /// Forgets the outcomes of a finished run's attempts: the log holds them now.
    pub async fn forget_attempt_outcomes(&self, run_id: &RunId) -> Result<(), StoreError> {
        self.execute(
            "DELETE attempt_outcome WHERE run_id = $run_id",
            json!({"run_id": run_id}),
        )
        .await
    }
}
