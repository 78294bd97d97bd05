//! The events a run's log is made of. A run's state is the fold of its events
//! (`RunState::apply`); the run actor appends an event *before* acting on it.
//!
//! Variant and field names are stored: renaming one breaks existing logs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{TaskId, UserId, WorkflowId};

/// Who did something, as far as this node can tell: the name shown (an email, or the
/// name a caller gave on a node without accounts) and the account's id when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    pub name: String,
    pub user_id: Option<UserId>,
}

impl Person {
    /// An actor without an account: the CLI's user, or a caller on a node without them.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            user_id: None,
        }
    }

    /// Whether two actors are the same person for separation of duties: the same account
    /// when both have one. Without accounts only names can be compared, and a name is
    /// whatever the caller typed, so the check then stops mistakes, not a determined
    /// person; with accounts, two accounts of one person are still two people.
    pub fn same_as(&self, other: &Person) -> bool {
        match (&self.user_id, &other.user_id) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => self.name == other.name,
        }
    }
}

/// A reviewer's decision on an approval gate: one type from the API to the run's log
/// (the API's body says `approve`/`reject` and is turned into this at the edge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub approved: bool,
    pub approver: String,
    /// The approver's account, on a node with accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_id: Option<UserId>,
    pub comment: Option<String>,
}

impl Decision {
    pub fn approver(&self) -> Person {
        Person {
            name: self.approver.clone(),
            user_id: self.approver_id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        workflow_id: WorkflowId,
        workflow_version: u32,
        #[schema(value_type = Object)]
        variables: BTreeMap<String, Value>,
        started_by: String,
        /// The starter's account, on a node with accounts (absent in logs written before
        /// ids were kept): separation of duties compares it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_by_id: Option<UserId>,
        /// The run's sampling seed, as its start request chose it; absent when it chose
        /// none (and in logs written before runs had seeds): the run's id gives it then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
    TaskSkipped {
        task: TaskId,
    },
    /// The task ends failed without (further) attempts: a condition said `fail`, or its
    /// inputs could not be rendered.
    TaskFailed {
        task: TaskId,
        reason: String,
    },
    TaskCancelled {
        task: TaskId,
        reason: String,
    },
    ApprovalRequested {
        task: TaskId,
        #[schema(value_type = Object)]
        inputs: Value,
        /// SHA-256 of the canonical JSON of `inputs`: the decision is bound to exactly
        /// these inputs.
        inputs_digest: String,
        expires_at_ms: i64,
    },
    ApprovalDecided {
        task: TaskId,
        #[serde(flatten)]
        decision: Decision,
    },
    ApprovalExpired {
        task: TaskId,
    },
    AttemptStarted {
        task: TaskId,
        attempt: u32,
        idempotency_key: String,
        #[schema(value_type = Object)]
        inputs: Value,
        /// The node the attempt was sent to (absent in logs from before the cluster).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    AttemptSucceeded {
        task: TaskId,
        attempt: u32,
        #[schema(value_type = Object)]
        outputs: Value,
        cost_usd: f64,
        /// The node the attempt ran on (absent in logs from before the cluster).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// `retry_at_ms` is set when another attempt follows; without it the task failed.
    AttemptFailed {
        task: TaskId,
        attempt: u32,
        error: String,
        retry_at_ms: Option<i64>,
        /// The node the attempt ran on (absent in logs from before the cluster).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    RunCancelRequested {
        by: String,
    },
    /// A fan-out's list, rendered once when the task became ready: one child per item,
    /// in this order. A resumed run reads its children from here, never renders again.
    FanOutExpanded {
        task: TaskId,
        #[schema(value_type = Vec<Object>)]
        items: Vec<Value>,
    },
    RunFinished {
        status: RunStatus,
        /// Why a run ended `failed` without a failed task (its actor kept crashing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A failed or cancelled run goes on as a new attempt: `reset` are the tasks that
    /// run again (with their fan-out children); every other task keeps what it did.
    RunRetried {
        by: String,
        reset: Vec<TaskId>,
    },
    /// The run moved to another version of its workflow: the log from its start is
    /// read against `to_version` from here on (only tasks that had not started could
    /// differ between the two).
    RunMigrated {
        by: String,
        from_version: u32,
        to_version: u32,
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
            RunEvent::FanOutExpanded { .. } => "fan_out_expanded",
            RunEvent::RunFinished { .. } => "run_finished",
            RunEvent::RunRetried { .. } => "run_retried",
            RunEvent::RunMigrated { .. } => "run_migrated",
        }
    }
}

/// An event as stored: its place in the run's log and when it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub run_id: crate::RunId,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs written before accounts' ids were kept still read, and a decision is stored
    /// flat, as it always was.
    #[test]
    fn the_stored_shape_of_starts_and_decisions_is_kept() {
        let old_start = serde_json::json!({
            "kind": "run_started", "workflow_id": "wf", "workflow_version": 1,
            "variables": {}, "started_by": "ada"
        });
        let RunEvent::RunStarted {
            started_by_id,
            seed,
            ..
        } = serde_json::from_value(old_start).unwrap()
        else {
            panic!("a run_started event");
        };
        assert_eq!((started_by_id, seed), (None, None));
        let old_decision = serde_json::json!({
            "kind": "approval_decided", "task": "sign_off", "approved": true,
            "approver": "bob", "comment": null
        });
        let event: RunEvent = serde_json::from_value(old_decision.clone()).unwrap();
        assert_eq!(
            event,
            RunEvent::ApprovalDecided {
                task: "sign_off".into(),
                decision: Decision {
                    approved: true,
                    approver: "bob".into(),
                    approver_id: None,
                    comment: None,
                },
            }
        );
        assert_eq!(serde_json::to_value(&event).unwrap(), old_decision);
    }

    #[test]
    fn the_same_account_is_the_same_person_whatever_its_name() {
        let account = |name: &str, id: &str| Person {
            name: name.into(),
            user_id: Some(id.into()),
        };
        assert!(account("ada", "u1").same_as(&account("ada-alias", "u1")));
        assert!(!account("ada", "u1").same_as(&account("ada", "u2")));
        assert!(Person::named("ada").same_as(&account("ada", "u1")));
        assert!(!Person::named("ada").same_as(&Person::named("bob")));
    }
}
