//! Property test of the run rules: random DAGs with random outcomes and fan-outs of
//! random lengths, driven through `RunState::plan` and `apply` exactly as the run actor
//! does, minus the I/O, and folded again from the log at random points as a resumed run
//! would be.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use troupe_workflow::{Condition, ConditionAction, FanOut, Task, Triggers, Workflow};

use crate::state::{RunState, Step};
use troupe_store::TaskId;
use troupe_store::events::{RunEvent, RunStatus, StoredEvent, TaskStatus};

#[derive(Debug, Clone)]
struct Plan {
    depends_on: Vec<usize>,
    max_retries: u32,
    /// Attempts that fail before one succeeds (for a fan-out, those of child 0).
    failures: u32,
    action: ConditionAction,
    fan_out: Option<FanOutPlan>,
}

/// A task that runs once per item: each child fails its own number of attempts first.
#[derive(Debug, Clone)]
struct FanOutPlan {
    child_failures: Vec<u32>,
    fail_fast: bool,
    concurrency: Option<u32>,
}

impl Plan {
    /// Failed attempts before success of `task`: `t3`, or `t3[1]` a child of `t3`.
    fn failures_of(&self, task: &str) -> u32 {
        match (&self.fan_out, child_index(task)) {
            (Some(fan_out), Some(item)) => fan_out.child_failures[item],
            _ => self.failures,
        }
    }
}

/// `t3` of `t3` and of `t3[1]`.
fn plan_index(task: &str) -> usize {
    let base = task.split('[').next().unwrap_or(task);
    base[1..].parse().unwrap()
}

/// `1` of `t3[1]`.
fn child_index(task: &str) -> Option<usize> {
    let (_, rest) = task.split_once('[')?;
    rest.trim_end_matches(']').parse().ok()
}

fn fan_out_plan() -> impl Strategy<Value = Option<FanOutPlan>> {
    prop::option::weighted(
        0.3,
        (
            prop::collection::vec(0u32..4, 0..5),
            any::<bool>(),
            prop::option::of(1u32..3),
        )
            .prop_map(|(child_failures, fail_fast, concurrency)| FanOutPlan {
                child_failures,
                fail_fast,
                concurrency,
            }),
    )
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            0u32..3,
            0u32..5,
            0u8..10,
            fan_out_plan(),
        ),
        1..14,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(
                |(index, (deps, max_retries, failures, action, fan_out))| Plan {
                    depends_on: if index == 0 {
                        vec![]
                    } else {
                        deps.iter()
                            .map(|dep| dep.index(index))
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect()
                    },
                    max_retries,
                    failures,
                    action: match action {
                        0 => ConditionAction::Skip,
                        1 => ConditionAction::Fail,
                        _ => ConditionAction::Execute,
                    },
                    fan_out,
                },
            )
            .collect()
    })
}

fn workflow(plans: &[Plan]) -> Workflow {
    let tasks = plans
        .iter()
        .enumerate()
        .map(|(index, plan)| Task {
            id: format!("t{index}"),
            name: format!("Task {index}"),
            agent: "echo".into(),
            inputs: BTreeMap::from([("n".to_string(), json!(index))]),
            depends_on: plan
                .depends_on
                .iter()
                .map(|dep| format!("t{dep}"))
                .collect(),
            conditions: vec![Condition {
                if_: "{{ true }}".into(),
                then: plan.action,
                else_: None,
            }],
            timeout_secs: None,
            max_retries: plan.max_retries,
            requires_approval: false,
            approval_timeout_secs: None,
            estimated_cost: 0.0,
            budget_usd: None,
            runs_on: Vec::new(),
            fan_out: plan.fan_out.as_ref().map(|fan_out| {
                let items: Vec<String> = (0..fan_out.child_failures.len())
                    .map(|item| item.to_string())
                    .collect();
                FanOut {
                    for_each: format!("{{{{ [{}] }}}}", items.join(", ")),
                    item_name: "item".into(),
                    max_items: 10,
                    concurrency: fan_out.concurrency,
                    fail_fast: fan_out.fail_fast,
                }
            }),
        })
        .collect();
    Workflow {
        id: "prop".into(),
        name: "prop".into(),
        description: None,
        version: "1.0".into(),
        variables: BTreeMap::new(),
        triggers: Triggers::default(),
        separate_approver: false,
        project: None,
        budget_usd: None,
        on_budget: Default::default(),
        tasks,
    }
}

struct Simulation {
    state: RunState,
    now: i64,
    started: BTreeSet<(String, u32)>,
    log: Vec<StoredEvent>,
}

impl Simulation {
    fn record(&mut self, event: RunEvent) {
        let stored = StoredEvent {
            run_id: "r".into(),
            seq: self.state.next_seq,
            at_ms: self.now,
            event,
        };
        self.state.apply(&stored);
        self.log.push(stored);
    }

    /// Folds the log into a fresh state, as a node that takes the run over does; it
    /// must be the state the run had, children and all.
    fn resume(&mut self) {
        let mut resumed = RunState::new(&"r".into(), self.state.workflow.clone());
        for stored in &self.log {
            resumed.apply(stored);
        }
        assert_eq!(
            resumed.tasks(),
            self.state.tasks(),
            "the fold of the log differs"
        );
        self.state = resumed;
    }

    /// Children of the fan-out of `plans[index]` running at once.
    fn children_running(&self, index: usize) -> usize {
        let parent = format!("t{index}");
        self.state
            .tasks()
            .values()
            .filter(|task| task.parent.as_ref().is_some_and(|p| p.as_str() == parent))
            .filter(|task| task.status == TaskStatus::Running)
            .count()
    }

    fn take(&mut self, step: Step, plans: &[Plan]) {
        let event = match step {
            Step::Skip { task } => RunEvent::TaskSkipped { task },
            Step::Fail { task, reason } => RunEvent::TaskFailed { task, reason },
            Step::Cancel { task, reason } => RunEvent::TaskCancelled { task, reason },
            Step::RequestApproval { .. } => unreachable!("no gates in this test"),
            Step::Expand { task, items } => {
                let plan = &plans[plan_index(task.as_str())];
                let expected = plan.fan_out.as_ref().map(|f| f.child_failures.len());
                assert_eq!(Some(items.len()), expected, "{task} expanded to {items:?}");
                RunEvent::FanOutExpanded { task, items }
            }
            Step::Finish { status } => RunEvent::RunFinished {
                status,
                reason: None,
            },
            Step::StartAttempt {
                task,
                attempt,
                inputs,
            } => {
                let index = plan_index(task.as_str());
                for dep in &plans[index].depends_on {
                    let status = self.state.tasks()[format!("t{dep}").as_str()].status;
                    assert!(
                        status.lets_dependents_run(),
                        "{task} started while t{dep} is {status:?}"
                    );
                }
                assert!(
                    attempt <= plans[index].max_retries + 1,
                    "{task} attempt {attempt} exceeds max_retries"
                );
                assert!(
                    self.started.insert((task.to_string(), attempt)),
                    "{task} attempt {attempt} started twice"
                );
                if let (Some(fan_out), true) = (&plans[index].fan_out, attempt == 1) {
                    let parent = &self.state.tasks()[task.as_str()].parent;
                    let sibling_failed = self.state.tasks().values().any(|sibling| {
                        &sibling.parent == parent && sibling.status == TaskStatus::Failed
                    });
                    assert!(
                        !(fan_out.fail_fast && sibling_failed),
                        "{task} started after a sibling failed, in a fan-out that fails fast"
                    );
                }
                RunEvent::AttemptStarted {
                    idempotency_key: format!("r:{task}:{attempt}"),
                    task,
                    attempt,
                    inputs,
                    node: None,
                }
            }
        };
        self.record(event);
    }

    /// Ends one running attempt as its plan says; `choice` picks which.
    fn complete_one(&mut self, plans: &[Plan], choice: usize) -> bool {
        let running: Vec<(TaskId, u32)> = self
            .state
            .tasks()
            .values()
            .filter(|task| task.status == TaskStatus::Running)
            .filter(|task| !is_fan_out(plans, task.id.as_str()))
            .map(|task| (task.id.clone(), task.attempts))
            .collect();
        if running.is_empty() {
            return false;
        }
        let (task, attempt) = running[choice % running.len()].clone();
        let plan = &plans[plan_index(task.as_str())];
        let event = if attempt > plan.failures_of(task.as_str()) {
            RunEvent::AttemptSucceeded {
                task,
                attempt,
                outputs: Value::Null,
                cost_usd: 0.0,
                node: None,
            }
        } else {
            let retry_at_ms = (attempt <= plan.max_retries).then_some(self.now + 5);
            RunEvent::AttemptFailed {
                task,
                attempt,
                error: "planned".into(),
                retry_at_ms,
                node: None,
            }
        };
        self.record(event);
        true
    }
}

/// Whether `task` is a fan-out itself (it runs no attempt: its children do).
fn is_fan_out(plans: &[Plan], task: &str) -> bool {
    child_index(task).is_none() && plans[plan_index(task)].fan_out.is_some()
}

/// How a task (or child) with this plan ends when nothing upstream broke and no sibling
/// cancelled it.
fn own_outcome(plan: &Plan, failures: u32) -> TaskStatus {
    match plan.action {
        ConditionAction::Skip => TaskStatus::Skipped,
        ConditionAction::Fail => TaskStatus::Failed,
        ConditionAction::Execute if failures > plan.max_retries => TaskStatus::Failed,
        ConditionAction::Execute => TaskStatus::Completed,
    }
}

/// Checks a fan-out's children against their plans, and returns how the fan-out ends.
fn check_children(
    state: &RunState,
    index: usize,
    plan: &Plan,
    fan_out: &FanOutPlan,
) -> Result<TaskStatus, TestCaseError> {
    let mut any_failed = false;
    for (item, failures) in fan_out.child_failures.iter().enumerate() {
        let id = format!("t{index}[{item}]");
        let child = &state.tasks()[id.as_str()];
        let expected = own_outcome(plan, *failures);
        if child.status == TaskStatus::Cancelled {
            prop_assert!(
                fan_out.fail_fast,
                "{} cancelled, though its fan-out does not fail fast",
                id
            );
        } else {
            prop_assert_eq!(child.status, expected, "child {}", id);
        }
        any_failed |= child.status == TaskStatus::Failed;
    }
    let all_good = state
        .tasks()
        .values()
        .filter(|task| {
            task.parent
                .as_ref()
                .is_some_and(|p| p.as_str() == format!("t{index}"))
        })
        .all(|task| task.status.lets_dependents_run());
    Ok(if any_failed {
        TaskStatus::Failed
    } else if all_good {
        TaskStatus::Completed
    } else {
        TaskStatus::Cancelled
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn runs_follow_the_outcome_rules(plans in plans(), choices in prop::collection::vec(any::<usize>(), 200), slots in 1usize..4, resume_every in 3usize..40) {
        let mut simulation = Simulation { state: RunState::new(&"r".into(), Arc::new(workflow(&plans))), now: 0, started: BTreeSet::new(), log: Vec::new() };
        simulation.record(RunEvent::RunStarted { workflow_id: "prop".into(), workflow_version: 1, variables: BTreeMap::new(), started_by: "p".into(), started_by_id: None, seed: None });
        let mut choice = choices.iter().cycle();
        for round in 0..10_000 {
            if simulation.state.finished.is_some() {
                break;
            }
            if round % resume_every == resume_every - 1 {
                simulation.resume();
            }
            let running = simulation.state.running();
            let steps = simulation.state.plan(simulation.now, slots.saturating_sub(running));
            let running_after: usize = running + steps.iter().filter(|step| matches!(step, Step::StartAttempt { .. })).count();
            prop_assert!(running_after <= slots.max(running), "more attempts than slots");
            if !steps.is_empty() {
                for step in steps {
                    simulation.take(step, &plans);
                }
                for (index, plan) in plans.iter().enumerate() {
                    let bound = plan.fan_out.as_ref().and_then(|f| f.concurrency).map_or(usize::MAX, |c| c as usize);
                    prop_assert!(simulation.children_running(index) <= bound, "t{} runs more children than its concurrency", index);
                }
                continue;
            }
            if !simulation.complete_one(&plans, *choice.next().unwrap()) {
                simulation.now += 10;
            }
        }
        let state = &simulation.state;
        prop_assert!(state.finished.is_some(), "the run never finished: {:?}", state.tasks());

        for (index, plan) in plans.iter().enumerate() {
            let task = &state.tasks()[format!("t{index}").as_str()];
            let upstream_broken = plan.depends_on.iter().any(|dep| !state.tasks()[format!("t{dep}").as_str()].status.lets_dependents_run());
            let expected = match &plan.fan_out {
                _ if upstream_broken => TaskStatus::Cancelled,
                Some(fan_out) => check_children(state, index, plan, fan_out)?,
                None => own_outcome(plan, plan.failures),
            };
            prop_assert_eq!(task.status, expected, "task t{}", index);
            if let (Some(fan_out), false) = (&plan.fan_out, upstream_broken) {
                let outputs = task.outputs.as_ref().and_then(Value::as_array).map(Vec::len);
                prop_assert_eq!(outputs, Some(fan_out.child_failures.len()), "outputs of t{}", index);
            }
            if expected != TaskStatus::Cancelled && plan.action == ConditionAction::Execute && plan.fan_out.is_none() {
                prop_assert_eq!(task.attempts, (plan.failures + 1).min(plan.max_retries + 1), "attempts of t{}", index);
            }
        }
        let all_good = state.tasks().values().all(|task| task.status.lets_dependents_run());
        prop_assert_eq!(state.finished, Some(if all_good { RunStatus::Completed } else { RunStatus::Failed }));
    }
}
