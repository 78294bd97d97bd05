//! The store: SurrealDB behind one small API, and every format Troupe keeps on disk.
//! Workflows with every version, runs and each run's event log ([`events`] is the stored
//! event format), accounts, sessions, keys and sealed secrets, agent memory, the cost
//! ledger and the audit chain's rows. The engine is chosen by URL (`surrealkv://DIR`,
//! `mem://`, `ws://HOST:PORT`) through the SDK's `any` engine.
//!
//! Values cross into SurrealDB as `serde_json::Value` and come back the same way, so our
//! types only need serde. The schema is SCHEMAFULL and migrated at open (`migrations`).
//! Beside the database: [`key_file`] (keys kept outside it), [`digest`] and [`clock`].
//!
//! Knows nothing of the engine's actors, accounts' rules or HTTP: it stores what those
//! crates decide.

mod access;
mod attempts;
mod audit;
mod budgets;
pub mod clock;
pub mod digest;
mod error;
pub mod events;
mod idempotency;
mod ids;
mod invocations;
pub mod key_file;
mod ledger;
mod memory;
pub mod metrics;
mod migrations;
mod nodes;
mod ownership;
mod policy;
mod projects;
mod records;
mod reloads;
mod secrets;
mod sessions;
mod users;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use troupe_config::StoreSettings;

use crate::events::{RunStatus, StoredEvent};
pub use access::{Permission, Role, UnknownName};
pub use attempts::AttemptRecord;
pub use audit::{AuditEntry, AuditFilter, People};
pub use budgets::Refusal;
pub use error::StoreError;
pub use idempotency::{Claim, IDEMPOTENCY_TTL_MS};
pub use ids::{InvocationId, ProjectId, RunId, TaskId, UserId, WorkflowId};
pub use invocations::{InvocationEnd, InvocationRecord, InvocationStatus};
pub use ledger::{CallRow, CostLine, CostReport};
pub use memory::{MemoryEntry, MemoryFilter};
pub use nodes::{NodeAdvert, NodeRecord};
pub use ownership::RunOwnership;
pub use policy::ProjectPolicy;
pub use projects::{
    DEFAULT_ORG, DEFAULT_PROJECT, MemberRecord, ProjectRecord, project_of, workflow_id_of,
};
pub use records::{RunFilter, RunRecord, WorkflowRecord, WorkflowVersion};
pub use reloads::ReloadAnnouncement;
pub use secrets::{MfaRecord, SecretRecord};
pub use sessions::SessionRecord;
pub use users::{ApiKeyRecord, RefreshRecord, UserRecord};

#[derive(Clone)]
pub struct Store {
    db: Surreal<Any>,
}

impl Store {
    pub async fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            url: settings.url.clone(),
            source,
        };
        if let Some(dir) = settings.url.strip_prefix("surrealkv://") {
            std::fs::create_dir_all(dir).map_err(|error| open_error(error.into()))?;
        }
        let db = surrealdb::engine::any::connect(settings.url.as_str())
            .await
            .map_err(|error| open_error(error.into()))?;
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            db.signin(surrealdb::opt::auth::Root {
                username: username.clone(),
                password: password.clone(),
            })
            .await
            .map_err(|error| open_error(error.into()))?;
        }
        db.use_ns(settings.namespace.as_str())
            .use_db(settings.database.as_str())
            .await
            .map_err(|error| open_error(error.into()))?;
        let store = Store { db };
        migrations::apply(&store.db).await?;
        Ok(store)
    }

    /// An in-memory store for tests.
    pub async fn memory() -> Result<Store, StoreError> {
        Store::open(&StoreSettings {
            url: "mem://".into(),
            ..Default::default()
        })
        .await
    }

    async fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        vars: Value,
    ) -> Result<Vec<T>, StoreError> {
        let started = std::time::Instant::now();
        let answered = self.db.query(query).bind(vars).await;
        metrics::took("read", started);
        let mut response = answered?.check()?;
        let rows: Vec<Value> = response.take(response.num_statements() - 1)?;
        rows.into_iter()
            .map(|row| {
                serde_json::from_value(row)
                    .map_err(|error| StoreError::Corrupt(format!("unexpected row: {error}")))
            })
            .collect()
    }

    /// Runs any statement: tests (the audit chain's, in the security crate) use it to
    /// tamper with what the API would never let them touch. Hidden, not feature-gated: a
    /// test-only feature would build every crate above the store twice.
    #[doc(hidden)]
    pub async fn execute_for_test(&self, query: &str) -> Result<(), StoreError> {
        self.execute(query, json!({})).await
    }

    async fn execute(&self, query: &str, vars: Value) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let answered = self.db.query(query).bind(vars).await;
        metrics::took("write", started);
        answered?.check()?;
        Ok(())
    }

    /// `execute` as a span of its own, named `operation`, in the caller's trace.
    async fn traced(
        &self,
        operation: &'static str,
        query: &str,
        vars: Value,
    ) -> Result<(), StoreError> {
        let span = troupe_telemetry::spans::store_write(operation);
        let result = tracing::Instrument::instrument(self.execute(query, vars), span.clone()).await;
        if let Err(error) = &result {
            troupe_telemetry::spans::failed(&span, "store", &error.to_string());
        }
        result
    }

    // ---- workflows -------------------------------------------------------------

    /// Stores `source` as the next version of workflow `id`; returns that version.
    pub async fn save_workflow(
        &self,
        id: &WorkflowId,
        name: &str,
        project: &ProjectId,
        source: &str,
        now_ms: i64,
    ) -> Result<u32, StoreError> {
        let latest = self.latest_version(id).await?;
        let version = latest + 1;
        // The project is checked in the transaction that writes: a check before it could
        // pass for two saves racing to put one workflow in two projects.
        let mut response = self
            .db
            .query(
                "BEGIN TRANSACTION;
             LET $existing = (SELECT VALUE project FROM workflow WHERE workflow_id = $id)[0];
             IF $existing != NONE AND $existing != $project {
                THROW string::concat('workflow `', $id, '` belongs to project `', $existing,
                    '`; a new version cannot move it to `', $project,
                    '` (give the workflow another id)');
             };
             CREATE workflow_version CONTENT {
                workflow_id: $id, version: $version, name: $name, source: $source, created_at_ms: $now };
             IF array::len(SELECT * FROM workflow WHERE workflow_id = $id) = 0 {
                CREATE workflow CONTENT { workflow_id: $id, name: $name, latest_version: $version,
                    updated_at_ms: $now, deleted: false, project: $project };
             } ELSE {
                UPDATE workflow SET name = $name, latest_version = $version, updated_at_ms = $now,
                    deleted = false WHERE workflow_id = $id;
             };
             COMMIT TRANSACTION;",
            )
            .bind(json!({"id": id, "version": version, "name": name, "project": project, "source": source, "now": now_ms}))
            .await?;
        if let Some(thrown) = thrown_by(&mut response, MOVE_REFUSED)? {
            return Err(StoreError::InvalidRequest(thrown_message(&thrown)));
        }
        Ok(version)
    }

    async fn latest_version(&self, id: &WorkflowId) -> Result<u32, StoreError> {
        let rows: Vec<Value> = self
            .rows(
                "SELECT VALUE version FROM workflow_version WHERE workflow_id = $id ORDER BY version DESC LIMIT 1",
                json!({"id": id}),
            )
            .await?;
        Ok(rows.first().and_then(Value::as_u64).unwrap_or(0) as u32)
    }

    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        self.rows(
            "SELECT workflow_id, name, latest_version, updated_at_ms, project, triggers_paused, triggers_changed_at_ms FROM workflow
             WHERE deleted = false ORDER BY workflow_id",
            json!({}),
        )
        .await
    }

    pub async fn workflow_versions(
        &self,
        id: &WorkflowId,
    ) -> Result<Vec<WorkflowVersion>, StoreError> {
        let versions: Vec<WorkflowVersion> = self
            .rows(
                "SELECT workflow_id, version, name, source, created_at_ms FROM workflow_version
                 WHERE workflow_id = $id ORDER BY version",
                json!({"id": id}),
            )
            .await?;
        if versions.is_empty() || !self.workflow_exists(id).await? {
            return Err(StoreError::WorkflowNotFound(id.clone()));
        }
        Ok(versions)
    }

    /// The workflow's record, deleted or not; `None` when it was never saved.
    pub async fn workflow(&self, id: &WorkflowId) -> Result<Option<WorkflowRecord>, StoreError> {
        let rows: Vec<WorkflowRecord> = self
            .rows(
                "SELECT workflow_id, name, latest_version, updated_at_ms, project, triggers_paused, triggers_changed_at_ms FROM workflow
                 WHERE workflow_id = $id",
                json!({"id": id}),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn workflow_exists(&self, id: &WorkflowId) -> Result<bool, StoreError> {
        let rows: Vec<Value> = self
            .rows(
                "SELECT VALUE workflow_id FROM workflow WHERE workflow_id = $id AND deleted = false",
                json!({"id": id}),
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// The given version, or the latest when `version` is `None`. Versions of a deleted
    /// workflow stay readable by number, so old runs can still be shown.
    pub async fn workflow_version(
        &self,
        id: &WorkflowId,
        version: Option<u32>,
    ) -> Result<WorkflowVersion, StoreError> {
        let version = match version {
            Some(version) => version,
            None if self.workflow_exists(id).await? => self.latest_version(id).await?,
            None => return Err(StoreError::WorkflowNotFound(id.clone())),
        };
        let rows: Vec<WorkflowVersion> = self
            .rows(
                "SELECT workflow_id, version, name, source, created_at_ms FROM workflow_version
                 WHERE workflow_id = $id AND version = $version",
                json!({"id": id, "version": version}),
            )
            .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| StoreError::WorkflowVersionNotFound {
                id: id.clone(),
                version,
            })
    }

    /// The version a new run starts from (the latest when `None`). A deleted workflow
    /// starts no run, by any version number; its versions stay readable
    /// (`workflow_version`) for the runs already made from them.
    pub async fn version_to_start(
        &self,
        id: &WorkflowId,
        version: Option<u32>,
    ) -> Result<WorkflowVersion, StoreError> {
        if !self.workflow_exists(id).await? {
            return Err(StoreError::WorkflowNotFound(id.clone()));
        }
        self.workflow_version(id, version).await
    }

    /// Hides the workflow from listings and new runs; its versions and runs are kept.
    pub async fn delete_workflow(&self, id: &WorkflowId) -> Result<(), StoreError> {
        if !self.workflow_exists(id).await? {
            return Err(StoreError::WorkflowNotFound(id.clone()));
        }
        self.execute(
            "UPDATE workflow SET deleted = true WHERE workflow_id = $id",
            json!({"id": id}),
        )
        .await
    }

    // ---- runs ------------------------------------------------------------------

    /// Creates the run's record and the first event of its log together.
    pub async fn create_run(
        &self,
        record: &RunRecord,
        first: &StoredEvent,
    ) -> Result<(), StoreError> {
        self.traced(
            "create run",
            "BEGIN TRANSACTION;
             CREATE run CONTENT $record;
             INSERT INTO run_log $chunk RETURN NONE;
             COMMIT TRANSACTION;",
            json!({"record": record, "chunk": records::chunk_row(std::slice::from_ref(first))?}),
        )
        .await
    }

    /// Pauses or resumes the workflow's triggers.
    pub async fn set_triggers_paused(
        &self,
        id: &WorkflowId,
        paused: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if !self.workflow_exists(id).await? {
            return Err(StoreError::WorkflowNotFound(id.clone()));
        }
        self.execute(
            "UPDATE workflow SET triggers_paused = $paused, triggers_changed_at_ms = $now
             WHERE workflow_id = $id",
            json!({ "id": id, "paused": paused, "now": now_ms }),
        )
        .await
    }

    /// The latest schedule tick that started a run of `workflow`, if any did.
    pub async fn last_tick(&self, workflow: &WorkflowId) -> Result<Option<i64>, StoreError> {
        let ticks: Vec<i64> = self
            .rows(
                "SELECT VALUE tick_ms FROM run WHERE workflow_id = $workflow AND tick_ms != NONE
                 ORDER BY tick_ms DESC LIMIT 1",
                json!({ "workflow": workflow }),
            )
            .await?;
        Ok(ticks.into_iter().next())
    }

    /// The whole log of a run, read as one range of chunk keys (no index needed).
    pub async fn run_events(&self, run_id: &RunId) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<Value> = self
            .rows(
                "SELECT first_seq, events FROM run_log:[$run, 0]..=[$run, $end]",
                json!({"run": run_id, "end": i64::MAX}),
            )
            .await?;
        records::events_from_chunks(run_id, rows)
    }

    pub async fn run(&self, run_id: &RunId) -> Result<RunRecord, StoreError> {
        let rows: Vec<RunRecord> = self
            .rows(
                &format!(
                    "SELECT {} FROM run WHERE run_id = $run",
                    records::RUN_FIELDS
                ),
                json!({"run": run_id}),
            )
            .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| StoreError::RunNotFound(run_id.clone()))
    }

    pub async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let mut conditions = vec!["true"];
        if filter.status.is_some() {
            conditions.push("status = $status");
        }
        if filter.workflow_id.is_some() {
            conditions.push("workflow_id = $workflow");
        }
        if filter.projects.is_some() {
            conditions.push("project IN $projects");
        }
        let limit = if filter.limit.is_some() {
            " LIMIT $limit"
        } else {
            ""
        };
        let query = format!(
            "SELECT {} FROM run WHERE {} ORDER BY created_at_ms DESC{limit}",
            records::RUN_FIELDS,
            conditions.join(" AND ")
        );
        self.rows(
            &query,
            json!({"status": filter.status.map(RunStatus::as_str), "workflow": filter.workflow_id,
                   "projects": filter.projects, "limit": filter.limit}),
        )
        .await
    }
}

/// What SurrealDB says of a statement it skipped because its transaction failed.
const NOT_RUN: &str = "not executed due to a failed transaction";

/// What the save's `THROW` says when a new version would move a workflow.
const MOVE_REFUSED: &str = "a new version cannot move it";

/// How a transaction ended: `Ok(None)` when it committed, `Ok(Some(text))` when one of
/// its statements threw an error whose text contains `marker`, else the first error
/// that says why. (A failed transaction fails every statement: the others say only
/// that they were not run, and come after the cause.)
fn thrown_by(
    response: &mut surrealdb::IndexedResults,
    marker: &str,
) -> Result<Option<String>, StoreError> {
    let mut errors: Vec<(usize, surrealdb::Error)> = response.take_errors().into_iter().collect();
    if let Some((_, thrown)) = errors
        .iter()
        .find(|(_, error)| error.to_string().contains(marker))
    {
        return Ok(Some(thrown.to_string()));
    }
    errors.sort_by_key(|(statement, error)| (error.to_string().contains(NOT_RUN), *statement));
    match errors.into_iter().next() {
        Some((_, first)) => Err(first.into()),
        None => Ok(None),
    }
}

/// The text a query's `THROW` carried, without the database's framing around it.
fn thrown_message(error: &str) -> String {
    let start = error.find("workflow `").unwrap_or(0);
    error[start..].trim().to_owned()
}

#[cfg(test)]
mod tests;
