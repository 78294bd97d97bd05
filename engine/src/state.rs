//! A run's state as the fold of its events, and the pure decision of what to do next.
//!
//! Nothing here does I/O: the run actor appends the events that [`RunState::plan`]
//! proposes, applies them, then performs their side effects. Keeping the rules pure lets
//! a property test drive thousands of random runs through them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use troupe_workflow::{ConditionAction, Scope, Task, TaskView, Workflow};

use troupe_store::events::{Decision, Person, RunEvent, RunStatus, StoredEvent, TaskStatus};
use troupe_store::{RunId, TaskId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TaskState {
    pub id: TaskId,
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
    /// The node its latest attempt was sent to, then the one that ran it.
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ApprovalState {
    #[schema(value_type = Object)]
    pub inputs: Value,
    pub inputs_digest: String,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    pub decision: Option<Decided>,
}

/// A decision and when the run's log took it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Decided {
    #[serde(flatten)]
    pub decision: Decision,
    pub at_ms: i64,
}

/// The task graph of a workflow, computed once per run: `plan` runs after every event
/// and must not rescan the whole workflow each time.
#[derive(Debug)]
struct Graph {
    /// Positions in `workflow.tasks`, dependencies first.
    by_rank: Vec<usize>,
    /// Rank of each position.
    rank: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    position: HashMap<String, usize>,
}

impl Graph {
    fn new(workflow: &Workflow) -> Self {
        let position: HashMap<String, usize> = workflow
            .tasks
            .iter()
            .enumerate()
            .map(|(index, task)| (task.id.clone(), index))
            .collect();
        let by_rank: Vec<usize> = workflow
            .topological_order()
            .into_iter()
            .filter_map(|id| position.get(id).copied())
            .collect();
        let mut rank = vec![0; workflow.tasks.len()];
        for (order, &index) in by_rank.iter().enumerate() {
            rank[index] = order;
        }
        let mut dependents = vec![Vec::new(); workflow.tasks.len()];
        for (index, task) in workflow.tasks.iter().enumerate() {
            for dependency in &task.depends_on {
                if let Some(&upstream) = position.get(dependency) {
                    dependents[upstream].push(index);
                }
            }
        }
        Self {
            by_rank,
            rank,
            dependents,
            position,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunState {
    pub run_id: RunId,
    pub workflow: Arc<Workflow>,
    graph: Arc<Graph>,
    pub variables: BTreeMap<String, Value>,
    pub started_by: String,
    /// The starter's account, on a node with accounts.
    pub started_by_id: Option<UserId>,
    pub started_at_ms: i64,
    /// Changed only through `apply`, which keeps the bookkeeping below in step.
    tasks: BTreeMap<TaskId, TaskState>,
    /// What templates see of each task (status and outputs), kept current by `apply`.
    views: BTreeMap<String, TaskView>,
    /// Ranks of the tasks `plan` must look at: pending with every dependency ended (or
    /// one ended badly), approved, or retrying.
    candidates: BTreeSet<usize>,
    /// Per position: dependencies that have not ended.
    open_dependencies: Vec<usize>,
    running: usize,
    unfinished: usize,
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
        task: TaskId,
    },
    Fail {
        task: TaskId,
        reason: String,
    },
    Cancel {
        task: TaskId,
        reason: String,
    },
    RequestApproval {
        task: TaskId,
        inputs: Value,
    },
    StartAttempt {
        task: TaskId,
        attempt: u32,
        inputs: Value,
    },
    Finish {
        status: RunStatus,
    },
}

impl RunState {
    /// Who started the run.
    pub fn starter(&self) -> Person {
        Person {
            name: self.started_by.clone(),
            user_id: self.started_by_id.clone(),
        }
    }

    /// Whose memory the run's tasks use: the workflow's project (the one its permissions
    /// are checked in) and the user who started the run; never anything a variable or a
    /// task's inputs say.
    pub fn memory_scope(&self) -> troupe_agents::MemoryScope {
        troupe_agents::MemoryScope {
            project: troupe_store::project_of(&self.workflow).into_string(),
            user: self.started_by.clone(),
            run_id: self.run_id.clone().into(),
        }
    }

    pub fn new(run_id: &RunId, workflow: Arc<Workflow>) -> Self {
        let graph = Graph::new(&workflow);
        let tasks = workflow
            .tasks
            .iter()
            .map(|task| (TaskId::from(&task.id), TaskState::pending(&task.id)))
            .collect();
        let views = workflow
            .tasks
            .iter()
            .map(|task| {
                let view = TaskView {
                    status: TaskStatus::Pending.as_str().into(),
                    outputs: Value::Null,
                };
                (task.id.clone(), view)
            })
            .collect();
        let open_dependencies: Vec<usize> = workflow
            .tasks
            .iter()
            .map(|task| task.depends_on.len())
            .collect();
        let candidates = open_dependencies
            .iter()
            .enumerate()
            .filter(|(_, open)| **open == 0)
            .map(|(index, _)| graph.rank[index])
            .collect();
        Self {
            run_id: run_id.clone(),
            unfinished: workflow.tasks.len(),
            workflow,
            graph: Arc::new(graph),
            variables: BTreeMap::new(),
            started_by: String::new(),
            started_by_id: None,
            started_at_ms: 0,
            tasks,
            views,
            candidates,
            open_dependencies,
            running: 0,
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

    pub fn tasks(&self) -> &BTreeMap<TaskId, TaskState> {
        &self.tasks
    }

    /// Attempts running now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// The definition of task `id`, in constant time.
    pub fn definition(&self, id: &str) -> Option<&Task> {
        self.graph
            .position
            .get(id)
            .map(|&position| &self.workflow.tasks[position])
    }

    pub fn scope(&self) -> Scope<'_> {
        Scope {
            variables: &self.variables,
            tasks: &self.views,
            run_id: self.run_id.as_str(),
            workflow_name: &self.workflow.name,
        }
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
                started_by_id,
                ..
            } => {
                self.variables = variables.clone();
                self.started_by = started_by.clone();
                self.started_by_id = started_by_id.clone();
                self.started_at_ms = at;
            }
            RunEvent::TaskSkipped { task } => {
                self.finish_task(task.as_str(), TaskStatus::Skipped, None, at)
            }
            RunEvent::TaskFailed { task, reason } => {
                self.finish_task(task.as_str(), TaskStatus::Failed, Some(reason.clone()), at)
            }
            RunEvent::TaskCancelled { task, reason } => self.finish_task(
                task.as_str(),
                TaskStatus::Cancelled,
                Some(reason.clone()),
                at,
            ),
            RunEvent::ApprovalRequested {
                task,
                inputs,
                inputs_digest,
                expires_at_ms,
            } => {
                if let Some(state) = self.tasks.get_mut(task) {
                    state.inputs = Some(inputs.clone());
                    state.approval = Some(ApprovalState {
                        inputs: inputs.clone(),
                        inputs_digest: inputs_digest.clone(),
                        requested_at_ms: at,
                        expires_at_ms: *expires_at_ms,
                        decision: None,
                    });
                    self.set_status(task.as_str(), TaskStatus::WaitingApproval);
                }
            }
            RunEvent::ApprovalDecided { task, decision } => {
                self.decide(task.as_str(), decision, at)
            }
            RunEvent::ApprovalExpired { task } => self.finish_task(
                task.as_str(),
                TaskStatus::Rejected,
                Some("approval expired".into()),
                at,
            ),
            RunEvent::AttemptStarted { .. }
            | RunEvent::AttemptSucceeded { .. }
            | RunEvent::AttemptFailed { .. } => self.apply_attempt(&stored.event, at),
            RunEvent::RunCancelRequested { .. } => self.cancel_requested = true,
            RunEvent::RunFinished { status, reason } => {
                self.finished = Some(*status);
                self.failure_reason = reason.clone();
                self.finished_at_ms = Some(at);
            }
        }
    }

    /// The part of `apply` for an attempt's start and outcome.
    fn apply_attempt(&mut self, event: &RunEvent, at: i64) {
        match event {
            RunEvent::AttemptStarted {
                task,
                attempt,
                inputs,
                node,
                ..
            } => {
                if let Some(state) = self.tasks.get_mut(task) {
                    state.attempts = state.attempts.max(*attempt);
                    state.node = node.clone();
                    state.inputs = Some(inputs.clone());
                    state.retry_at_ms = None;
                    state.started_at_ms.get_or_insert(at);
                    self.set_status(task.as_str(), TaskStatus::Running);
                }
            }
            RunEvent::AttemptSucceeded {
                task,
                attempt,
                outputs,
                cost_usd,
                node,
            } => {
                if let Some(state) = self.running_attempt(task.as_str(), *attempt) {
                    state.node = node.clone().or(state.node.take());
                    state.outputs = Some(outputs.clone());
                    state.cost_usd += cost_usd;
                    state.error = None;
                    if let Some(view) = self.views.get_mut(task.as_str()) {
                        view.outputs = outputs.clone();
                    }
                    self.finish_task(task.as_str(), TaskStatus::Completed, None, at);
                }
            }
            RunEvent::AttemptFailed {
                task,
                attempt,
                error,
                retry_at_ms,
                node,
            } => {
                if let Some(state) = self.running_attempt(task.as_str(), *attempt) {
                    state.node = node.clone().or(state.node.take());
                    state.error = Some(error.clone());
                    state.retry_at_ms = *retry_at_ms;
                    match retry_at_ms {
                        Some(_) => self.set_status(task.as_str(), TaskStatus::Retrying),
                        None => self.finish_task(
                            task.as_str(),
                            TaskStatus::Failed,
                            Some(error.clone()),
                            at,
                        ),
                    }
                }
            }
            // `apply` routes only the three attempt events here.
            _ => {}
        }
    }

    fn running_attempt(&mut self, task: &str, attempt: u32) -> Option<&mut TaskState> {
        self.tasks
            .get_mut(task)
            .filter(|state| state.status == TaskStatus::Running && state.attempts == attempt)
    }

    fn finish_task(&mut self, task: &str, status: TaskStatus, error: Option<String>, at: i64) {
        let Some(state) = self.tasks.get_mut(task) else {
            return;
        };
        if state.status.is_terminal() {
            return;
        }
        if error.is_some() {
            state.error = error;
        }
        state.finished_at_ms = Some(at);
        self.set_status(task, status);
    }

    /// The one place a task's status changes, so the counters, the candidate set and the
    /// template views never disagree with `tasks`.
    fn set_status(&mut self, task: &str, status: TaskStatus) {
        let Some(&position) = self.graph.position.get(task) else {
            return;
        };
        let Some(state) = self.tasks.get_mut(task) else {
            return;
        };
        let old = std::mem::replace(&mut state.status, status);
        if old == status {
            return;
        }
        if let Some(view) = self.views.get_mut(task) {
            view.status = status.as_str().into();
        }
        if old == TaskStatus::Running {
            self.running -= 1;
        }
        if status == TaskStatus::Running {
            self.running += 1;
        }
        let rank = self.graph.rank[position];
        match status {
            TaskStatus::Approved | TaskStatus::Retrying => {
                self.candidates.insert(rank);
            }
            TaskStatus::Pending if self.open_dependencies[position] == 0 => {
                self.candidates.insert(rank);
            }
            _ => {
                self.candidates.remove(&rank);
            }
        }
        if !old.is_terminal() && status.is_terminal() {
            self.unfinished -= 1;
            let graph = self.graph.clone();
            for &dependent in &graph.dependents[position] {
                self.open_dependencies[dependent] -= 1;
                let dependent_pending = self.tasks[self.workflow.tasks[dependent].id.as_str()]
                    .status
                    == TaskStatus::Pending;
                if dependent_pending
                    && (self.open_dependencies[dependent] == 0 || !status.lets_dependents_run())
                {
                    self.candidates.insert(graph.rank[dependent]);
                }
            }
        }
    }

    fn decide(&mut self, task: &str, decision: &Decision, at: i64) {
        let Some(state) = self.tasks.get_mut(task) else {
            return;
        };
        if state.status != TaskStatus::WaitingApproval {
            return;
        }
        if let Some(approval) = state.approval.as_mut() {
            approval.decision = Some(Decided {
                decision: decision.clone(),
                at_ms: at,
            });
        }
        if decision.approved {
            self.set_status(task, TaskStatus::Approved);
        } else {
            self.finish_task(
                task,
                TaskStatus::Rejected,
                Some(format!("rejected by {}", decision.approver)),
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
        for &rank in &self.candidates {
            let task = &self.workflow.tasks[self.graph.by_rank[rank]];
            let state = &self.tasks[task.id.as_str()];
            match state.status {
                TaskStatus::Pending => {
                    if let Some(step) = self.plan_pending(task, &mut slots) {
                        steps.push(step);
                    }
                }
                TaskStatus::Approved if slots > 0 => {
                    slots -= 1;
                    steps.push(self.attempt_step(&task.id, 1));
                }
                TaskStatus::Retrying
                    if slots > 0 && state.retry_at_ms.is_some_and(|at| at <= now_ms) =>
                {
                    slots -= 1;
                    steps.push(self.attempt_step(&task.id, state.attempts + 1));
                }
                _ => {}
            }
        }
        if steps.is_empty() && self.unfinished == 0 {
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
        if steps.is_empty() && self.running == 0 {
            steps.push(Step::Finish {
                status: RunStatus::Cancelled,
            });
        }
        steps
    }

    fn plan_pending(&self, task: &Task, slots: &mut usize) -> Option<Step> {
        let id = task.id.as_str();
        let mut waiting = false;
        for dependency in &task.depends_on {
            let status = self
                .tasks
                .get(dependency.as_str())
                .map(|state| state.status)?;
            if status.is_terminal() && !status.lets_dependents_run() {
                return Some(Step::Cancel {
                    task: id.into(),
                    reason: format!("upstream task `{dependency}` ended {}", status.as_str()),
                });
            }
            waiting |= !status.is_terminal();
        }
        // Conditions are evaluated just before the task would start: with no free slot
        // it is not about to start (a gated task only asks for approval, so it needs none).
        if waiting || (*slots == 0 && !task.requires_approval) {
            return None;
        }
        let scope = self.scope();
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
                let inputs = match render_inputs(task, &scope) {
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
}

/// The task's inputs rendered; templates in the kind's shell commands quoted.
fn render_inputs(task: &Task, scope: &Scope<'_>) -> Result<Value, String> {
    let inputs: serde_json::Map<String, Value> = task.inputs.clone().into_iter().collect();
    let shell_commands = troupe_agents::shell_command_inputs(&task.agent);
    troupe_workflow::render_inputs(&inputs, scope, shell_commands)
        .map_err(|error| format!("inputs: {error}"))
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
            node: None,
        }
    }
}
