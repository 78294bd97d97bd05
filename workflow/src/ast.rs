//! The checked workflow: what a run executes and what the builder edits.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::Graph;

/// A parsed and validated workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// Stable identifier; the slug of `name` when the source has none.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The definition's own version, `"1.0"` unless the source says otherwise.
    pub version: String,
    /// Defaults a run may override (but not extend).
    pub variables: BTreeMap<String, Value>,
    pub triggers: Triggers,
    /// When set, the person who started a run may not approve its gates.
    pub separate_approver: bool,
    /// The project the workflow and its runs belong to: who may see, run and approve
    /// them, and whose memory its agents use. `None` is the node's `default` project.
    pub project: Option<String>,
    /// USD the whole run may spend on paid model calls; `None`: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// What a call that would go over a budget (the run's or a task's) does.
    #[serde(default)]
    pub on_budget: OnBudget,
    /// In source order; ids are unique and dependencies form a DAG.
    pub tasks: Vec<Task>,
}

/// What a model call that would go over a budget does: it is never made; the task
/// fails (`fail`), or the call goes to local models only (`local_only`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBudget {
    #[default]
    Fail,
    LocalOnly,
}

impl OnBudget {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::LocalOnly => "local_only",
        }
    }
}

/// What starts a run besides a person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Triggers {
    pub on_push: Option<PushTrigger>,
    pub schedule: Option<ScheduleTrigger>,
}

/// A signed push webhook to one of these branches starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushTrigger {
    pub branches: Vec<String>,
    /// The name, in the node's secret store, of the secret a delivery must prove it
    /// knows; without one every delivery is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The run variable a push fills: `variables.push.repository`, `.branch`, `.commit`.
pub const PUSH_VARIABLE: &str = "push";

/// A five-field cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleTrigger {
    pub cron: String,
    /// IANA zone name; UTC when absent.
    pub timezone: Option<String>,
    /// What a tick missed while no node was up becomes.
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// What happens to ticks missed while no node was up: the latest one fires when a node
/// is back (`once`), or none does (`skip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    #[default]
    Once,
    Skip,
}

impl CatchUp {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Skip => "skip",
        }
    }
}

/// One agent invocation in the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Matches `[a-z0-9_]+`, unique within the workflow.
    pub id: String,
    pub name: String,
    /// An agent kind the runtime knows.
    pub agent: String,
    /// Values may hold `{{ ... }}` templates at any depth, kept as text until a run renders them.
    pub inputs: BTreeMap<String, Value>,
    pub depends_on: Vec<String>,
    pub conditions: Vec<Condition>,
    /// Per attempt; positive. YAML key `timeout`.
    pub timeout_secs: Option<u64>,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub requires_approval: bool,
    /// Positive; only with `requires_approval`. YAML key `approval_timeout`.
    pub approval_timeout_secs: Option<u64>,
    /// USD, finite and not negative: what one attempt is expected to cost (one item's,
    /// on a fan-out). `0`: unknown.
    pub estimated_cost: f64,
    /// USD this task may spend on paid model calls, its fan-out children together;
    /// `None`: only the run's budget applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// Node labels (`cluster.labels`) the task needs: it runs only on a node that has
    /// every one. Empty: any node.
    #[serde(default)]
    pub runs_on: Vec<String>,
    /// Set when the task runs once per item of a list (`for_each`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOut>,
}

/// `for_each` and the keys that go with it: the task becomes one child per item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOut {
    /// Exactly one template, whose value must be a list when the task is ready.
    pub for_each: String,
    /// The item's name in the task's inputs and conditions (YAML key `as`).
    pub item_name: String,
    /// The most items the list may have; at most [`crate::limits::FAN_OUT_ITEMS_MAX`].
    pub max_items: u32,
    /// How many children run at once; `None`: as many as the pool takes.
    pub concurrency: Option<u32>,
    /// A child that fails after its retries cancels the siblings not yet started.
    pub fail_fast: bool,
}

impl FanOut {
    /// The id of the child for item `index`: `code[3]`.
    pub fn child_id(task: &str, index: usize) -> String {
        format!("{task}[{index}]")
    }
}

/// Items a fan-out may have when `max_items` is absent.
pub const DEFAULT_MAX_ITEMS: u32 = 50;
/// The item's name when `as` is absent.
pub const DEFAULT_ITEM_NAME: &str = "item";

/// `if` decides between `then` and, when present, `else`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The source text: a string with `{{ }}` templates, or a bare expression.
    #[serde(rename = "if")]
    pub if_: String,
    pub then: ConditionAction,
    #[serde(rename = "else")]
    pub else_: Option<ConditionAction>,
}

/// What a condition does to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionAction {
    Execute,
    Skip,
    Fail,
}

impl ConditionAction {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Execute => "execute",
            Self::Skip => "skip",
            Self::Fail => "fail",
        }
    }
}

/// Retries when `max_retries` is absent.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Version when `version` is absent.
pub const DEFAULT_VERSION: &str = "1.0";

impl Workflow {
    /// The task with this id.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| task.id == id)
    }

    /// The sum of every task's estimate, in USD.
    pub fn estimated_cost(&self) -> f64 {
        self.tasks.iter().map(|task| task.estimated_cost).sum()
    }

    /// Every task that depends on `id`, directly or transitively; empty for an unknown id.
    pub fn downstream(&self, id: &str) -> BTreeSet<String> {
        let graph = Graph::new(&self.tasks);
        let Some(start) = graph.index(id) else {
            return BTreeSet::new();
        };
        graph
            .descendants(start)
            .into_iter()
            .map(|index| self.tasks[index].id.clone())
            .collect()
    }

    /// Task ids with every task after all of its dependencies, ties in source order.
    ///
    /// A validated workflow has no cycles; for a hand-built one, tasks on or behind a
    /// cycle follow the rest in source order so that every task still appears once.
    pub fn topological_order(&self) -> Vec<&str> {
        let graph = Graph::new(&self.tasks);
        let sorted = graph.topological_sort();
        let mut placed = vec![false; self.tasks.len()];
        let mut order: Vec<&str> = Vec::with_capacity(self.tasks.len());
        for index in sorted {
            placed[index] = true;
            order.push(&self.tasks[index].id);
        }
        for (index, task) in self.tasks.iter().enumerate() {
            if !placed[index] {
                order.push(&task.id);
            }
        }
        order
    }

    /// Checks a run's overrides against the declared variables and merges them over the
    /// defaults.
    ///
    /// Unknown names and values whose JSON type differs from the default's are errors
    /// (a `null` default accepts anything; any number matches a number).
    pub fn resolve_variables(
        &self,
        overrides: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, Value>, Vec<crate::VariableError>> {
        crate::variables::resolve(&self.declared_variables(), overrides)
    }

    /// Whether templates may read `variables.NAME`: declared, or `push` in a workflow
    /// that pushes start.
    pub fn declares_variable(&self, name: &str) -> bool {
        self.variables.contains_key(name)
            || (name == PUSH_VARIABLE && self.triggers.on_push.is_some())
    }

    /// The declared variables, and `push` (`null` unless a push started the run) in a
    /// workflow that pushes start.
    fn declared_variables(&self) -> BTreeMap<String, Value> {
        let mut variables = self.variables.clone();
        if self.triggers.on_push.is_some() {
            variables
                .entry(PUSH_VARIABLE.to_owned())
                .or_insert(Value::Null);
        }
        variables
    }
}
