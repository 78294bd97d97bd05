//! Property test of the run rules: random DAGs with random outcomes, driven through
//! `RunState::plan` and `apply` exactly as the run actor does, minus the I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use troupe_workflow::{Condition, ConditionAction, Task, Triggers, Workflow};

use crate::state::{RunState, Step};
use troupe_store::TaskId;
use troupe_store::events::{RunEvent, RunStatus, StoredEvent, TaskStatus};

#[derive(Debug, Clone)]
struct Plan {
    depends_on: Vec<usize>,
    max_retries: u32,
    failures: u32,
    action: ConditionAction,
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            0u32..3,
            0u32..5,
            0u8..10,
        ),
        1..14,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(index, (deps, max_retries, failures, action))| Plan {
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
            })
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
            runs_on: Vec::new(),
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
        tasks,
    }
}

struct Simulation {
    state: RunState,
    now: i64,
    started: BTreeSet<(String, u32)>,
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
    }

    fn take(&mut self, step: Step, plans: &[Plan]) {
        let event = match step {
            Step::Skip { task } => RunEvent::TaskSkipped { task },
            Step::Fail { task, reason } => RunEvent::TaskFailed { task, reason },
            Step::Cancel { task, reason } => RunEvent::TaskCancelled { task, reason },
            Step::RequestApproval { .. } => unreachable!("no gates in this test"),
            Step::Finish { status } => RunEvent::RunFinished {
                status,
                reason: None,
            },
            Step::StartAttempt {
                task,
                attempt,
                inputs,
            } => {
                let index: usize = task.as_str()[1..].parse().unwrap();
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
            .map(|task| (task.id.clone(), task.attempts))
            .collect();
        if running.is_empty() {
            return false;
        }
        let (task, attempt) = running[choice % running.len()].clone();
        let plan = &plans[task.as_str()[1..].parse::<usize>().unwrap()];
        let event = if attempt > plan.failures {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn runs_follow_the_outcome_rules(plans in plans(), choices in prop::collection::vec(any::<usize>(), 200), slots in 1usize..4) {
        let mut simulation = Simulation { state: RunState::new(&"r".into(), Arc::new(workflow(&plans))), now: 0, started: BTreeSet::new() };
        simulation.record(RunEvent::RunStarted { workflow_id: "prop".into(), workflow_version: 1, variables: BTreeMap::new(), started_by: "p".into(), started_by_id: None });
        let mut choice = choices.iter().cycle();
        for _ in 0..10_000 {
            if simulation.state.finished.is_some() {
                break;
            }
            let running = simulation.state.tasks().values().filter(|task| task.status == TaskStatus::Running).count();
            let steps = simulation.state.plan(simulation.now, slots.saturating_sub(running));
            let running_after: usize = running + steps.iter().filter(|step| matches!(step, Step::StartAttempt { .. })).count();
            prop_assert!(running_after <= slots.max(running), "more attempts than slots");
            if !steps.is_empty() {
                for step in steps {
                    simulation.take(step, &plans);
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
            let expected = if upstream_broken {
                TaskStatus::Cancelled
            } else {
                match plan.action {
                    ConditionAction::Skip => TaskStatus::Skipped,
                    ConditionAction::Fail => TaskStatus::Failed,
                    ConditionAction::Execute if plan.failures > plan.max_retries => TaskStatus::Failed,
                    ConditionAction::Execute => TaskStatus::Completed,
                }
            };
            prop_assert_eq!(task.status, expected, "task t{}", index);
            if expected != TaskStatus::Cancelled && plan.action == ConditionAction::Execute {
                prop_assert_eq!(task.attempts, (plan.failures + 1).min(plan.max_retries + 1), "attempts of t{}", index);
            }
        }
        let all_good = state.tasks().values().all(|task| task.status.lets_dependents_run());
        prop_assert_eq!(state.finished, Some(if all_good { RunStatus::Completed } else { RunStatus::Failed }));
    }
}
