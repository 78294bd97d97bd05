//! A run's state as the fold of its events, and the pure decision of what to do next.
//!
//! Nothing here does I/O: the run actor appends the events that [`RunState::plan`]
//! proposes, applies them, then performs their side effects. Keeping the rules pure lets
//! a property test drive thousands of random runs through them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use troupe_workflow::{ConditionAction, Scope, TaskView, Workflow};

use crate::engine::events::{RunEvent, RunStatus, StoredEvent, TaskStatus};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskState {
    pub id: String,
    pub status: TaskStatus,
    /// Attempts started so far (a resumed interrupted attempt is not counted twice).
    pub attempts: u32,
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub retry_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub cost_usd: f64,
    pub approval: Option<ApprovalState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ApprovalState {
    #[schema(value_type = Object)]
    pub inputs: Value,
    pub inputs_digest: String,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub approved: bool,
    pub approver: String,
    pub comment: Option<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct RunState {
    pub run_id: String,
    pub workflow: Arc<Workflow>,
    pub variables: BTreeMap<String, Value>,
    pub started_by: String,
    pub started_at_ms: i64,
    pub tasks: BTreeMap<String, TaskState>,
    pub cancel_requested: bool,
    pub finished: Option<RunStatus>,
    pub finished_at_ms: Option<i64>,
    pub failure_reason: Option<String>,
    /// The sequence number the next event gets.
    pub next_seq: u64,
}

/// What the run should do next; each becomes one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Skip {
        task: String,
    },
    Fail {
        task: String,
        reason: String,
    },
    Cancel {
        task: String,
        reason: String,
    },
    RequestApproval {
        task: String,
        inputs: Value,
    },
    StartAttempt {
        task: String,
        attempt: u32,
        inputs: Value,
    },
    Finish {
        status: RunStatus,
    },
}

impl RunState {
    pub fn new(run_id: &str, workflow: Arc<Workflow>) -> Self {
        let tasks = workflow
            .tasks
            .iter()
            .map(|task| (task.id.clone(), TaskState::pending(&task.id)))
            .collect();
        Self {
            run_id: run_id.into(),
            workflow,
            variables: BTreeMap::new(),
            started_by: String::new(),
            started_at_ms: 0,
            tasks,
            cancel_requested: false,
            finished: None,
            finished_at_ms: None,
            failure_reason: None,
            next_seq: 0,
        }
    }

    pub fn status(&self) -> RunStatus {
        self.finished.unwrap_or(RunStatus::Running)
    }

    /// Folds one event in. Events that no longer fit (a result for an attempt that is
    /// not running) are ignored: after a crash the log may hold them and they must not
    /// change an outcome that was already decided.
    pub fn apply(&mut self, stored: &StoredEvent) {
        self.next_seq = self.next_seq.max(stored.seq + 1);
        let at = stored.at_ms;
        match &stored.event {
            RunEvent::RunStarted {
                variables,
                started_by,
                ..
            } => {
                self.variables = variables.clone();
                self.started_by = started_by.clone();
                self.started_at_ms = at;
            }
            RunEvent::TaskSkipped { task } => self.finish_task(task, TaskStatus::Skipped, None, at),
            RunEvent::TaskFailed { task, reason } => {
                self.finish_task(task, TaskStatus::Failed, Some(reason.clone()), at)
            }
            RunEvent::TaskCancelled { task, reason } => {
                self.finish_task(task, TaskStatus::Cancelled, Some(reason.clone()), at)
            }
            RunEvent::ApprovalRequested {
                task,
                inputs,
                inputs_digest,
                expires_at_ms,
            } => {
                if let Some(state) = self.tasks.get_mut(task) {
                    state.status = TaskStatus::WaitingApproval;
                    state.inputs = Some(inputs.clone());
                    state.approval = Some(ApprovalState {
                        inputs: inputs.clone(),
                        inputs_digest: inputs_digest.clone(),
                        requested_at_ms: at,
                        expires_at_ms: *expires_at_ms,
                        decision: None,
                    });
                }
            }
            RunEvent::ApprovalDecided {
                task,
                approved,
                approver,
                comment,
            } => self.decide(task, *approved, approver, comment.clone(), at),
            RunEvent::ApprovalExpired { task } => self.finish_task(
                task,
                TaskStatus::Rejected,
                Some("approval expired".into()),
                at,
            ),
            RunEvent::AttemptStarted {
                task,
                attempt,
                inputs,
                ..
            } => {
                if let Some(state) = self.tasks.get_mut(task) {
                    state.status = TaskStatus::Running;
                    state.attempts = state.attempts.max(*attempt);
                    state.inputs = Some(inputs.clone());
                    state.retry_at_ms = None;
                    state.started_at_ms.get_or_insert(at);
                }
            }
            RunEvent::AttemptSucceeded {
                task,
                attempt,
                outputs,
                cost_usd,
            } => {
                if let Some(state) = self.running_attempt(task, *attempt) {
                    state.outputs = Some(outputs.clone());
                    state.cost_usd += cost_usd;
                    state.error = None;
                    self.finish_task(task, TaskStatus::Completed, None, at);
                }
            }
            RunEvent::AttemptFailed {
                task,
                attempt,
                error,
                retry_at_ms,
            } => {
                if let Some(state) = self.running_attempt(task, *attempt) {
                    state.error = Some(error.clone());
                    match retry_at_ms {
                        Some(retry_at) => {
                            state.status = TaskStatus::Retrying;
                            state.retry_at_ms = Some(*retry_at);
                        }
                        None => self.finish_task(task, TaskStatus::Failed, Some(error.clone()), at),
                    }
                }
            }
            RunEvent::RunCancelRequested { .. } => self.cancel_requested = true,
            RunEvent::RunFinished { status, reason } => {
                self.finished = Some(*status);
                self.failure_reason = reason.clone();
                self.finished_at_ms = Some(at);
            }
        }
    }

    fn running_attempt(&mut self, task: &str, attempt: u32) -> Option<&mut TaskState> {
        self.tasks
            .get_mut(task)
            .filter(|state| state.status == TaskStatus::Running && state.attempts == attempt)
    }

    fn finish_task(&mut self, task: &str, status: TaskStatus, error: Option<String>, at: i64) {
        if let Some(state) = self.tasks.get_mut(task) {
            if state.status.is_terminal() {
                return;
            }
            state.status = status;
            if error.is_some() {
                state.error = error;
            }
            state.finished_at_ms = Some(at);
        }
    }

    fn decide(
        &mut self,
        task: &str,
        approved: bool,
        approver: &str,
        comment: Option<String>,
        at: i64,
    ) {
        let Some(state) = self.tasks.get_mut(task) else {
            return;
        };
        if state.status != TaskStatus::WaitingApproval {
            return;
        }
        if let Some(approval) = state.approval.as_mut() {
            approval.decision = Some(Decision {
                approved,
                approver: approver.into(),
                comment,
                at_ms: at,
            });
        }
        if approved {
            state.status = TaskStatus::Approved;
        } else {
            self.finish_task(
                task,
                TaskStatus::Rejected,
                Some(format!("rejected by {approver}")),
                at,
            );
        }
    }

    /// The steps to take now. `free_slots` bounds how many attempts may start;
    /// `now_ms` decides which retries are due.
    pub fn plan(&self, now_ms: i64, free_slots: usize) -> Vec<Step> {
        if self.finished.is_some() {
            return Vec::new();
        }
        if self.cancel_requested {
            return self.plan_cancellation();
        }
        let mut steps = Vec::new();
        let mut slots = free_slots;
        for id in self.workflow.topological_order() {
            let Some(state) = self.tasks.get(id) else {
                continue;
            };
            match state.status {
                TaskStatus::Pending => {
                    if let Some(step) = self.plan_pending(id, &mut slots) {
                        steps.push(step);
                    }
                }
                TaskStatus::Approved if slots > 0 => {
                    slots -= 1;
                    steps.push(self.attempt_step(id, 1));
                }
                TaskStatus::Retrying
                    if slots > 0 && state.retry_at_ms.is_some_and(|at| at <= now_ms) =>
                {
                    slots -= 1;
                    steps.push(self.attempt_step(id, state.attempts + 1));
                }
                _ => {}
            }
        }
        if steps.is_empty() && self.tasks.values().all(|task| task.status.is_terminal()) {
            let all_good = self
                .tasks
                .values()
                .all(|task| task.status.lets_dependents_run());
            let status = if all_good {
                RunStatus::Completed
            } else {
                RunStatus::Failed
            };
            steps.push(Step::Finish { status });
        }
        steps
    }

    fn plan_cancellation(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .tasks
            .values()
            .filter(|task| !task.status.is_terminal() && task.status != TaskStatus::Running)
            .map(|task| Step::Cancel {
                task: task.id.clone(),
                reason: "run cancelled".into(),
            })
            .collect();
        let running = self
            .tasks
            .values()
            .any(|task| task.status == TaskStatus::Running);
        if steps.is_empty() && !running {
            steps.push(Step::Finish {
                status: RunStatus::Cancelled,
            });
        }
        steps
    }

    fn plan_pending(&self, id: &str, slots: &mut usize) -> Option<Step> {
        let task = self.workflow.task(id)?;
        let mut waiting = false;
        for dependency in &task.depends_on {
            let status = self.tasks.get(dependency).map(|state| state.status)?;
            if status.is_terminal() && !status.lets_dependents_run() {
                return Some(Step::Cancel {
                    task: id.into(),
                    reason: format!("upstream task `{dependency}` ended {}", status.as_str()),
                });
            }
            waiting |= !status.is_terminal();
        }
        if waiting {
            return None;
        }
        let views = self.task_views();
        let scope = self.scope(&views);
        let action = match troupe_workflow::decide(&task.conditions, &scope) {
            Ok(action) => action,
            Err(error) => {
                return Some(Step::Fail {
                    task: id.into(),
                    reason: format!("condition: {error}"),
                });
            }
        };
        match action {
            ConditionAction::Skip => Some(Step::Skip { task: id.into() }),
            ConditionAction::Fail => Some(Step::Fail {
                task: id.into(),
                reason: "a condition decided `fail`".into(),
            }),
            ConditionAction::Execute => {
                let inputs = match self.render_inputs(id, &scope) {
                    Ok(inputs) => inputs,
                    Err(reason) => {
                        return Some(Step::Fail {
                            task: id.into(),
                            reason,
                        });
                    }
                };
                if task.requires_approval {
                    return Some(Step::RequestApproval {
                        task: id.into(),
                        inputs,
                    });
                }
                if *slots == 0 {
                    return None;
                }
                *slots -= 1;
                Some(Step::StartAttempt {
                    task: id.into(),
                    attempt: 1,
                    inputs,
                })
            }
        }
    }

    /// An attempt reuses the inputs already rendered (and, for a gated task, approved):
    /// upstream outputs cannot change once the task became ready.
    fn attempt_step(&self, id: &str, attempt: u32) -> Step {
        let inputs = self
            .tasks
            .get(id)
            .and_then(|state| state.inputs.clone())
            .unwrap_or_else(|| Value::Object(Default::default()));
        Step::StartAttempt {
            task: id.into(),
            attempt,
            inputs,
        }
    }

    fn render_inputs(&self, id: &str, scope: &Scope<'_>) -> Result<Value, String> {
        let task = self
            .workflow
            .task(id)
            .ok_or_else(|| format!("task `{id}` is not in the workflow"))?;
        let inputs = Value::Object(task.inputs.clone().into_iter().collect());
        troupe_workflow::render(&inputs, scope).map_err(|error| format!("inputs: {error}"))
    }

    pub fn task_views(&self) -> BTreeMap<String, TaskView> {
        self.tasks
            .iter()
            .map(|(id, state)| {
                let view = TaskView {
                    status: state.status.as_str().into(),
                    outputs: state.outputs.clone().unwrap_or(Value::Null),
                };
                (id.clone(), view)
            })
            .collect()
    }

    pub fn scope<'a>(&'a self, views: &'a BTreeMap<String, TaskView>) -> Scope<'a> {
        Scope {
            variables: &self.variables,
            tasks: views,
            run_id: &self.run_id,
            workflow_name: &self.workflow.name,
        }
    }
}

impl TaskState {
    fn pending(id: &str) -> Self {
        Self {
            id: id.into(),
            status: TaskStatus::Pending,
            attempts: 0,
            inputs: None,
            outputs: None,
            error: None,
            retry_at_ms: None,
            started_at_ms: None,
            finished_at_ms: None,
            cost_usd: 0.0,
            approval: None,
        }
    }
}
