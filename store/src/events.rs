//! The events a run's log is made of. A run's state is the fold of its events
//! (`RunState::apply`); the run actor appends an event *before* acting on it.
//!
//! Variant and field names are stored: renaming one breaks existing logs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        workflow_id: String,
        workflow_version: u32,
        #[schema(value_type = Object)]
        variables: BTreeMap<String, Value>,
        started_by: String,
    },
    TaskSkipped {
        task: String,
    },
    /// The task ends failed without (further) attempts: a condition said `fail`, or its
    /// inputs could not be rendered.
    TaskFailed {
        task: String,
        reason: String,
    },
    TaskCancelled {
        task: String,
        reason: String,
    },
    ApprovalRequested {
        task: String,
        #[schema(value_type = Object)]
        inputs: Value,
        /// SHA-256 of the canonical JSON of `inputs`: the decision is bound to exactly
        /// these inputs.
        inputs_digest: String,
        expires_at_ms: i64,
    },
    ApprovalDecided {
        task: String,
        approved: bool,
        approver: String,
        comment: Option<String>,
    },
    ApprovalExpired {
        task: String,
    },
    AttemptStarted {
        task: String,
        attempt: u32,
        idempotency_key: String,
        #[schema(value_type = Object)]
        inputs: Value,
    },
    AttemptSucceeded {
        task: String,
        attempt: u32,
        #[schema(value_type = Object)]
        outputs: Value,
        cost_usd: f64,
    },
    /// `retry_at_ms` is set when another attempt follows; without it the task failed.
    AttemptFailed {
        task: String,
        attempt: u32,
        error: String,
        retry_at_ms: Option<i64>,
    },
    RunCancelRequested {
        by: String,
    },
    RunFinished {
        status: RunStatus,
        /// Why a run ended `failed` without a failed task (its actor kept crashing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl RunEvent {
    /// The stored `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::TaskSkipped { .. } => "task_skipped",
            RunEvent::TaskFailed { .. } => "task_failed",
            RunEvent::TaskCancelled { .. } => "task_cancelled",
            RunEvent::ApprovalRequested { .. } => "approval_requested",
            RunEvent::ApprovalDecided { .. } => "approval_decided",
            RunEvent::ApprovalExpired { .. } => "approval_expired",
            RunEvent::AttemptStarted { .. } => "attempt_started",
            RunEvent::AttemptSucceeded { .. } => "attempt_succeeded",
            RunEvent::AttemptFailed { .. } => "attempt_failed",
            RunEvent::RunCancelRequested { .. } => "run_cancel_requested",
            RunEvent::RunFinished { .. } => "run_finished",
        }
    }
}

/// An event as stored: its place in the run's log and when it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub run_id: String,
    pub seq: u64,
    pub at_ms: i64,
    pub event: RunEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    WaitingApproval,
    /// Approved; the attempt has not started yet.
    Approved,
    Running,
    /// Failed an attempt; the next one starts at `retry_at_ms`.
    Retrying,
    Completed,
    Skipped,
    Failed,
    Cancelled,
    Rejected,
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed
                | TaskStatus::Skipped
                | TaskStatus::Failed
                | TaskStatus::Cancelled
                | TaskStatus::Rejected
        )
    }

    /// Whether dependents may run after a task that ended this way.
    pub fn lets_dependents_run(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Skipped)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::WaitingApproval => "waiting_approval",
            TaskStatus::Approved => "approved",
            TaskStatus::Running => "running",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Completed => "completed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Rejected => "rejected",
        }
    }
}
