//! A run's state as the fold of its events, and the pure decision of what to do next.
//!
//! Nothing here does I/O: the run actor appends the events that [`RunState::plan`]
//! proposes, applies them, then performs their side effects. Keeping the rules pure lets
//! a property test drive thousands of random runs through them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use troupe_workflow::{ConditionAction, FanOut, Item, Scope, Task, TaskView, Workflow};

use troupe_store::events::{Decision, Person, RunEvent, RunStatus, StoredEvent, TaskStatus};
use troupe_store::{RunId, TaskId, UserId};

mod migrate;
mod retry;
#[cfg(test)]
mod test_log;
pub use migrate::MigrationPlan;
pub use retry::RetryRefusal;

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
    /// For a child of a fan-out (`code[2]`), the fan-out's task (`code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<TaskId>,
    /// Attempts it had before the run was retried: its retries count from here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt_base: u32,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
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

/// A fan-out's children, from its `fan_out_expanded` event.
#[derive(Debug, Clone)]
struct Expansion {
    items: Vec<Value>,
    children: Vec<TaskId>,
    /// Children that have not ended.
    open: usize,
}

/// `engine.max_fan_out` by default.
pub const DEFAULT_MAX_FAN_OUT: usize = 500;

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
    /// The sampling seed each attempt's seed comes from (see [`crate::seed`]).
    pub seed: u64,
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
    /// Fan-outs that expanded, by position in `workflow.tasks`.
    expansions: BTreeMap<usize, Expansion>,
    /// Each fan-out child's parent position and item index.
    children: HashMap<TaskId, (usize, usize)>,
    /// The most children one fan-out may expand to here (`engine.max_fan_out`).
    pub max_fan_out: usize,
    /// Attempts each task reset by a retry had, children of a fan-out that has not
    /// expanded again included: their attempts number on from there.
    attempt_bases: HashMap<TaskId, u32>,
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
    /// A fan-out's list, rendered: its children, one per item.
    Expand {
        task: TaskId,
        items: Vec<Value>,
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

    /// Whom `task`'s model calls are billed to, and the budgets they must fit: the
    /// run's, and the task's (a fan-out child's parent's).
    pub fn billing(&self, task: &TaskId) -> troupe_agents::Billing {
        troupe_agents::Billing {
            run_id: self.run_id.to_string(),
            task: task.to_string(),
            run_budget_usd: self.workflow.budget_usd,
            task_budget_usd: self
                .definition(task.as_str())
                .and_then(|definition| definition.budget_usd),
            local_only: self.workflow.on_budget == troupe_workflow::OnBudget::LocalOnly,
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
            seed: crate::seed::of_run(run_id),
            tasks,
            views,
            candidates,
            open_dependencies,
            running: 0,
            expansions: BTreeMap::new(),
            children: HashMap::new(),
            max_fan_out: DEFAULT_MAX_FAN_OUT,
            attempt_bases: HashMap::new(),
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

    /// The workflow's tasks in its order, each fan-out followed by its children in item
    /// order.
    pub fn tasks_in_order(&self) -> Vec<&TaskState> {
        let mut ordered = Vec::with_capacity(self.tasks.len());
        for (position, task) in self.workflow.tasks.iter().enumerate() {
            ordered.extend(self.tasks.get(task.id.as_str()));
            if let Some(expansion) = self.expansions.get(&position) {
                ordered.extend(
                    expansion
                        .children
                        .iter()
                        .filter_map(|id| self.tasks.get(id)),
                );
            }
        }
        ordered
    }

    /// What the run's attempts cost so far: a fan-out's figure is its children's sum,
    /// so it is not counted again.
    pub fn cost_usd(&self) -> f64 {
        self.tasks
            .values()
            .filter(|task| !self.is_fan_out(task.id.as_str()))
            .map(|task| task.cost_usd)
            .sum()
    }

    /// Attempts running now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// The definition of task `id`, in constant time; a fan-out's child has its
    /// parent's.
    pub fn definition(&self, id: &str) -> Option<&Task> {
        let position = self
            .graph
            .position
            .get(id)
            .or_else(|| self.children.get(id).map(|(parent, _)| parent))?;
        Some(&self.workflow.tasks[*position])
    }

    pub fn scope(&self) -> Scope<'_> {
        Scope {
            variables: &self.variables,
            tasks: &self.views,
            run_id: self.run_id.as_str(),
            workflow_name: &self.workflow.name,
            item: None,
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
                seed,
                ..
            } => {
                self.variables = variables.clone();
                self.started_by = started_by.clone();
                self.started_by_id = started_by_id.clone();
                self.started_at_ms = at;
                self.seed = seed.unwrap_or_else(|| crate::seed::of_run(&self.run_id));
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
            RunEvent::FanOutExpanded { task, items } => self.expand(task, items, at),
            RunEvent::RunFinished { status, reason } => {
                self.finished = Some(*status);
                self.failure_reason = reason.clone();
                self.finished_at_ms = Some(at);
            }
            RunEvent::RunRetried { reset, .. } => self.retry(reset),
            // The log is folded against the version the last one names (`load_run`).
            RunEvent::RunMigrated { .. } => {}
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
                if self.is_fan_out(task.as_str()) {
                    return;
                }
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
        if self.is_fan_out(task) {
            return None;
        }
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
        // A fan-out runs no attempt of its own: only its children count as running.
        let attempts = !self.is_fan_out(task);
        if attempts && old == TaskStatus::Running {
            self.running -= 1;
        }
        if attempts && status == TaskStatus::Running {
            self.running += 1;
        }
        match self.graph.position.get(task).copied() {
            Some(position) => self.task_status_changed(position, old, status),
            None => self.child_status_changed(task, old, status),
        }
    }

    /// Whether `task` is a fan-out (a task of the workflow with `for_each`), which runs
    /// no attempt of its own: an attempt event naming one is not its.
    fn is_fan_out(&self, task: &str) -> bool {
        self.graph
            .position
            .get(task)
            .is_some_and(|&at| self.workflow.tasks[at].fan_out.is_some())
    }

    /// `set_status`'s bookkeeping for a task of the workflow: candidates, dependents.
    fn task_status_changed(&mut self, position: usize, old: TaskStatus, status: TaskStatus) {
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

    /// `set_status`'s bookkeeping for a fan-out's child: the fan-out ends with its last.
    fn child_status_changed(&mut self, child: &str, old: TaskStatus, status: TaskStatus) {
        if old.is_terminal() || !status.is_terminal() {
            return;
        }
        self.unfinished -= 1;
        let Some(&(position, _)) = self.children.get(child) else {
            return;
        };
        let Some(expansion) = self.expansions.get_mut(&position) else {
            return;
        };
        expansion.open -= 1;
        if expansion.open == 0 {
            self.fan_out_ended(position);
        }
    }

    /// Folds in a fan-out's expansion: one pending child per item. A second expansion
    /// of the same task (a log written twice) changes nothing.
    fn expand(&mut self, task: &TaskId, items: &[Value], at: i64) {
        let Some(&position) = self.graph.position.get(task.as_str()) else {
            return;
        };
        let pending = self
            .tasks
            .get(task)
            .is_some_and(|state| state.status == TaskStatus::Pending);
        if !pending || self.expansions.contains_key(&position) {
            return;
        }
        let children: Vec<TaskId> = (0..items.len())
            .map(|index| TaskId::from(FanOut::child_id(task.as_str(), index)))
            .collect();
        for (index, child) in children.iter().enumerate() {
            let mut state = TaskState::pending(child.as_str());
            state.parent = Some(task.clone());
            if let Some(&base) = self.attempt_bases.get(child) {
                (state.attempts, state.attempt_base) = (base, base);
            }
            self.tasks.insert(child.clone(), state);
            self.children.insert(child.clone(), (position, index));
        }
        self.unfinished += children.len();
        let expansion = Expansion {
            items: items.to_vec(),
            open: children.len(),
            children,
        };
        self.expansions.insert(position, expansion);
        if let Some(state) = self.tasks.get_mut(task) {
            state.started_at_ms = Some(at);
        }
        self.set_status(task.as_str(), TaskStatus::Running);
        if items.is_empty() {
            self.fan_out_ended(position);
        }
    }

    /// A fan-out whose children all ended: its outputs are theirs, in item order (`null`
    /// for one that did not complete); it completed when every child completed or was
    /// skipped, failed when any failed, and was cancelled otherwise.
    fn fan_out_ended(&mut self, position: usize) {
        let Some(expansion) = self.expansions.get(&position) else {
            return;
        };
        let parent = self.workflow.tasks[position].id.clone();
        let children: Vec<&TaskState> = expansion
            .children
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .collect();
        let outputs: Vec<Value> = children
            .iter()
            .map(|child| match child.status {
                TaskStatus::Completed => child.outputs.clone().unwrap_or(Value::Null),
                _ => Value::Null,
            })
            .collect();
        let cost_usd: f64 = children.iter().map(|child| child.cost_usd).sum();
        let at = children
            .iter()
            .filter_map(|child| child.finished_at_ms)
            .max();
        let (status, error) = fan_out_outcome(&children);
        let outputs = Value::Array(outputs);
        if let Some(view) = self.views.get_mut(parent.as_str()) {
            view.outputs = outputs.clone();
        }
        let Some(state) = self.tasks.get_mut(parent.as_str()) else {
            return;
        };
        state.outputs = Some(outputs);
        state.cost_usd = cost_usd;
        let at = at.or(state.started_at_ms).unwrap_or_default();
        self.finish_task(&parent, status, error, at);
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
        self.plan_children(now_ms, &mut slots, &mut steps);
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
        if waiting {
            return None;
        }
        if let Some(fan_out) = &task.fan_out {
            return Some(self.expand_step(task, fan_out));
        }
        // Conditions are evaluated just before the task would start: with no free slot
        // it is not about to start (a gated task only asks for approval, so it needs none).
        if *slots == 0 && !task.requires_approval {
            return None;
        }
        let first = self.tasks.get(id).map_or(1, |state| state.attempts + 1);
        let step = ready_step(task, (id.into(), first), &self.scope());
        if matches!(step, Step::StartAttempt { .. }) {
            *slots -= 1;
        }
        Some(step)
    }

    /// The expansion of a fan-out whose dependencies are done, or its failure when its
    /// `for_each` is not a list or holds more items than allowed.
    fn expand_step(&self, task: &Task, fan_out: &FanOut) -> Step {
        let id = TaskId::from(&task.id);
        match self.fan_out_items(fan_out) {
            Ok(items) => Step::Expand { task: id, items },
            Err(reason) => Step::Fail { task: id, reason },
        }
    }

    fn fan_out_items(&self, fan_out: &FanOut) -> Result<Vec<Value>, String> {
        let template = Value::String(fan_out.for_each.clone());
        let value = troupe_workflow::render(&template, &self.scope())
            .map_err(|error| format!("for_each: {error}"))?;
        let Value::Array(items) = value else {
            let found = match &value {
                Value::Null => "null".to_owned(),
                other => format!("a {}", troupe_workflow::json_type_name(other)),
            };
            return Err(format!(
                "for_each: `{}` is {found}, not a list",
                fan_out.for_each
            ));
        };
        let declared = fan_out.max_items as usize;
        let (cap, whose) = if declared <= self.max_fan_out {
            (declared, "the task's max_items")
        } else {
            (self.max_fan_out, "this node's engine.max_fan_out")
        };
        if items.len() > cap {
            return Err(format!(
                "for_each: the list has {} items; the most is {cap} ({whose})",
                items.len()
            ));
        }
        Ok(items)
    }

    /// The children of expanded fan-outs: the pending ones cancelled once a sibling
    /// failed in a fan-out that fails fast, else started as the free slots and the
    /// fan-out's `concurrency` allow; due retries started.
    fn plan_children(&self, now_ms: i64, slots: &mut usize, steps: &mut Vec<Step>) {
        for (&position, expansion) in &self.expansions {
            let task = &self.workflow.tasks[position];
            let (Some(fan_out), Some(parent)) = (&task.fan_out, self.tasks.get(task.id.as_str()))
            else {
                continue;
            };
            if parent.status.is_terminal() {
                continue;
            }
            let children: Vec<&TaskState> = expansion
                .children
                .iter()
                .filter_map(|id| self.tasks.get(id))
                .collect();
            let failed = fan_out.fail_fast
                && children
                    .iter()
                    .any(|child| child.status.is_terminal() && !child.status.lets_dependents_run());
            let bound = fan_out
                .concurrency
                .map_or(usize::MAX, |bound| bound as usize);
            let mut busy = children
                .iter()
                .filter(|child| matches!(child.status, TaskStatus::Running | TaskStatus::Retrying))
                .count();
            for (child, item) in children.iter().zip(&expansion.items) {
                match child.status {
                    TaskStatus::Pending if failed => steps.push(Step::Cancel {
                        task: child.id.clone(),
                        reason: format!("a sibling failed, and `{}` fails fast", task.id),
                    }),
                    TaskStatus::Pending if *slots > 0 && busy < bound => {
                        let item = Item {
                            name: &fan_out.item_name,
                            value: item,
                        };
                        let scope = Scope {
                            item: Some(item),
                            ..self.scope()
                        };
                        let next = (child.id.clone(), child.attempts + 1);
                        let step = ready_step(task, next, &scope);
                        if matches!(step, Step::StartAttempt { .. }) {
                            *slots -= 1;
                            busy += 1;
                        }
                        steps.push(step);
                    }
                    TaskStatus::Retrying
                        if *slots > 0 && child.retry_at_ms.is_some_and(|at| at <= now_ms) =>
                    {
                        *slots -= 1;
                        steps.push(self.attempt_step(child.id.as_str(), child.attempts + 1));
                    }
                    _ => {}
                }
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

/// What a ready task (or fan-out child) `id` does, by its conditions: skip, fail, ask
/// for approval, or start attempt `first` (1, or on from the attempts it had before the
/// run was retried) with its inputs rendered in `scope`.
fn ready_step(task: &Task, (id, first): (TaskId, u32), scope: &Scope<'_>) -> Step {
    let action = match troupe_workflow::decide(&task.conditions, scope) {
        Ok(action) => action,
        Err(error) => {
            return Step::Fail {
                task: id,
                reason: format!("condition: {error}"),
            };
        }
    };
    match action {
        ConditionAction::Skip => Step::Skip { task: id },
        ConditionAction::Fail => Step::Fail {
            task: id,
            reason: "a condition decided `fail`".into(),
        },
        ConditionAction::Execute => match render_inputs(task, scope) {
            Err(reason) => Step::Fail { task: id, reason },
            Ok(inputs) if task.requires_approval => Step::RequestApproval { task: id, inputs },
            Ok(inputs) => Step::StartAttempt {
                task: id,
                attempt: first,
                inputs,
            },
        },
    }
}

/// How a fan-out whose children all ended ends, and why, when not completed.
fn fan_out_outcome(children: &[&TaskState]) -> (TaskStatus, Option<String>) {
    const NAMED_MAX: usize = 5;
    let failed: Vec<&str> = children
        .iter()
        .filter(|child| matches!(child.status, TaskStatus::Failed | TaskStatus::Rejected))
        .map(|child| child.id.as_str())
        .collect();
    if !failed.is_empty() {
        let mut named = failed[..failed.len().min(NAMED_MAX)].join(", ");
        if failed.len() > NAMED_MAX {
            named.push_str(", …");
        }
        let reason = format!(
            "{} of {} children failed: {named}",
            failed.len(),
            children.len()
        );
        return (TaskStatus::Failed, Some(reason));
    }
    if children
        .iter()
        .all(|child| child.status.lets_dependents_run())
    {
        (TaskStatus::Completed, None)
    } else {
        let reason = "its children were cancelled".to_owned();
        (TaskStatus::Cancelled, Some(reason))
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
            parent: None,
            attempt_base: 0,
        }
    }
}
