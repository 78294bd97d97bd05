//! The quality figure of `troupe bench inference`: how much of what the models answer
//! the agents can use. The crew's delivery pipeline (`examples/deliver-feature.yaml`
//! without its deployment: plan, design, one lane per module with its code, its tests
//! and their run, then a review) runs on a fixed set of small specifications, in a node
//! of its own on a scratch store, with the settings' models and provider chain. From the
//! cost ledger: per provider and model, the answers the chain's gate passed over, those
//! the agents refused (malformed, or a loop), and the share they used. From the runs:
//! the share of generated modules whose generated tests pass, per provider that wrote
//! the module.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use troupe_config::Settings;
use troupe_engine::state::TaskState;
use troupe_node::{Node, NodeBuilder, RunDetail, RunOptions};
use troupe_store::events::{Person, TaskStatus};
use troupe_store::{CallRow, ProjectId};

/// The specifications, in the order they are taken (`--quality-specs` takes the first n).
const SPECS: [&str; 4] = [
    "a command-line todo list that can add, list and complete tasks, saved to a JSON file",
    "a temperature converter between Celsius, Fahrenheit and Kelvin that rejects \
     temperatures below absolute zero",
    "a word counter that reports the ten most frequent words of a text file",
    "a shopping cart that adds items with prices and quantities and totals them with a \
     discount code",
];

/// The delivery pipeline of `examples/deliver-feature.yaml` up to its review: its
/// deployment waits for a person, whom a benchmark has not got.
fn pipeline() -> anyhow::Result<&'static str> {
    const EXAMPLE: &str = include_str!("../../../examples/deliver-feature.yaml");
    EXAMPLE
        .split_once("\n  - id: deploy\n")
        .map(|(before, _)| before)
        .context("examples/deliver-feature.yaml has no `deploy` task to leave out")
}

#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub specs: usize,
    pub seconds: f64,
    /// By provider name: the answers it gave and what became of them.
    pub providers: BTreeMap<String, ProviderQuality>,
    pub runs: Vec<SpecOutcome>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderQuality {
    pub model: String,
    pub local: bool,
    pub calls: u64,
    /// Calls that returned an answer (the rest failed: a timeout, an outage).
    pub answers: u64,
    /// Answers the chain's gate passed over for the next provider.
    pub escalated: u64,
    /// Answers served and then refused by the agent (malformed, or a loop)...
    pub refused: u64,
    /// ...by agent kind.
    pub refused_by_agent: BTreeMap<String, u64>,
    /// Answers served and used.
    pub accepted: u64,
    /// `accepted` ÷ `answers`.
    pub accepted_share: f64,
    /// Modules whose code this provider wrote...
    pub modules: u64,
    /// ...whose generated tests ran and all passed.
    pub modules_passing: u64,
    pub modules_passing_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecOutcome {
    pub goal: String,
    pub run_id: String,
    pub status: String,
    /// Modules written, and those whose tests passed.
    pub modules: u64,
    pub modules_passing: u64,
    /// Each module written: what became of its tests.
    pub lanes: Vec<Lane>,
    /// Why the run failed, when it did.
    pub failure: Option<String>,
    pub seconds: f64,
}

/// One module of a run: its file, who wrote it, and its tests' run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lane {
    pub file: String,
    pub provider: String,
    pub passed: bool,
    /// The test runner's counts, when the tests ran...
    pub tests_passed: Option<u64>,
    pub tests_failed: Option<u64>,
    /// ...or why there was no run (the test writer's or the runner's error).
    pub problem: Option<String>,
}

/// Runs the pipeline on the first `specs` specifications, at once, in a node whose
/// store and work directories are under `scratch`.
pub async fn quality(
    settings: &Settings,
    specs: usize,
    scratch: &Path,
) -> anyhow::Result<QualityReport> {
    let node = bench_node(settings, scratch).await?;
    let outcome = run_specs(&node, specs, scratch).await;
    node.shutdown().await;
    outcome
}

async fn run_specs(node: &Node, specs: usize, scratch: &Path) -> anyhow::Result<QualityReport> {
    let (workflow, _) = node
        .save_workflow(pipeline()?, "quality.yaml", "bench")
        .await?;
    let started = Instant::now();
    let mut runs = Vec::new();
    for (index, goal) in SPECS.iter().take(specs).enumerate() {
        let work_dir = scratch.join(format!("spec-{index}"));
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating {}", work_dir.display()))?;
        let variables = BTreeMap::from([
            ("goal".to_string(), json!(goal)),
            (
                "work_dir".to_string(),
                json!(work_dir.display().to_string()),
            ),
        ]);
        let options = RunOptions {
            variables,
            ..RunOptions::default()
        };
        let run = node
            .start_run(&workflow, options, &Person::named("bench"))
            .await?;
        runs.push((goal, run));
    }
    let mut providers = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (goal, run) in runs {
        let detail = node.finished_run(&run).await?;
        let calls = node.store().calls_of_run(run.as_str()).await?;
        tally_calls(&mut providers, &calls);
        let lanes = tally_modules(&mut providers, &detail.tasks);
        outcomes.push(SpecOutcome {
            goal: goal.to_string(),
            run_id: run.as_str().to_string(),
            status: detail.record.status.as_str().into(),
            modules: lanes.len() as u64,
            modules_passing: lanes.iter().filter(|lane| lane.passed).count() as u64,
            lanes,
            failure: detail.failure_reason.clone(),
            seconds: run_seconds(&detail),
        });
    }
    for figures in providers.values_mut() {
        figures.accepted_share = share(figures.accepted, figures.answers);
        figures.modules_passing_share = share(figures.modules_passing, figures.modules);
    }
    Ok(QualityReport {
        specs: outcomes.len(),
        seconds: started.elapsed().as_secs_f64(),
        providers,
        runs: outcomes,
    })
}

/// A node on a scratch store with the settings' models, provider chain, secrets and
/// privacy mode, whose agents write under `scratch`, and whose default project may run
/// the generated tests.
async fn bench_node(settings: &Settings, scratch: &Path) -> anyhow::Result<Node> {
    let store = format!("surrealkv://{}", scratch.join("store").display());
    let mut node_settings = Settings::defaults_with_store(&store);
    node_settings.models = settings.models.clone();
    node_settings.models.serve = true;
    node_settings.providers = settings.providers.clone();
    node_settings.secrets = settings.secrets.clone();
    node_settings.privacy = settings.privacy.clone();
    node_settings.agents = settings.agents.clone();
    node_settings.agents.workspace_roots = vec![scratch.display().to_string()];
    let node = NodeBuilder::new(node_settings).start().await?;
    let grant = troupe_node::policy::PolicyChange {
        allowed_kinds: Some(vec!["test_runner".into()]),
        ..Default::default()
    };
    troupe_node::policy::change_project_policy(
        node.store(),
        node.audit(),
        &ProjectId::from("default"),
        grant,
        None,
        "bench",
    )
    .await?;
    Ok(node)
}

/// Adds each call of a run to its provider's figures.
fn tally_calls(providers: &mut BTreeMap<String, ProviderQuality>, calls: &[CallRow]) {
    for call in calls {
        let figures = providers.entry(call.provider.clone()).or_default();
        figures.model.clone_from(&call.model);
        figures.local = call.local;
        figures.calls += 1;
        if call.error.is_some() {
            continue;
        }
        figures.answers += 1;
        match (call.served, &call.refused) {
            (false, _) => figures.escalated += 1,
            (true, Some(_)) => {
                figures.refused += 1;
                let agent = call.agent.clone().unwrap_or_default();
                *figures.refused_by_agent.entry(agent).or_default() += 1;
            }
            (true, None) => figures.accepted += 1,
        }
    }
}

/// Adds a run's modules to the figures of the provider that wrote each, and returns
/// what became of each module's tests.
fn tally_modules(
    providers: &mut BTreeMap<String, ProviderQuality>,
    tasks: &[TaskState],
) -> Vec<Lane> {
    let tasks: HashMap<&str, _> = tasks.iter().map(|task| (task.id.as_str(), task)).collect();
    let mut lanes = Vec::new();
    for index in 0.. {
        let Some(code) = tasks.get(format!("code[{index}]").as_str()) else {
            break;
        };
        let Some(outputs) = code
            .outputs
            .as_ref()
            .filter(|_| code.status == TaskStatus::Completed)
        else {
            continue;
        };
        let task = |name: &str| tasks.get(format!("{name}[{index}]").as_str()).copied();
        let lane = lane(outputs, task("tests"), task("run_tests"));
        let figures = providers.entry(lane.provider.clone()).or_default();
        figures.modules += 1;
        figures.modules_passing += u64::from(lane.passed);
        lanes.push(lane);
    }
    lanes
}

/// The lane of a module whose code task gave `outputs`, from its test writer's and
/// test runner's tasks (absent when the run stopped before them).
fn lane(outputs: &Value, tests: Option<&TaskState>, ran: Option<&TaskState>) -> Lane {
    let ran_outputs = ran
        .filter(|ran| ran.status == TaskStatus::Completed)
        .and_then(|ran| ran.outputs.as_ref());
    let problem = match (tests, ran, ran_outputs) {
        (_, _, Some(_)) => None,
        (_, Some(ran), None) if ran.error.is_some() => ran.error.clone(),
        (Some(tests), _, _) if tests.error.is_some() => tests.error.clone(),
        _ => Some("the tests did not run".into()),
    };
    Lane {
        file: outputs["file"].as_str().unwrap_or_default().to_string(),
        provider: outputs["model"]["provider"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        passed: ran_outputs.is_some_and(suite_passed),
        tests_passed: ran_outputs.and_then(|outputs| outputs["passed"].as_u64()),
        tests_failed: ran_outputs.and_then(|outputs| outputs["failed"].as_u64()),
        problem,
    }
}

/// A suite passed when it ran at least one test and none failed: pytest finding no
/// test is not a pass.
fn suite_passed(outputs: &Value) -> bool {
    outputs["all_passed"] == true && outputs["passed"].as_u64().is_some_and(|n| n > 0)
}

fn run_seconds(run: &RunDetail) -> f64 {
    let millis = (run.record.finished_at_ms - run.record.created_at_ms).max(0);
    Duration::from_millis(millis.unsigned_abs()).as_secs_f64()
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl QualityReport {
    /// Lines for people: one per provider, one per specification.
    pub fn table(&self) -> String {
        let mut lines = vec![format!(
            "quality: the delivery pipeline on {} specification(s) in {:.0} s",
            self.specs, self.seconds
        )];
        for (name, figures) in &self.providers {
            lines.push(format!(
                "  {name} ({}{}): {} of {} answers used ({:.0}%), {} refused by agents, {} \
                 escalated; {} of {} modules pass their tests ({:.0}%)",
                figures.model,
                if figures.local { ", local" } else { "" },
                figures.accepted,
                figures.answers,
                figures.accepted_share * 100.0,
                figures.refused,
                figures.escalated,
                figures.modules_passing,
                figures.modules,
                figures.modules_passing_share * 100.0,
            ));
        }
        for run in &self.runs {
            lines.push(format!(
                "  {}: {} in {:.0} s, {} of {} modules pass",
                run.goal, run.status, run.seconds, run.modules_passing, run.modules
            ));
            for lane in &run.lanes {
                let result = match (&lane.problem, lane.tests_passed, lane.tests_failed) {
                    (Some(problem), _, _) => problem.chars().take(160).collect(),
                    (None, passed, failed) => format!(
                        "{} passed, {} failed",
                        passed.unwrap_or(0),
                        failed.unwrap_or(0)
                    ),
                };
                lines.push(format!("    {} ({}): {result}", lane.file, lane.provider));
            }
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(provider: &str, served: bool, refused: Option<&str>, error: Option<&str>) -> CallRow {
        serde_json::from_value(json!({
            "request_id": "r", "at_ms": 0, "day": "2026-12-07", "project": "default",
            "provider": provider, "model": format!("{provider}-model"), "local": provider == "local",
            "task_type": "code", "agent": "architect", "tokens_in": 10, "tokens_out": 5, "latency_ms": 1,
            "cost_usd": 0.0, "baseline_usd": 0.0, "escalated": !served, "served": served,
            "refused": refused, "error": error,
        }))
        .unwrap()
    }

    fn task(id: &str, status: &str, outputs: Value) -> TaskState {
        serde_json::from_value(json!({
            "id": id, "status": status, "attempts": 1, "inputs": null, "outputs": outputs,
            "error": null, "retry_at_ms": null, "started_at_ms": 0, "finished_at_ms": 1,
            "cost_usd": 0.0, "approval": null, "node": null,
        }))
        .unwrap()
    }

    /// An answer is used, refused by its agent, or passed over by the chain; a failed
    /// call gave no answer. Each counts against the provider that gave it.
    #[test]
    fn each_answer_counts_once_against_its_provider() {
        let mut providers = BTreeMap::new();
        let calls = [
            call("local", false, None, None),
            call("cloud", true, Some("the answer loops"), None),
            call("local", true, None, None),
            call("local", true, Some("no code block"), None),
            call("local", false, None, Some("timed out")),
        ];
        tally_calls(&mut providers, &calls);
        let local = &providers["local"];
        assert_eq!(
            (
                local.calls,
                local.answers,
                local.escalated,
                local.refused,
                local.accepted
            ),
            (4, 3, 1, 1, 1)
        );
        assert!(local.local);
        let cloud = &providers["cloud"];
        assert_eq!((cloud.answers, cloud.refused, cloud.accepted), (1, 1, 0));
        assert_eq!(cloud.model, "cloud-model");
        assert_eq!(
            cloud.refused_by_agent,
            BTreeMap::from([("architect".into(), 1)])
        );
    }

    /// The pipeline is the example's, every task of it up to the review.
    #[test]
    fn the_pipeline_is_the_example_without_its_deployment() {
        let kinds = [
            "planner",
            "architect",
            "code_generator",
            "test_generator",
            "test_runner",
            "code_review",
        ];
        let workflow = troupe_workflow::parse_workflow(pipeline().unwrap(), "quality.yaml", &kinds)
            .unwrap_or_else(|diagnostics| panic!("{diagnostics:?}"));
        let ids: Vec<&str> = workflow.tasks.iter().map(|task| task.id.as_str()).collect();
        assert_eq!(
            ids,
            ["plan", "design", "code", "tests", "run_tests", "review"]
        );
    }

    /// A module whose tests never ran says why: the test writer's error.
    #[test]
    fn a_lane_without_a_test_run_names_what_stopped_it() {
        let code = json!({"file": "todo.py", "model": {"provider": "local"}});
        let mut tests = task("tests[0]", "failed", Value::Null);
        tests.error = Some("test_generator: the model's answer was unusable".into());
        let lane = lane(&code, Some(&tests), None);
        assert!(!lane.passed);
        assert_eq!(
            (lane.file.as_str(), lane.provider.as_str()),
            ("todo.py", "local")
        );
        assert_eq!(
            lane.problem.as_deref(),
            Some("test_generator: the model's answer was unusable")
        );
        assert_eq!(lane.tests_passed, None);
    }

    /// A module counts for the provider that wrote its code, and passes only when its
    /// suite ran at least one test and none failed.
    #[test]
    fn a_module_passes_only_when_its_tests_ran_and_passed() {
        let by = |provider: &str| json!({"file": "m.py", "model": {"provider": provider}});
        let ran = |passed: u64, all_passed: bool| json!({"passed": passed, "failed": u64::from(!all_passed), "all_passed": all_passed});
        let tasks = [
            task("code[0]", "completed", by("local")),
            task("code[1]", "completed", by("local")),
            task("code[2]", "completed", by("cloud")),
            task("code[3]", "failed", Value::Null),
            task("run_tests[0]", "completed", ran(3, true)),
            task("run_tests[1]", "completed", ran(0, true)),
            task("run_tests[2]", "completed", ran(2, false)),
        ];
        let mut providers = BTreeMap::new();
        let lanes = tally_modules(&mut providers, &tasks);
        let passed: Vec<bool> = lanes.iter().map(|lane| lane.passed).collect();
        assert_eq!(passed, [true, false, false]);
        assert_eq!(lanes[2].tests_failed, Some(1));
        assert_eq!(
            (
                providers["local"].modules,
                providers["local"].modules_passing
            ),
            (2, 1)
        );
        assert_eq!(
            (
                providers["cloud"].modules,
                providers["cloud"].modules_passing
            ),
            (1, 0)
        );
    }
}
