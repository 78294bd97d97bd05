//! A run's log written by hand, folded as it grows: how the state's tests build the
//! runs they look at.

use std::sync::Arc;

use serde_json::{Value, json};
use troupe_store::events::{RunEvent, StoredEvent, TaskStatus};

use super::RunState;

/// The workflow in `source`, whose tasks' agent is `work`.
pub(super) fn workflow(source: &str) -> troupe_workflow::Workflow {
    troupe_workflow::parse_workflow(source, "test.yaml", &["work"]).expect("the workflow parses")
}

pub(super) struct Log {
    pub(super) state: RunState,
    pub(super) events: Vec<StoredEvent>,
}

impl Log {
    /// A run of the workflow in `source` (its tasks' agent is `work`), just started.
    pub(super) fn new(source: &str) -> Self {
        let workflow = workflow(source);
        let workflow_id = workflow.id.as_str().into();
        let mut log = Log {
            state: RunState::new(&"r".into(), Arc::new(workflow)),
            events: Vec::new(),
        };
        log.push(RunEvent::RunStarted {
            workflow_id,
            workflow_version: 1,
            variables: Default::default(),
            started_by: "ada".into(),
            started_by_id: None,
            seed: None,
        });
        log
    }

    pub(super) fn push(&mut self, event: RunEvent) {
        let stored = StoredEvent {
            run_id: "r".into(),
            seq: self.state.next_seq,
            at_ms: self.state.next_seq as i64,
            event,
        };
        self.state.apply(&stored);
        self.events.push(stored);
    }

    /// Attempt `attempt` of `task` starts.
    pub(super) fn start(&mut self, task: &str, attempt: u32) {
        self.push(RunEvent::AttemptStarted {
            idempotency_key: format!("r:{task}:{attempt}"),
            task: task.into(),
            attempt,
            inputs: json!({}),
            node: None,
        });
    }

    /// Attempt `attempt` of `task` starts and ends with `outcome` (not retried).
    pub(super) fn attempt(&mut self, task: &str, attempt: u32, outcome: Result<Value, &str>) {
        self.start(task, attempt);
        self.push(match outcome {
            Ok(outputs) => RunEvent::AttemptSucceeded {
                task: task.into(),
                attempt,
                outputs,
                cost_usd: 0.0,
                node: None,
            },
            Err(error) => RunEvent::AttemptFailed {
                task: task.into(),
                attempt,
                error: error.into(),
                retry_at_ms: None,
                node: None,
            },
        });
    }

    pub(super) fn status(&self, task: &str) -> TaskStatus {
        self.state.tasks()[task].status
    }
}
