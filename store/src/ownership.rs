//! Who runs each run, and the fenced append.
//!
//! A run has an owner node and an epoch. Taking a run on (at start-up, or from a node
//! whose lease lapsed) is a compare-and-set that adds one to the epoch, and every append
//! to the run's log names the epoch its writer holds. The check is a *write* in the
//! append's own transaction: it sets the run's `last_seq` only where the epoch still
//! matches. Under snapshot isolation a read-only check could pass beside a concurrent
//! take-over (write skew); two writes to one row conflict, so one of the two aborts, and
//! a node that lost the run cannot append one more event (docs/runtime-semantics.md).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Store;
use crate::error::StoreError;
use crate::events::{RunEvent, StoredEvent};
use crate::ids::RunId;
use crate::records;

/// What a take-over needs to know of an unfinished run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunOwnership {
    pub run_id: RunId,
    pub owner: String,
    pub epoch: u64,
}

/// Thrown by an append whose epoch is not the run's: the text the error is found by.
const FENCED: &str = "troupe-fenced";

impl Store {
    /// Appends consecutive events of one run as one chunk (see `records::chunk_row`),
    /// if `epoch` is still the run's: otherwise [`StoreError::Fenced`], and nothing is
    /// written. A `run_finished` among them updates the run's record in the same
    /// transaction, so the record never disagrees with the log.
    pub async fn append_events(
        &self,
        events: &[StoredEvent],
        epoch: u64,
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let chunk = records::chunk_row(events)?;
        let finished = events.iter().find_map(|stored| match &stored.event {
            RunEvent::RunFinished { status, .. } => Some((*status, stored.at_ms)),
            _ => None,
        });
        let retried = events
            .iter()
            .any(|stored| matches!(stored.event, RunEvent::RunRetried { .. }));
        // A retry is appended to a finished run; its record is running again.
        let finish = match (finished, retried) {
            (Some(_), _) => {
                "UPDATE run SET status = $status, finished_at_ms = $at WHERE run_id = $run;"
            }
            (None, true) => {
                "UPDATE run SET status = 'running', finished_at_ms = 0 WHERE run_id = $run;"
            }
            (None, false) => "",
        };
        let migrated = events.iter().find_map(|stored| match stored.event {
            RunEvent::RunMigrated { to_version, .. } => Some(to_version),
            _ => None,
        });
        let migrate = match migrated {
            Some(_) => "UPDATE run SET workflow_version = $version WHERE run_id = $run;",
            None => "",
        };
        let query = format!(
            "BEGIN TRANSACTION;
             LET $held = (UPDATE run SET last_seq = $last WHERE run_id = $run AND epoch = $epoch
                 RETURN VALUE run_id);
             IF array::len($held) = 0 {{ THROW '{FENCED}' }};
             INSERT INTO run_log $chunk RETURN NONE;
             {finish}
             {migrate}
             COMMIT TRANSACTION;"
        );
        let vars = json!({
            "run": first.run_id,
            "last": last.seq,
            "epoch": epoch,
            "chunk": chunk,
            "status": finished.map(|(status, _)| status.as_str()),
            "at": finished.map(|(_, at)| at),
            "version": migrated,
        });
        let span = troupe_telemetry::spans::store_write("append run_log");
        let sent =
            tracing::Instrument::instrument(self.db.query(query).bind(vars).into_future(), span);
        let started = std::time::Instant::now();
        let answered = sent.await;
        crate::metrics::took("append", started);
        let mut response = answered?;
        match crate::thrown_by(&mut response, FENCED)? {
            Some(_) => Err(StoreError::Fenced {
                run: first.run_id.clone(),
                epoch,
            }),
            None => Ok(()),
        }
    }

    /// Makes `owner` the run's owner in the next epoch, if the run is unfinished and its
    /// epoch is still `seen` (what the caller read): the new epoch, or `None` when
    /// another node got there first or the run ended.
    pub async fn take_over_run(
        &self,
        run_id: &RunId,
        seen: u64,
        owner: &str,
    ) -> Result<Option<u64>, StoreError> {
        let epochs: Vec<Value> = self
            .rows(
                "UPDATE run SET owner = $owner, epoch = epoch + 1
                 WHERE run_id = $run AND epoch = $seen AND status = 'running'
                 RETURN VALUE epoch",
                json!({"run": run_id, "seen": seen, "owner": owner}),
            )
            .await?;
        Ok(epochs.first().and_then(Value::as_u64))
    }

    /// Every run still going, with its owner and epoch, oldest first.
    pub async fn unfinished_runs(&self) -> Result<Vec<RunOwnership>, StoreError> {
        self.rows(
            "SELECT run_id, owner, epoch, created_at_ms FROM run WHERE status = 'running'
             ORDER BY created_at_ms",
            json!({}),
        )
        .await
    }
}
