//! The engine end to end inside one process: a real node on `mem://` (or `surrealkv://`
//! for restarts), real actors, and test agent kinds whose behaviour the tests control.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Map, Value, json};
use troupe_agents::{AgentContext, AgentError, AgentOutput, TypedAgent};
use troupe_config::Settings;

use crate::NodeError;
use crate::{Decision, Node, NodeBuilder, Person, RunOptions};
use troupe_engine::EngineError;
use troupe_store::clock::TokioClock;
use troupe_store::events::{RunEvent, RunStatus, TaskStatus};
use troupe_store::{RunId, TaskId, UserId};

/// What the test agents saw: per task, its attempts and their start/end instants.
#[derive(Default)]
struct Journal {
    spans: Mutex<Vec<(String, Instant, Instant)>>,
    attempts: Mutex<BTreeMap<String, u32>>,
    keys: Mutex<Vec<String>>,
    /// Tasks whose attempt saw its cancellation token fire.
    cancelled: Mutex<Vec<String>>,
}

impl Journal {
    fn attempts(&self, task: &str) -> u32 {
        self.attempts
            .lock()
            .unwrap()
            .get(task)
            .copied()
            .unwrap_or(0)
    }
    fn span(&self, task: &str) -> (Instant, Instant) {
        let spans = self.spans.lock().unwrap();
        let (_, start, end) = spans
            .iter()
            .find(|(name, _, _)| name == task)
            .unwrap_or_else(|| panic!("{task} never ran"));
        (*start, *end)
    }
}

/// `work`: sleeps `sleep_ms`, fails its first `fail_times` attempts, panics when
/// `panic` is true, and echoes its inputs (with the networks its context allows when
/// `report_networks` is true, its attempt number and seed when `report_seed` is).
struct Work {
    journal: Arc<Journal>,
}

#[async_trait::async_trait]
impl TypedAgent for Work {
    const KIND: &'static str = "work";
    const DESCRIPTION: &'static str = "test agent";
    type Inputs = Map<String, Value>;
    async fn attempt(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let name = inputs
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let attempt = {
            let mut attempts = self.journal.attempts.lock().unwrap();
            let count = attempts.entry(name.clone()).or_default();
            *count += 1;
            *count
        };
        self.journal
            .keys
            .lock()
            .unwrap()
            .push(context.idempotency_key.clone());
        let start = Instant::now();
        let sleep =
            Duration::from_millis(inputs.get("sleep_ms").and_then(Value::as_u64).unwrap_or(0));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = context.cancel.cancelled() => {
                self.journal.cancelled.lock().unwrap().push(name);
                return Err(AgentError::Cancelled);
            }
        }
        if inputs.get("panic").and_then(Value::as_bool) == Some(true) {
            panic!("work agent told to panic");
        }
        if u64::from(attempt)
            <= inputs
                .get("fail_times")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        {
            return Err(AgentError::Failed(format!("planned failure {attempt}")));
        }
        self.journal
            .spans
            .lock()
            .unwrap()
            .push((name, start, Instant::now()));
        let mut outputs = inputs;
        if outputs.get("report_networks").and_then(Value::as_bool) == Some(true) {
            outputs.insert("networks".into(), json!(context.project_networks().await));
        }
        if outputs.get("report_seed").and_then(Value::as_bool) == Some(true) {
            outputs.insert("attempt".into(), json!(context.attempt));
            outputs.insert("seed".into(), json!(context.seed));
        }
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.01,
        })
    }
}

fn settings(store_url: &str) -> Settings {
    let mut settings = Settings::defaults_with_store(store_url);
    settings.models.serve = false;
    settings.engine.retry_base_delay_ms = 10;
    settings.engine.retry_max_delay_ms = 50;
    settings
}

/// A node on `store_url` whose engine reads tokio's clock, so that tests on paused time
/// see retries and deadlines come due as their timers fire.
async fn node_with(store_url: &str, journal: Arc<Journal>) -> Node {
    let settings = settings(store_url);
    NodeBuilder::new(settings)
        .agent_kind(Arc::new(Work { journal }))
        .clock(Arc::new(TokioClock::new()))
        .start()
        .await
        .expect("node starts")
}

async fn node() -> (Node, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    (node_with("mem://", journal.clone()).await, journal)
}

async fn start(node: &Node, yaml: &str) -> RunId {
    start_as(node, yaml, "ada", BTreeMap::new())
        .await
        .expect("run starts")
}

async fn start_as(
    node: &Node,
    yaml: &str,
    who: &str,
    variables: BTreeMap<String, Value>,
) -> Result<RunId, NodeError> {
    start_by(node, yaml, &Person::named(who), variables).await
}

async fn start_by(
    node: &Node,
    yaml: &str,
    who: &Person,
    variables: BTreeMap<String, Value>,
) -> Result<RunId, NodeError> {
    let (id, _) = node
        .save_workflow(yaml, "test.yaml", "test")
        .await
        .expect("workflow is valid");
    let options = RunOptions {
        variables,
        ..RunOptions::default()
    };
    node.start_run(&id, options, who).await
}

async fn wait_until(
    node: &Node,
    run_id: &RunId,
    done: impl Fn(&troupe_engine::state::RunState) -> bool,
) -> troupe_engine::state::RunState {
    for _ in 0..1000 {
        let state = node.run_state(run_id).await.unwrap();
        if done(&state) {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "run {run_id} did not reach the expected state in 10 s: {:#?}",
        node.run_state(run_id).await.unwrap().tasks()
    );
}

async fn finish(node: &Node, run_id: &RunId) -> troupe_engine::state::RunState {
    wait_until(node, run_id, |state| state.finished.is_some()).await
}

fn statuses(state: &troupe_engine::state::RunState) -> BTreeMap<&str, TaskStatus> {
    state
        .tasks()
        .iter()
        .map(|(id, task)| (id.as_str(), task.status))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn independent_tasks_overlap_and_dependents_wait_for_all_inputs() {
    let (node, journal) = node().await;
    let run = start(&node, r#"
name: diamond
tasks:
  - { id: a, name: A, agent: work, inputs: { name: a, value: 21 } }
  - { id: b, name: B, agent: work, depends_on: [a], inputs: { name: b, sleep_ms: 300, got: "{{ tasks.a.outputs.value }}" } }
  - { id: c, name: C, agent: work, depends_on: [a], inputs: { name: c, sleep_ms: 300 } }
  - { id: d, name: D, agent: work, depends_on: [b, c], inputs: { name: d, text: "b got {{ tasks.b.outputs.got }}" } }
"#).await;
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    let (b_start, b_end) = journal.span("b");
    let (c_start, c_end) = journal.span("c");
    let (d_start, _) = journal.span("d");
    assert!(b_start < c_end && c_start < b_end, "b and c must overlap");
    assert!(
        d_start >= b_end && d_start >= c_end,
        "d must wait for b and c"
    );
    assert_eq!(
        state.tasks()["b"].outputs.as_ref().unwrap()["got"],
        json!(21),
        "a whole template keeps the type"
    );
    assert_eq!(
        state.tasks()["d"].outputs.as_ref().unwrap()["text"],
        json!("b got 21")
    );
    assert!((node.run_detail(&run).await.unwrap().cost_usd - 0.04).abs() < 1e-9);
}

/// How many of `tasks` ran at once at most, by their journal spans.
fn most_at_once(journal: &Journal, tasks: &[&str]) -> usize {
    let spans: Vec<(Instant, Instant)> = tasks.iter().map(|task| journal.span(task)).collect();
    spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(other_start, other_end)| other_start <= start && start < other_end)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_runs_a_child_per_item_within_its_concurrency_and_hands_on_their_outputs() {
    let (node, journal) = node().await;
    let run = start(
        &node,
        r#"
name: lanes
tasks:
  - id: plan
    name: Plan
    agent: work
    inputs: { name: plan, modules: [m0, m1, m2, m3, m4] }
  - id: code
    name: Code
    agent: work
    depends_on: [plan]
    for_each: "{{ tasks.plan.outputs.modules }}"
    as: module
    concurrency: 2
    inputs: { name: "{{ module }}", sleep_ms: 200 }
  - id: join
    name: Join
    agent: work
    depends_on: [code]
    inputs: { name: join, all: "{{ tasks.code.outputs }}", status: "{{ tasks.code.status }}" }
"#,
    )
    .await;
    let state = finish(&node, &run).await;
    assert_eq!(
        state.finished,
        Some(RunStatus::Completed),
        "{:#?}",
        state.tasks()
    );
    let modules = ["m0", "m1", "m2", "m3", "m4"];
    assert_eq!(
        most_at_once(&journal, &modules),
        2,
        "lanes overlap, two at a time"
    );
    let join = state.tasks()["join"].outputs.clone().unwrap();
    let names: Vec<&str> = join["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, modules, "the children's outputs, in item order");
    assert_eq!(join["status"], json!("completed"));
    let child = &state.tasks()["code[3]"];
    assert_eq!(
        (child.status, child.parent.as_ref().map(|p| p.as_str())),
        (TaskStatus::Completed, Some("code"))
    );
    let events = node.run_events(&run).await.unwrap();
    let expansions: Vec<&RunEvent> = events
        .iter()
        .map(|e| &e.event)
        .filter(|e| matches!(e, RunEvent::FanOutExpanded { .. }))
        .collect();
    assert_eq!(
        expansions,
        [&RunEvent::FanOutExpanded {
            task: "code".into(),
            items: modules.map(|m| json!(m)).to_vec()
        }]
    );
    let detail = node.run_detail(&run).await.unwrap();
    let order: Vec<&str> = detail.tasks.iter().map(|task| task.id.as_str()).collect();
    assert_eq!(
        order,
        [
            "plan", "code", "code[0]", "code[1]", "code[2]", "code[3]", "code[4]", "join"
        ]
    );
    assert!(
        (detail.cost_usd - 0.07).abs() < 1e-9,
        "each attempt counted once: {}",
        detail.cost_usd
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_child_cancels_its_unstarted_siblings_when_its_fan_out_fails_fast() {
    let (node, journal) = node().await;
    let run = start(
        &node,
        r#"
name: fragile
variables:
  modules: [{ name: a, fail_times: 9 }, { name: b }, { name: c }]
tasks:
  - id: code
    name: Code
    agent: work
    for_each: "{{ variables.modules }}"
    concurrency: 1
    max_retries: 0
    inputs: { name: "{{ item.name }}", fail_times: "{{ item.fail_times }}" }
  - { id: after, name: After, agent: work, depends_on: [code], inputs: { name: after } }
"#,
    )
    .await;
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Failed));
    assert_eq!(
        statuses(&state),
        BTreeMap::from([
            ("after", TaskStatus::Cancelled),
            ("code", TaskStatus::Failed),
            ("code[0]", TaskStatus::Failed),
            ("code[1]", TaskStatus::Cancelled),
            ("code[2]", TaskStatus::Cancelled),
        ])
    );
    assert_eq!(
        state.tasks()["code"].error.as_deref(),
        Some("1 of 3 children failed: code[0]")
    );
    assert_eq!((journal.attempts("b"), journal.attempts("c")), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_for_each_that_is_not_a_list_or_is_too_long_fails_its_task_and_expands_nothing() {
    let (node, _) = node().await;
    let not_a_list = start(
        &node,
        r#"
name: scalar
tasks:
  - { id: code, name: Code, agent: work, for_each: "{{ 'one module' }}", inputs: { name: x } }
"#,
    )
    .await;
    let state = finish(&node, &not_a_list).await;
    assert_eq!(
        state.tasks()["code"].error.as_deref(),
        Some("for_each: `{{ 'one module' }}` is a string, not a list")
    );
    let too_long = start(&node, r#"
name: long
tasks:
  - { id: code, name: Code, agent: work, for_each: "{{ [1, 2, 3, 4] }}", max_items: 3, inputs: { name: x } }
"#).await;
    let state = finish(&node, &too_long).await;
    assert_eq!(
        state.tasks()["code"].error.as_deref(),
        Some("for_each: the list has 4 items; the most is 3 (the task's max_items)")
    );
    assert_eq!(state.tasks().len(), 1, "no child was made");
    let events = node.run_events(&too_long).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, RunEvent::FanOutExpanded { .. }))
    );

    let huge: Vec<Value> = (0..10_001).map(|n| json!(n)).collect();
    let variables = BTreeMap::from([("modules".to_owned(), Value::Array(huge))]);
    let workflow = r#"
name: huge
variables: { modules: [] }
tasks:
  - { id: code, name: Code, agent: work, for_each: "{{ variables.modules }}", max_items: 10000, inputs: { name: x } }
"#;
    let run = start_as(&node, workflow, "ada", variables).await.unwrap();
    let state = finish(&node, &run).await;
    assert_eq!(
        state.tasks()["code"].error.as_deref(),
        Some(
            "for_each: the list has 10001 items; the most is 500 (this node's engine.max_fan_out)"
        )
    );
    assert_eq!(state.tasks().len(), 1, "no child was made");
}

/// A fan-out whose estimate (items × `estimated_cost`) is more than its budgets leave
/// fails before it expands; under `on_budget: local_only` it runs.
#[tokio::test]
async fn a_fan_out_estimated_past_its_budget_fails_before_it_expands() {
    let (node, journal) = node().await;
    let over = |budget: &str| {
        format!(
            r#"
name: lanes
{budget}
tasks:
  - {{ id: code, name: Code, agent: work, for_each: "{{{{ [1, 2, 3, 4] }}}}", estimated_cost: 0.25, inputs: {{ name: x }} }}
"#
        )
    };
    let run = start(&node, &over("budget_usd: 0.9")).await;
    let state = finish(&node, &run).await;
    assert_eq!(
        state.tasks()["code"].error.as_deref(),
        Some(
            "budget_exceeded: the fan-out's 4 items are estimated at $1.0000 ($0.2500 each, \
             from its estimated_cost), more than is left of the run's budget of $0.9000 \
             ($0.0000 spent); nothing was started (raise `budget_usd`, lower `max_items`, \
             or set `on_budget: local_only`)"
        )
    );
    assert_eq!(state.tasks().len(), 1, "no child was made");
    assert_eq!(journal.attempts("code[0]"), 0);

    let task_budget = over("").replace(
        "estimated_cost: 0.25",
        "estimated_cost: 0.25, budget_usd: 0.5",
    );
    let state = finish(&node, &start(&node, &task_budget).await).await;
    let error = state.tasks()["code"].error.clone().unwrap_or_default();
    assert!(
        error.contains("more than is left of task `code`'s budget of $0.5000"),
        "{error}"
    );

    for fits in [
        over("budget_usd: 1.0"),
        over("budget_usd: 0.9\non_budget: local_only"),
    ] {
        let state = finish(&node, &start(&node, &fits).await).await;
        assert_eq!(state.tasks().len(), 5, "{fits}: four children");
        assert_eq!(statuses(&state)["code"], TaskStatus::Completed, "{fits}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_schedule_fires_each_tick_once_even_with_two_nodes_looking() {
    let (node, _) = node().await;
    let second = node.second_scheduler();
    let (workflow, _) = node
        .save_workflow(
            "name: minutely\ntriggers:\n  schedule: { cron: \"* * * * *\" }\ntasks:\n  - { id: a, name: A, agent: work, inputs: { name: tick } }\n",
            "minutely.yaml",
            "test",
        )
        .await
        .unwrap();
    // Paused time moves on whenever every task waits: three minutes pass at once.
    tokio::time::sleep(Duration::from_secs(190)).await;
    second.abort();
    let filter = troupe_store::RunFilter {
        workflow_id: Some(workflow.clone()),
        ..Default::default()
    };
    let runs = node.store().runs(&filter).await.unwrap();
    let mut ticks: Vec<i64> = runs.iter().filter_map(|run| run.tick_ms).collect();
    ticks.sort_unstable();
    // 190 s hold three or four minute boundaries, by where in its minute the clock
    // started; each must have one run, whichever of the two loops started it.
    assert!(
        (3..=4).contains(&ticks.len()),
        "a run per minute passed: {ticks:?}"
    );
    assert!(
        ticks.windows(2).all(|pair| pair[1] - pair[0] == 60_000),
        "one run per minute, not one per loop: {ticks:?}"
    );
    assert!(
        ticks.iter().all(|tick| tick % 60_000 == 0),
        "ticks fall on minutes: {ticks:?}"
    );
    for run in &runs {
        let tick = run.tick_ms.unwrap();
        assert_eq!(run.run_id, RunId::for_tick(&workflow, tick));
        assert_eq!(run.started_by, "schedule");
    }
}

/// A failed run retried: the failed task and the one it cancelled run again, each
/// attempt under a key of its own; the completed task keeps its outputs and is not run.
#[tokio::test]
async fn a_retried_run_reruns_only_what_failed_and_what_it_stopped() {
    let (node, journal) = node().await;
    let yaml = r#"
name: retry
tasks:
  - { id: a, name: A, agent: work, inputs: { name: ra } }
  - { id: b, name: B, agent: work, depends_on: [a], max_retries: 0, inputs: { name: rb, fail_times: 1, got: "{{ tasks.a.outputs.name }}" } }
  - { id: c, name: C, agent: work, depends_on: [b], inputs: { name: rc } }
"#;
    let run = start(&node, yaml).await;
    let failed = finish(&node, &run).await;
    assert_eq!(failed.finished, Some(RunStatus::Failed));
    assert_eq!(statuses(&failed)["c"], TaskStatus::Cancelled);

    let reset = node.retry_run(&run, None, "ada").await.unwrap();
    assert_eq!(reset, vec![TaskId::from("b"), TaskId::from("c")]);
    let state = finish(&node, &run).await;
    assert_eq!(
        state.finished,
        Some(RunStatus::Completed),
        "{:?}",
        state.tasks()
    );
    assert_eq!(
        journal.attempts("ra"),
        1,
        "a completed: it is not run again"
    );
    assert_eq!(journal.attempts("rb"), 2);
    assert_eq!(state.tasks()["b"].attempts, 2, "b's attempts number on");
    assert_eq!(state.tasks()["b"].outputs.as_ref().unwrap()["got"], "ra");
    let keys = journal.keys.lock().unwrap().clone();
    let b_keys: Vec<&String> = keys.iter().filter(|key| key.contains(":b:")).collect();
    assert_eq!(b_keys.len(), 2);
    assert_ne!(b_keys[0], b_keys[1], "the new attempt has a key of its own");

    // The log folds to the same state from the start, as a take-over would.
    let events = node.run_events(&run).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.event, RunEvent::RunRetried { .. }))
    );
    let record = node.store().run(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed);

    let refused = node.retry_run(&run, None, "ada").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("run `{run}` completed: there is nothing to retry")
    );
}

/// `from` runs a completed task again with everything downstream; a name that is no
/// task, or a run still going, is refused and nothing is appended.
#[tokio::test]
async fn a_retry_from_a_task_reruns_it_and_a_bad_retry_changes_nothing() {
    let (node, journal) = node().await;
    let yaml = r#"
name: retry from
tasks:
  - { id: a, name: A, agent: work, inputs: { name: fa } }
  - { id: b, name: B, agent: work, depends_on: [a], max_retries: 0, inputs: { name: fb, fail_times: 1 } }
"#;
    let run = start(&node, yaml).await;
    finish(&node, &run).await;
    let before = node.run_events(&run).await.unwrap().len();
    let unknown = node
        .retry_run(&run, Some(TaskId::from("nope")), "ada")
        .await
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        format!("run `{run}` has no task `nope`; its tasks: a, b")
    );
    assert_eq!(node.run_events(&run).await.unwrap().len(), before);

    let reset = node
        .retry_run(&run, Some(TaskId::from("a")), "ada")
        .await
        .unwrap();
    assert_eq!(reset, vec![TaskId::from("a"), TaskId::from("b")]);
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!((journal.attempts("fa"), journal.attempts("fb")), (2, 2));

    let slow = start(&node, "name: slow\ntasks:\n  - { id: s, name: S, agent: work, inputs: { name: slow, sleep_ms: 5000 } }\n").await;
    let running = node.retry_run(&slow, None, "ada").await.unwrap_err();
    assert_eq!(
        running.to_string(),
        format!("run `{slow}` is still running: wait for it to end, or cancel it first")
    );
    node.cancel_run(&slow, "ada").await.unwrap();
}

/// A run moved to version 2 while its first task runs: the changed and added tasks run
/// as version 2 says, the record names version 2, and a take-over folds the same. A
/// version that would change the running task is refused, and a dry run changes
/// nothing.
#[tokio::test]
async fn a_running_run_moves_to_a_version_that_changes_only_what_has_not_started() {
    let (node, journal) = node().await;
    let v1 = r#"
name: moving
tasks:
  - { id: a, name: A, agent: work, inputs: { name: ma, sleep_ms: 2000 } }
  - { id: b, name: B, agent: work, depends_on: [a], inputs: { name: mb, to: staging } }
"#;
    let run = start(&node, v1).await;
    wait_until(&node, &run, |state| {
        statuses(state)["a"] == TaskStatus::Running
    })
    .await;
    let v2 = v1.replace("to: staging", "to: production")
        + "  - { id: c, name: C, agent: work, depends_on: [b], inputs: { name: mc } }\n";
    let (id, version) = node
        .save_workflow(&v2, "moving.yaml", "test")
        .await
        .unwrap();
    assert_eq!(version, 2);
    // `a` sleeps 2 s: long enough for every step below to see it running.
    let touches_a = v1.replace("sleep_ms: 2000", "sleep_ms: 1");
    let (_, bad) = node
        .save_workflow(&touches_a, "moving.yaml", "test")
        .await
        .unwrap();

    let before = node.run_events(&run).await.unwrap().len();
    let plan = node.migrate_run(&run, 2, true, "ada").await.unwrap();
    assert_eq!(
        (plan.changed.as_slice(), plan.added.as_slice()),
        (&["b".to_owned()][..], &["c".to_owned()][..])
    );
    assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
    assert_eq!(
        node.run_events(&run).await.unwrap().len(),
        before,
        "a dry run appends nothing"
    );
    let refused = node.migrate_run(&run, bad, false, "ada").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the run cannot move to that version: task `a` is running: it cannot be changed"
    );
    assert_eq!(
        node.run_events(&run).await.unwrap().len(),
        before,
        "nor does a refusal"
    );

    node.migrate_run(&run, 2, false, "ada").await.unwrap();
    let state = finish(&node, &run).await;
    assert_eq!(
        state.finished,
        Some(RunStatus::Completed),
        "{:?}",
        state.tasks()
    );
    assert_eq!(
        state.tasks()["b"].outputs.as_ref().unwrap()["to"],
        "production"
    );
    assert_eq!(statuses(&state)["c"], TaskStatus::Completed);
    assert_eq!(journal.attempts("ma"), 1, "a ran once, across the move");
    let record = node.store().run(&run).await.unwrap();
    assert_eq!((record.workflow_id, record.workflow_version), (id, 2));
}

#[tokio::test]
async fn a_schedule_in_a_zone_that_does_not_exist_is_refused_when_saved() {
    let (node, _) = node().await;
    let refused = node
        .save_workflow(
            "name: nightly\ntriggers:\n  schedule: { cron: \"0 2 * * *\", timezone: Mars/Olympus }\ntasks:\n  - { id: a, name: A, agent: work }\n",
            "nightly.yaml",
            "test",
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "triggers.schedule.timezone: `Mars/Olympus` is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_retries_and_failure_cancels_only_downstream() {
    let (node, journal) = node().await;
    let run = start(
        &node,
        r#"
name: failing
tasks:
  - { id: bad, name: Bad, agent: work, max_retries: 2, inputs: { name: bad, fail_times: 99 } }
  - { id: after, name: After, agent: work, depends_on: [bad], inputs: { name: after } }
  - { id: other, name: Other, agent: work, inputs: { name: other, sleep_ms: 100 } }
"#,
    )
    .await;
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Failed));
    assert_eq!(journal.attempts("bad"), 3, "first attempt + 2 retries");
    assert_eq!(journal.attempts("after"), 0);
    assert_eq!(
        statuses(&state),
        BTreeMap::from([
            ("after", TaskStatus::Cancelled),
            ("bad", TaskStatus::Failed),
            ("other", TaskStatus::Completed)
        ])
    );
    let keys = journal.keys.lock().unwrap().clone();
    for attempt in 1..=3 {
        assert!(
            keys.contains(&format!("{run}:bad:{attempt}")),
            "idempotency key of attempt {attempt} in {keys:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_flaky_task_succeeds_on_retry() {
    let (node, journal) = node().await;
    let run = start(&node, "name: flaky\ntasks:\n  - { id: f, name: F, agent: work, max_retries: 3, inputs: { name: f, fail_times: 2 } }\n").await;
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!((journal.attempts("f"), state.tasks()["f"].attempts), (3, 3));
}

/// A run started with a seed hands each attempt the seed of its task and number, and
/// keeps it in its log; a run started without one takes its id's.
#[tokio::test]
async fn attempts_draw_their_seeds_from_the_runs_seed() {
    let (node, _journal) = node().await;
    let yaml = "name: seeded\ntasks:\n  - { id: f, name: F, agent: work, max_retries: 1, inputs: { name: seeded, fail_times: 1, report_seed: true } }\n";
    let (id, _) = node
        .save_workflow(yaml, "seeded.yaml", "test")
        .await
        .unwrap();
    let ada = Person::named("ada");
    let seeded = RunOptions {
        seed: Some(42),
        ..RunOptions::default()
    };
    let run = node.start_run(&id, seeded, &ada).await.unwrap();
    let outputs = finish(&node, &run).await.tasks()["f"]
        .outputs
        .clone()
        .unwrap();
    let second = troupe_engine::seed::of_attempt(42, &TaskId::from("f"), 2);
    assert_eq!(
        (&outputs["attempt"], &outputs["seed"]),
        (&json!(2), &json!(second))
    );
    assert_eq!(node.run_detail(&run).await.unwrap().seed, 42);

    let unseeded = node
        .start_run(&id, RunOptions::default(), &ada)
        .await
        .unwrap();
    finish(&node, &unseeded).await;
    let detail = node.run_detail(&unseeded).await.unwrap();
    assert_eq!(detail.seed, troupe_engine::seed::of_run(&unseeded));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_agent_fails_its_attempt_not_the_run_or_the_node() {
    let (node, _journal) = node().await;
    let run = start(
        &node,
        r#"
name: panics
tasks:
  - { id: boom, name: Boom, agent: work, max_retries: 1, inputs: { name: boom, panic: true } }
  - { id: fine, name: Fine, agent: work, inputs: { name: fine, sleep_ms: 50 } }
"#,
    )
    .await;
    let state = finish(&node, &run).await;
    assert_eq!(state.tasks()["boom"].status, TaskStatus::Failed);
    assert_eq!(state.tasks()["boom"].attempts, 2);
    assert!(
        state.tasks()["boom"]
            .error
            .as_deref()
            .unwrap()
            .contains("panicked"),
        "{:?}",
        state.tasks()["boom"].error
    );
    assert_eq!(state.tasks()["fine"].status, TaskStatus::Completed);
    assert!(node.is_alive());
    let next = start(
        &node,
        "name: after\ntasks:\n  - { id: x, name: X, agent: echo }\n",
    )
    .await;
    assert_eq!(
        finish(&node, &next).await.finished,
        Some(RunStatus::Completed)
    );
}

#[tokio::test]
async fn conditions_skip_tasks_and_dependents_of_a_skipped_task_still_run() {
    let (node, _journal) = node().await;
    let run = start(&node, r#"
name: conditional
variables: { deploy: false }
tasks:
  - id: deploy
    name: Deploy
    agent: echo
    inputs: { done: true }
    conditions: [ { if: "{{ variables.deploy }}", then: execute, else: skip } ]
  - id: report
    name: Report
    agent: echo
    depends_on: [deploy]
    inputs: { deployed: "{{ default(tasks.deploy.outputs.done, false) }}", status: "{{ tasks.deploy.status }}" }
"#).await;
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!(state.tasks()["deploy"].status, TaskStatus::Skipped);
    assert_eq!(
        state.tasks()["report"].outputs.clone().unwrap(),
        json!({"deployed": false, "status": "skipped"})
    );
}

#[tokio::test]
async fn a_condition_can_fail_a_task_without_retrying_it() {
    let (node, journal) = node().await;
    let run = start(
        &node,
        r#"
name: gate
tasks:
  - id: guard
    name: Guard
    agent: work
    max_retries: 5
    inputs: { name: guard }
    conditions: [ { if: "{{ 1 > 0 }}", then: fail } ]
"#,
    )
    .await;
    let state = finish(&node, &run).await;
    assert_eq!(
        (state.finished, state.tasks()["guard"].status),
        (Some(RunStatus::Failed), TaskStatus::Failed)
    );
    assert_eq!(journal.attempts("guard"), 0);
}

#[tokio::test(start_paused = true)]
async fn exceeding_the_timeout_fails_the_attempt() {
    let (node, journal) = node().await;
    let run = start(&node, "name: slow\ntasks:\n  - { id: s, name: S, agent: work, timeout: 1, max_retries: 1, inputs: { name: s, sleep_ms: 5000 } }\n").await;
    let state = finish(&node, &run).await;
    assert_eq!(state.tasks()["s"].status, TaskStatus::Failed);
    assert_eq!(journal.attempts("s"), 2);
    assert!(
        state.tasks()["s"]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 1 s")
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_running_tasks_and_cancels_the_rest() {
    let (node, _journal) = node().await;
    let run = start(
        &node,
        r#"
name: long
tasks:
  - { id: long, name: Long, agent: work, inputs: { name: long, sleep_ms: 30000 } }
  - { id: next, name: Next, agent: work, depends_on: [long], inputs: { name: next } }
"#,
    )
    .await;
    wait_until(&node, &run, |state| {
        state.tasks()["long"].status == TaskStatus::Running
    })
    .await;
    node.cancel_run(&run, "bob").await.unwrap();
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Cancelled));
    assert_eq!(
        statuses(&state),
        BTreeMap::from([
            ("long", TaskStatus::Cancelled),
            ("next", TaskStatus::Cancelled)
        ])
    );
    let error = node.cancel_run(&run, "bob").await.unwrap_err();
    assert!(
        matches!(error, NodeError::Engine(EngineError::RunFinished { .. })),
        "{error}"
    );
}

const GATED: &str = r#"
name: gated
separate_approver: true
tasks:
  - { id: build, name: Build, agent: echo, inputs: { artifact: "app-1.0" } }
  - { id: sign_off, name: Sign off, agent: human_review, depends_on: [build], requires_approval: true, inputs: { artifact: "{{ tasks.build.outputs.artifact }}" } }
  - { id: deploy, name: Deploy, agent: echo, depends_on: [sign_off], inputs: { by: "{{ tasks.sign_off.outputs.approver }}" } }
"#;

fn decision(approved: bool, approver: &str) -> Decision {
    Decision {
        approved,
        approver: approver.into(),
        approver_id: None,
        comment: Some("looks right".into()),
    }
}

#[tokio::test]
async fn an_approved_gate_runs_the_task_with_the_decision_once() {
    let (node, _journal) = node().await;
    let run = start(&node, GATED).await;
    let waiting = wait_until(&node, &run, |state| {
        state.tasks()["sign_off"].status == TaskStatus::WaitingApproval
    })
    .await;
    let approval = waiting.tasks()["sign_off"].approval.clone().unwrap();
    assert_eq!(
        approval.inputs,
        json!({"artifact": "app-1.0"}),
        "bound to the rendered inputs"
    );
    let pending = node.pending_approvals(None).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.run_id.as_str(), p.task.as_str()))
            .collect::<Vec<_>>(),
        [(run.as_str(), "sign_off")]
    );

    let refused = node
        .decide(&run, &"sign_off".into(), decision(true, "ada"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, NodeError::Engine(EngineError::ApprovalRefused(_))),
        "the starter may not approve: {refused}"
    );
    let stale = Some("0".repeat(64));
    assert!(matches!(
        node.decide(&run, &"sign_off".into(), decision(true, "bob"), stale)
            .await,
        Err(NodeError::Engine(EngineError::ApprovalRefused(_)))
    ));
    let exact = Some(approval.inputs_digest.clone());
    node.decide(&run, &"sign_off".into(), decision(true, "bob"), exact)
        .await
        .unwrap();

    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!(
        state.tasks()["sign_off"].outputs.clone().unwrap(),
        json!({"approver": "bob", "decision": "approved", "comment": "looks right"})
    );
    assert_eq!(
        state.tasks()["deploy"].outputs.clone().unwrap(),
        json!({"by": "bob"})
    );
    let again = node
        .decide(&run, &"sign_off".into(), decision(true, "carol"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(again, NodeError::Engine(EngineError::RunFinished { .. })),
        "a second decision is refused: {again}"
    );
}

#[tokio::test]
async fn separation_of_duties_compares_accounts_not_names() {
    let (node, _journal) = node().await;
    let ada = Person {
        name: "ada@example.com".into(),
        user_id: Some("user-ada".into()),
    };
    let run = start_by(&node, GATED, &ada, BTreeMap::new()).await.unwrap();
    wait_until(&node, &run, |state| {
        state.tasks()["sign_off"].status == TaskStatus::WaitingApproval
    })
    .await;
    let as_account = |name: &str, user_id: &str| Decision {
        approver_id: Some(user_id.into()),
        ..decision(true, name)
    };
    // The starter's account under another name is still the starter.
    let refused = node
        .decide(
            &run,
            &"sign_off".into(),
            as_account("ada-alias", "user-ada"),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, NodeError::Engine(EngineError::ApprovalRefused(ref why)) if why.contains("requires a different approver")),
        "{refused}"
    );
    node.decide(
        &run,
        &"sign_off".into(),
        as_account("bob@example.com", "user-bob"),
        None,
    )
    .await
    .unwrap();
    let state = finish(&node, &run).await;
    let decided = state.tasks()["sign_off"]
        .approval
        .clone()
        .unwrap()
        .decision
        .unwrap();
    assert_eq!(
        (
            decided.decision.approver.as_str(),
            decided.decision.approver_id.as_ref().map(UserId::as_str)
        ),
        ("bob@example.com", Some("user-bob")),
        "the run's log keeps who decided, by account"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_is_cancelled_when_its_run_actor_dies() {
    let (node, journal) = node().await;
    let run = start(
        &node,
        "name: slow\ntasks:\n  - { id: slow, name: Slow, agent: work, inputs: { name: slow, sleep_ms: 5000 } }\n",
    )
    .await;
    wait_until(&node, &run, |_| journal.attempts("slow") == 1).await;
    let suffix = format!(".run.{run}");
    let name = ractor::registry::registered()
        .into_iter()
        .find(|name| name.ends_with(&suffix))
        .expect("the run actor is registered");
    let actor = ractor::registry::where_is(name).expect("the run actor is alive");
    // Killed: no post_stop, no supervisor restart; only its dropped state can reach
    // the attempt.
    actor.kill();
    for _ in 0..200 {
        if !journal.cancelled.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *journal.cancelled.lock().unwrap(),
        ["slow"],
        "the attempt outlived its run actor"
    );
}

#[tokio::test]
async fn a_decision_after_the_gate_expired_is_refused_on_the_engines_clock() {
    let journal = Arc::new(Journal::default());
    let clock = Arc::new(troupe_store::clock::ManualClock::starting_at(
        troupe_store::clock::now_ms(),
    ));
    let mut settings = settings("mem://");
    settings.engine.approval_timeout_secs = 3600;
    let node = NodeBuilder::new(settings)
        .agent_kind(Arc::new(Work { journal }))
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    let run = start(&node, GATED).await;
    wait_until(&node, &run, |state| {
        state.tasks()["sign_off"].status == TaskStatus::WaitingApproval
    })
    .await;
    // An hour passes on the engine's clock, not on the test's.
    clock.advance_secs(3601);
    let refused = node
        .decide(&run, &"sign_off".into(), decision(true, "bob"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, NodeError::Engine(EngineError::ApprovalRefused(ref why)) if why == "the approval has expired"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_rejected_gate_fails_closed() {
    let (node, _journal) = node().await;
    let run = start(&node, GATED).await;
    wait_until(&node, &run, |state| {
        state.tasks()["sign_off"].status == TaskStatus::WaitingApproval
    })
    .await;
    let premature = node
        .decide(&run, &"deploy".into(), decision(true, "bob"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            premature,
            NodeError::Engine(EngineError::NotWaitingForApproval { .. })
        ),
        "{premature}"
    );
    node.decide(&run, &"sign_off".into(), decision(false, "bob"), None)
        .await
        .unwrap();
    let state = finish(&node, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Failed));
    assert_eq!(
        (
            state.tasks()["sign_off"].status,
            state.tasks()["deploy"].status
        ),
        (TaskStatus::Rejected, TaskStatus::Cancelled)
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_gate_fails_closed() {
    let (node, _journal) = node().await;
    let run = start(&node, "name: expiring\ntasks:\n  - { id: ok, name: OK, agent: human_review, requires_approval: true, approval_timeout: 1 }\n").await;
    let state = finish(&node, &run).await;
    assert_eq!(
        (state.finished, state.tasks()["ok"].status),
        (Some(RunStatus::Failed), TaskStatus::Rejected)
    );
    let events = node.run_events(&run).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.event, RunEvent::ApprovalExpired { .. }))
    );
}

#[tokio::test]
async fn variable_overrides_of_the_wrong_type_or_name_are_refused() {
    let (node, _journal) = node().await;
    let yaml = "name: vars\nvariables: { count: 3 }\ntasks:\n  - { id: x, name: X, agent: echo, inputs: { n: \"{{ variables.count }}\" } }\n";
    let wrong = start_as(
        &node,
        yaml,
        "ada",
        BTreeMap::from([("count".to_string(), json!("three"))]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(wrong, NodeError::Engine(EngineError::InvalidVariables(_))),
        "{wrong}"
    );
    let unknown = start_as(
        &node,
        yaml,
        "ada",
        BTreeMap::from([("cuont".to_string(), json!(1))]),
    )
    .await
    .unwrap_err();
    assert!(unknown.to_string().contains("cuont"), "{unknown}");
    let run = start_as(
        &node,
        yaml,
        "ada",
        BTreeMap::from([("count".to_string(), json!(7))]),
    )
    .await
    .unwrap();
    assert_eq!(
        finish(&node, &run).await.tasks()["x"]
            .outputs
            .clone()
            .unwrap(),
        json!({"n": 7})
    );
}

#[tokio::test]
async fn a_restarted_node_resumes_the_run_without_rerunning_completed_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("store").display());
    let journal = Arc::new(Journal::default());
    let first = node_with(&url, journal.clone()).await;
    let run = start(
        &first,
        r#"
name: resumable
tasks:
  - { id: a, name: A, agent: work, inputs: { name: a } }
  - { id: b, name: B, agent: work, depends_on: [a], inputs: { name: b, sleep_ms: 400 } }
  - { id: c, name: C, agent: work, depends_on: [b], inputs: { name: c } }
"#,
    )
    .await;
    wait_until(&first, &run, |state| {
        state.tasks()["b"].status == TaskStatus::Running
    })
    .await;
    first.shutdown().await;

    let second = reopen(&url, journal.clone()).await;
    let state = finish(&second, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!(
        journal.attempts("a"),
        1,
        "a completed before the restart and must not run again"
    );
    assert_eq!(journal.attempts("c"), 1);
    let events = second.run_events(&run).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert_eq!(
        seqs,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "the log has no gaps"
    );
    second.shutdown().await;
}

#[tokio::test]
async fn a_restarted_node_resumes_a_fan_out_with_the_same_children() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("store").display());
    let journal = Arc::new(Journal::default());
    let first = node_with(&url, journal.clone()).await;
    let run = start(
        &first,
        r#"
name: lanes
variables:
  modules: [m0, m1, m2]
tasks:
  - id: code
    name: Code
    agent: work
    for_each: "{{ variables.modules }}"
    concurrency: 1
    inputs: { name: "{{ item }}", sleep_ms: 300 }
"#,
    )
    .await;
    wait_until(&first, &run, |state| {
        state
            .tasks()
            .get("code[1]")
            .is_some_and(|child| child.status == TaskStatus::Running)
    })
    .await;
    first.shutdown().await;

    let second = reopen(&url, journal.clone()).await;
    let state = finish(&second, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!(
        journal.attempts("m0"),
        1,
        "a child that completed does not run again"
    );
    assert_eq!(journal.attempts("m2"), 1);
    let outputs = state.tasks()["code"].outputs.clone().unwrap();
    let names: Vec<&str> = outputs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m0", "m1", "m2"]);
    let events = second.run_events(&run).await.unwrap();
    let expansions = events
        .iter()
        .filter(|e| matches!(e.event, RunEvent::FanOutExpanded { .. }))
        .count();
    assert_eq!(
        expansions, 1,
        "the resumed run read its children from the log"
    );
    second.shutdown().await;
}

/// An attempt that was running when its run's owner stopped, whose outcome the node
/// that ran it recorded, is resolved from that record by the next owner: it does not
/// run again, its recorded outputs flow downstream, and the records go with the run.
#[tokio::test]
async fn a_recorded_outcome_resolves_an_interrupted_attempt_without_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("store").display());
    let journal = Arc::new(Journal::default());
    let first = node_with(&url, journal.clone()).await;
    let run = start(
        &first,
        r#"
name: recorded
tasks:
  - { id: b, name: B, agent: work, inputs: { name: b, sleep_ms: 60000 } }
  - { id: c, name: C, agent: work, depends_on: [b], inputs: { name: c, from_b: "{{ tasks.b.outputs.from }}" } }
"#,
    )
    .await;
    wait_until(&first, &run, |state| {
        state.tasks()["b"].status == TaskStatus::Running
    })
    .await;
    let key = format!("{run}:b:1");
    let outputs = json!({"succeeded": {"outputs": {"from": "another node"}, "cost_usd": 0.5}});
    first
        .store()
        .record_attempt_outcome(&troupe_store::AttemptRecord {
            run_id: run.clone(),
            idempotency_key: key.clone(),
            epoch: 1,
            node: "elsewhere".into(),
            outcome: outputs,
        })
        .await
        .unwrap();
    first.shutdown().await;

    let second = reopen(&url, journal.clone()).await;
    let state = finish(&second, &run).await;
    assert_eq!(state.finished, Some(RunStatus::Completed));
    assert_eq!(
        journal.attempts("b"),
        1,
        "only the attempt the stop cut short"
    );
    assert_eq!(
        state.tasks()["c"]
            .outputs
            .as_ref()
            .map(|outputs| outputs["from_b"].clone()),
        Some(json!("another node")),
        "the recorded outputs flow downstream"
    );
    assert_eq!(second.store().attempt_outcome(&key).await.unwrap(), None);
    second.shutdown().await;
}

/// A node on a store another node just closed: the embedded engine releases its lock
/// file shortly after the last handle is dropped.
async fn reopen(url: &str, journal: Arc<Journal>) -> Node {
    for _ in 0..100 {
        let node = NodeBuilder::new(settings(url))
            .agent_kind(Arc::new(Work {
                journal: journal.clone(),
            }))
            .start()
            .await;
        match node {
            Ok(node) => return node,
            Err(error) if error.to_string().contains("locked") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("{error}"),
        }
    }
    panic!("the store stayed locked for 5 s")
}

/// The attack: fill a node with more than a thousand waiting runs, restart it, and the
/// oldest could never be decided (start-up resumed only the newest 1,000). Every run
/// left running is resumed, and every gate is listed.
#[tokio::test]
async fn after_a_restart_every_running_run_is_resumed_not_only_the_newest_thousand() {
    const RUNS: usize = 1001;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}", dir.path().join("store").display());
    let journal = Arc::new(Journal::default());
    let first = node_with(&url, journal.clone()).await;
    let (workflow, _) = first
        .save_workflow(GATED, "gated.yaml", "test")
        .await
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let run = first
            .start_run(&workflow, RunOptions::default(), &Person::named("ada"))
            .await
            .unwrap();
        runs.push(run);
    }
    for run in &runs {
        wait_until(&first, run, |state| {
            state.tasks()["sign_off"].status == TaskStatus::WaitingApproval
        })
        .await;
    }
    first.shutdown().await;

    let second = reopen(&url, journal).await;
    assert_eq!(second.pending_approvals(None).await.unwrap().len(), RUNS);
    let oldest = &runs[0];
    second
        .decide(oldest, &"sign_off".into(), decision(true, "bob"), None)
        .await
        .expect("the oldest run is live after the restart");
    assert_eq!(
        finish(&second, oldest).await.finished,
        Some(RunStatus::Completed)
    );
    second.shutdown().await;
}

/// The fence, in the engine: another node takes the run over while it waits for a
/// person. The decision that arrives here is refused (the run moved), this node's actor
/// stops, nothing more lands in the log from its epoch, and the run is not ended failed.
#[tokio::test]
async fn a_node_that_lost_a_run_appends_nothing_more_to_it() {
    let (node, _) = node().await;
    let run = start(&node, GATED).await;
    wait_until(&node, &run, |state| {
        state.tasks()["sign_off"].status == TaskStatus::WaitingApproval
    })
    .await;
    let logged = node.store().run_events(&run).await.unwrap().len();
    let taken = node.store().take_over_run(&run, 1, "node-b").await.unwrap();
    assert_eq!(taken, Some(2));
    let refused = node
        .decide(&run, &"sign_off".into(), decision(true, "bob"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            NodeError::Engine(EngineError::Store(troupe_store::StoreError::Fenced {
                epoch: 1,
                ..
            }))
        ),
        "{refused}"
    );
    let mut answer = None;
    for _ in 0..200 {
        let again = node
            .decide(&run, &"sign_off".into(), decision(true, "bob"), None)
            .await;
        if let Err(NodeError::Engine(EngineError::RunElsewhere { owner, .. })) = &again {
            answer = Some(owner.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        answer.as_deref(),
        Some("node-b"),
        "the fenced actor stopped"
    );
    assert_eq!(node.store().run_events(&run).await.unwrap().len(), logged);
    let record = node.store().run(&run).await.unwrap();
    assert_eq!(
        (record.status, record.owner.as_str(), record.epoch),
        (RunStatus::Running, "node-b", 2)
    );
}

/// The networks a project's owner allows reach the project's attempts, and a withdrawal
/// closes them again: an attempt reads them as its project's policy says at the time.
#[tokio::test]
async fn an_attempt_gets_the_networks_its_project_allows_now() {
    let (node, _) = node().await;
    let allow = |networks: Vec<&str>| crate::policy::PolicyChange {
        allowed_networks: Some(networks.into_iter().map(String::from).collect()),
        ..Default::default()
    };
    let project = troupe_store::ProjectId::from("default");
    let yaml = "name: Reach\ntasks:\n  - { id: a, name: A, agent: work, inputs: { name: a, report_networks: true } }\n";
    for (networks, expected) in [
        (vec!["10.1.0.0/16"], json!(["10.1.0.0/16"])),
        (vec![], json!([])),
    ] {
        crate::policy::change_project_policy(
            node.store(),
            node.audit(),
            &project,
            allow(networks),
            None,
            "owner",
        )
        .await
        .unwrap();
        let run = start(&node, yaml).await;
        let state = finish(&node, &run).await;
        assert_eq!(
            state.tasks()["a"].outputs.as_ref().unwrap()["networks"],
            expected
        );
    }
    let refused = crate::policy::change_project_policy(
        node.store(),
        node.audit(),
        &project,
        allow(vec!["169.254.169.254/32"]),
        None,
        "owner",
    )
    .await;
    match refused {
        Err(NodeError::InvalidRequest(message)) => {
            assert!(message.contains("only the operator may open"), "{message}")
        }
        other => panic!("the metadata service was opened to a project: {other:?}"),
    }
}
