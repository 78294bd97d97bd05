//! The builder's document: the workflow itself (`troupe_workflow::Workflow`, the type the
//! engine runs) and where each node sits on the canvas. Every edit changes the workflow;
//! conditions and triggers are drawn as nodes of their own but live where the language
//! keeps them (a task's `conditions`, the workflow's `triggers`). So export is
//! `to_yaml(&workflow)`, and import → export gives back an equivalent definition, fields
//! the canvas does not show (variables, description, project) included.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use troupe_workflow::{
    Condition, ConditionAction, Diagnostic, PushTrigger, ScheduleTrigger, Task, Workflow,
    parse_workflow, slug, to_yaml,
};

use crate::view::dag;

/// A node of the canvas.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    Task(String),
    /// The `index`th condition of a task.
    Condition(String, usize),
    /// A condition placed on the canvas and not yet connected to the task it guards.
    Loose(usize),
    Schedule,
    Push,
}

impl NodeId {
    /// A stable key for the DOM (`data-node`) and the tests.
    pub fn key(&self) -> String {
        match self {
            NodeId::Task(id) => format!("task:{id}"),
            NodeId::Condition(task, index) => format!("condition:{task}:{index}"),
            NodeId::Loose(index) => format!("loose:{index}"),
            NodeId::Schedule => "trigger:schedule".into(),
            NodeId::Push => "trigger:push".into(),
        }
    }

    pub fn from_key(key: &str) -> Option<NodeId> {
        let (kind, rest) = key.split_once(':')?;
        match kind {
            "task" => Some(NodeId::Task(rest.to_owned())),
            "condition" => {
                let (task, index) = rest.rsplit_once(':')?;
                Some(NodeId::Condition(task.to_owned(), index.parse().ok()?))
            }
            "loose" => Some(NodeId::Loose(rest.parse().ok()?)),
            "trigger" if rest == "schedule" => Some(NodeId::Schedule),
            "trigger" if rest == "push" => Some(NodeId::Push),
            _ => None,
        }
    }
}

/// What the palette places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// An agent task of this kind.
    Agent(String),
    /// A `human_review` task behind an approval gate.
    Approval,
    Condition,
    Trigger,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    pub workflow: Workflow,
    pub positions: BTreeMap<NodeId, (f64, f64)>,
    pub loose: Vec<Condition>,
}

/// The inputs a new task of each agent kind starts with: its required ones, or its
/// first when none is required (`shell`: `command`, with `args` as the alternative).
pub type StartingInputs = BTreeMap<String, Vec<String>>;

const GAP: f64 = 64.0;

impl Design {
    pub fn new(name: &str) -> Design {
        Design {
            workflow: Workflow {
                id: slug(name),
                name: name.to_owned(),
                description: None,
                version: "1.0".into(),
                variables: BTreeMap::new(),
                triggers: Default::default(),
                separate_approver: false,
                project: None,
                budget_usd: None,
                on_budget: Default::default(),
                tasks: Vec::new(),
            },
            positions: BTreeMap::new(),
            loose: Vec::new(),
        }
    }

    /// Reads workflow YAML, laying its DAG out automatically.
    pub fn import(source: &str, kinds: &[&str]) -> Result<Design, Vec<Diagnostic>> {
        let workflow = parse_workflow(source, "import", kinds).map_err(|d| d.0)?;
        let mut design = Design {
            workflow,
            positions: BTreeMap::new(),
            loose: Vec::new(),
        };
        design.lay_out();
        Ok(design)
    }

    /// Places every node: triggers in the first column, tasks in their DAG layers after
    /// it, each task's conditions stacked above-left of it.
    pub fn lay_out(&mut self) {
        let shape: Vec<(String, Vec<String>)> = self
            .workflow
            .tasks
            .iter()
            .map(|task| (task.id.clone(), task.depends_on.clone()))
            .collect();
        let layout = dag::layout(&shape);
        let shift = dag::NODE_WIDTH + GAP;
        self.positions.clear();
        for node in layout.nodes {
            let (x, y) = (node.x + shift, node.y + 2.0 * dag::NODE_HEIGHT);
            if let Some(task) = self.task(&node.id) {
                for index in 0..task.conditions.len() {
                    let offset = (index + 1) as f64 * (dag::NODE_HEIGHT * 0.9);
                    self.positions.insert(
                        NodeId::Condition(node.id.clone(), index),
                        (x - GAP / 2.0, y - offset),
                    );
                }
            }
            self.positions.insert(NodeId::Task(node.id), (x, y));
        }
        self.positions
            .insert(NodeId::Schedule, (12.0, 2.0 * dag::NODE_HEIGHT));
        self.positions
            .insert(NodeId::Push, (12.0, 3.5 * dag::NODE_HEIGHT));
    }

    pub fn export(&self) -> String {
        to_yaml(&self.workflow)
    }

    /// The parser's diagnostics of the exported YAML, plus the builder's own (conditions
    /// not connected to a task).
    pub fn validate(&self, kinds: &[&str]) -> Vec<Diagnostic> {
        if self.workflow.tasks.is_empty() {
            return vec![Diagnostic {
                file: "builder".into(),
                line: 0,
                column: 0,
                path: "tasks".into(),
                task_id: None,
                message: "a workflow needs at least one task".into(),
                hint: Some("drag an agent from the palette onto the canvas".into()),
            }];
        }
        let mut found = match parse_workflow(&self.export(), "builder", kinds) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics.0,
        };
        for index in 0..self.loose.len() {
            found.push(Diagnostic {
                file: "builder".into(),
                line: 0,
                column: 0,
                path: format!("loose condition {}", index + 1),
                task_id: None,
                message: "this condition guards no task".into(),
                hint: Some("drag from its port to the task it decides".into()),
            });
        }
        found
    }

    /// Every node on the canvas.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes = Vec::new();
        if self.workflow.triggers.schedule.is_some() {
            nodes.push(NodeId::Schedule);
        }
        if self.workflow.triggers.on_push.is_some() {
            nodes.push(NodeId::Push);
        }
        for task in &self.workflow.tasks {
            nodes.push(NodeId::Task(task.id.clone()));
            for index in 0..task.conditions.len() {
                nodes.push(NodeId::Condition(task.id.clone(), index));
            }
        }
        nodes.extend((0..self.loose.len()).map(NodeId::Loose));
        nodes
    }

    /// Every edge: dependencies, conditions into their task, triggers into the root tasks.
    pub fn edges(&self) -> Vec<(NodeId, NodeId)> {
        let mut edges = Vec::new();
        let triggers: Vec<NodeId> = self
            .nodes()
            .into_iter()
            .filter(|node| matches!(node, NodeId::Schedule | NodeId::Push))
            .collect();
        for task in &self.workflow.tasks {
            let this = NodeId::Task(task.id.clone());
            for need in &task.depends_on {
                edges.push((NodeId::Task(need.clone()), this.clone()));
            }
            for index in 0..task.conditions.len() {
                edges.push((NodeId::Condition(task.id.clone(), index), this.clone()));
            }
            if task.depends_on.is_empty() {
                edges.extend(
                    triggers
                        .iter()
                        .map(|trigger| (trigger.clone(), this.clone())),
                );
            }
        }
        edges
    }

    pub fn position(&self, node: &NodeId) -> (f64, f64) {
        self.positions.get(node).copied().unwrap_or((12.0, 12.0))
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.workflow.tasks.iter().find(|task| task.id == id)
    }

    pub fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.workflow.tasks.iter_mut().find(|task| task.id == id)
    }

    pub fn total_estimated_cost(&self) -> f64 {
        // A fold from +0.0: an empty f64 `sum` is -0.0, which prints as "$-0.00".
        self.workflow
            .tasks
            .iter()
            .fold(0.0, |total, task| total + task.estimated_cost)
    }

    /// Places a node of `kind` at `at`; returns it.
    pub fn add(&mut self, kind: &NodeKind, at: (f64, f64), starting: &StartingInputs) -> NodeId {
        let node = match kind {
            NodeKind::Agent(agent) => {
                let inputs = starting
                    .get(agent)
                    .map(|names| {
                        names
                            .iter()
                            .map(|name| (name.clone(), Value::String(String::new())))
                            .collect()
                    })
                    .unwrap_or_default();
                NodeId::Task(self.push_task(agent, agent, inputs, false))
            }
            NodeKind::Approval => {
                let inputs =
                    BTreeMap::from([("summary".to_owned(), Value::String("Please review".into()))]);
                NodeId::Task(self.push_task("approval", "human_review", inputs, true))
            }
            NodeKind::Condition => {
                self.loose.push(Condition {
                    if_: "{{ true }}".into(),
                    then: ConditionAction::Execute,
                    else_: Some(ConditionAction::Skip),
                });
                NodeId::Loose(self.loose.len() - 1)
            }
            NodeKind::Trigger => {
                let triggers = &mut self.workflow.triggers;
                if triggers.schedule.is_none() {
                    triggers.schedule = Some(ScheduleTrigger {
                        cron: "0 3 * * *".into(),
                        timezone: None,
                        catch_up: Default::default(),
                    });
                    NodeId::Schedule
                } else {
                    triggers.on_push.get_or_insert(PushTrigger {
                        secret: None,
                        branches: vec!["main".into()],
                    });
                    NodeId::Push
                }
            }
        };
        self.positions.insert(node.clone(), at);
        node
    }

    fn push_task(
        &mut self,
        stem: &str,
        agent: &str,
        inputs: BTreeMap<String, Value>,
        approval: bool,
    ) -> String {
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let id = (1..)
            .map(|n| format!("{stem}_{n}"))
            .find(|id| self.task(id).is_none())
            .unwrap_or_default();
        self.workflow.tasks.push(Task {
            id: id.clone(),
            name: id.replace('_', " "),
            agent: agent.to_owned(),
            inputs,
            depends_on: Vec::new(),
            conditions: Vec::new(),
            timeout_secs: None,
            max_retries: 0,
            requires_approval: approval,
            approval_timeout_secs: None,
            estimated_cost: 0.0,
            budget_usd: None,
            runs_on: Vec::new(),
            fan_out: None,
        });
        id
    }

    /// Connects an output port to an input port: a task after a task (refused where it
    /// would close a cycle), or a loose condition onto the task it decides.
    pub fn connect(&mut self, from: &NodeId, to: &NodeId) -> Result<(), String> {
        let NodeId::Task(target) = to else {
            return Err("connect to a task's input port (its left side)".into());
        };
        match from {
            NodeId::Task(source) if source == target => {
                Err("a task cannot depend on itself".into())
            }
            NodeId::Task(source) => {
                if self.reaches(target, source) {
                    return Err(format!(
                        "`{source}` already comes after `{target}`: this would be a cycle"
                    ));
                }
                let task = self.task_mut(target).ok_or("no such task")?;
                if !task.depends_on.contains(source) {
                    task.depends_on.push(source.clone());
                }
                Ok(())
            }
            NodeId::Loose(index) if *index < self.loose.len() => {
                let at = self.position(from);
                let condition = self.loose.remove(*index);
                self.renumber_loose(*index);
                let task = self.task_mut(target).ok_or("no such task")?;
                task.conditions.push(condition);
                let attached = NodeId::Condition(target.clone(), task.conditions.len() - 1);
                self.positions.insert(attached, at);
                Ok(())
            }
            NodeId::Condition(..) => Err("this condition already guards a task".into()),
            NodeId::Schedule | NodeId::Push => {
                Err("a trigger starts every first task by itself; it needs no connection".into())
            }
            NodeId::Loose(_) => Err("no such condition".into()),
        }
    }

    /// Whether `to` is reachable from `from` along dependencies (from is an ancestor).
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![to.to_owned()];
        while let Some(at) = stack.pop() {
            if at == from {
                return true;
            }
            if seen.insert(at.clone())
                && let Some(task) = self.task(&at)
            {
                stack.extend(task.depends_on.iter().cloned());
            }
        }
        false
    }

    /// The tasks `id` runs after, directly or not: whose outputs its inputs may use.
    pub fn upstream(&self, id: &str) -> Vec<String> {
        let mut found = BTreeSet::new();
        let mut stack: Vec<String> = self
            .task(id)
            .map(|t| t.depends_on.clone())
            .unwrap_or_default();
        while let Some(at) = stack.pop() {
            if found.insert(at.clone())
                && let Some(task) = self.task(&at)
            {
                stack.extend(task.depends_on.iter().cloned());
            }
        }
        found.into_iter().collect()
    }

    pub fn disconnect(&mut self, from: &NodeId, to: &NodeId) {
        if let (NodeId::Task(source), NodeId::Task(target)) = (from, to)
            && let Some(task) = self.task_mut(target)
        {
            task.depends_on.retain(|need| need != source);
        }
    }

    /// Removes a node and every edge to it.
    pub fn remove(&mut self, node: &NodeId) {
        match node {
            NodeId::Task(id) => {
                self.workflow.tasks.retain(|task| &task.id != id);
                for task in &mut self.workflow.tasks {
                    task.depends_on.retain(|need| need != id);
                }
                self.positions.retain(|key, _| match key {
                    NodeId::Task(task) | NodeId::Condition(task, _) => task != id,
                    _ => true,
                });
            }
            NodeId::Condition(task_id, index) => {
                if let Some(task) = self.task_mut(task_id)
                    && *index < task.conditions.len()
                {
                    task.conditions.remove(*index);
                    let count = task.conditions.len();
                    for later in *index..count {
                        if let Some(at) = self
                            .positions
                            .remove(&NodeId::Condition(task_id.clone(), later + 1))
                        {
                            self.positions
                                .insert(NodeId::Condition(task_id.clone(), later), at);
                        }
                    }
                    self.positions
                        .remove(&NodeId::Condition(task_id.clone(), count));
                }
            }
            NodeId::Loose(index) if *index < self.loose.len() => {
                self.loose.remove(*index);
                self.positions.remove(node);
                self.renumber_loose(*index);
            }
            NodeId::Loose(_) => {}
            NodeId::Schedule => self.workflow.triggers.schedule = None,
            NodeId::Push => self.workflow.triggers.on_push = None,
        }
    }

    /// After loose condition `removed` went, the later ones move down one place.
    fn renumber_loose(&mut self, removed: usize) {
        for later in removed..self.loose.len() {
            if let Some(at) = self.positions.remove(&NodeId::Loose(later + 1)) {
                self.positions.insert(NodeId::Loose(later), at);
            }
        }
        self.positions.remove(&NodeId::Loose(self.loose.len()));
    }

    /// Renames a task, and every dependency and `tasks.<id>.` template that named it.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), String> {
        if new == old {
            return Ok(());
        }
        if new.is_empty()
            || !new
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err("a task id is lowercase letters, digits and _".into());
        }
        if self.task(new).is_some() {
            return Err(format!("there is already a task `{new}`"));
        }
        let (from, to) = (format!("tasks.{old}."), format!("tasks.{new}."));
        for task in &mut self.workflow.tasks {
            if task.id == old {
                task.id = new.to_owned();
            }
            for need in &mut task.depends_on {
                if need == old {
                    *need = new.to_owned();
                }
            }
            for value in task.inputs.values_mut() {
                replace_in(value, &from, &to);
            }
            for condition in &mut task.conditions {
                condition.if_ = condition.if_.replace(&from, &to);
            }
        }
        let moved: Vec<(NodeId, (f64, f64))> = self
            .positions
            .iter()
            .filter_map(|(key, at)| match key {
                NodeId::Task(id) if id == old => Some((NodeId::Task(new.to_owned()), *at)),
                NodeId::Condition(id, index) if id == old => {
                    Some((NodeId::Condition(new.to_owned(), *index), *at))
                }
                _ => None,
            })
            .collect();
        self.positions.retain(
            |key, _| !matches!(key, NodeId::Task(id) | NodeId::Condition(id, _) if id == old),
        );
        self.positions.extend(moved);
        Ok(())
    }
}

fn replace_in(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(text) => *text = text.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|item| replace_in(item, from, to)),
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|item| replace_in(item, from, to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: &[&str] = &["shell", "human_review", "echo"];

    fn none() -> StartingInputs {
        StartingInputs::from([("shell".to_owned(), vec!["command".to_owned()])])
    }

    #[test]
    fn every_example_workflow_round_trips_through_the_builder() {
        // Read at run time, not baked in: test binaries are shared by every checkout that
        // uses one target directory, and the checkout that built this one may be gone.
        let examples = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo and nextest"),
        )
        .join("../examples");
        let mut checked = 0;
        for entry in std::fs::read_dir(examples).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "yaml") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let kinds: Vec<String> = source
                .lines()
                .filter_map(|line| line.trim().strip_prefix("agent: "))
                .map(|kind| kind.trim().to_owned())
                .collect();
            let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
            let original = parse_workflow(&source, "example", &kinds).unwrap();
            let design = Design::import(&source, &kinds).unwrap();
            let again = parse_workflow(&design.export(), "export", &kinds).unwrap();
            assert_eq!(again, original, "{}", path.display());
            assert_eq!(
                design.nodes().len(),
                design
                    .positions
                    .keys()
                    .filter(|k| design.nodes().contains(k))
                    .count()
            );
            checked += 1;
        }
        assert!(checked >= 4, "only {checked} examples found");
    }

    #[test]
    fn three_nodes_placed_and_connected_export_a_valid_chain() {
        let mut design = Design::new("Built");
        let a = design.add(&NodeKind::Agent("shell".into()), (100.0, 100.0), &none());
        let b = design.add(&NodeKind::Approval, (300.0, 100.0), &none());
        let c = design.add(&NodeKind::Agent("shell".into()), (500.0, 100.0), &none());
        design.connect(&a, &b).unwrap();
        design.connect(&b, &c).unwrap();
        assert!(design.connect(&c, &a).unwrap_err().contains("cycle"));
        assert_eq!(
            design.connect(&a, &a),
            Err("a task cannot depend on itself".into())
        );
        for id in ["shell_1", "shell_2"] {
            design
                .task_mut(id)
                .unwrap()
                .inputs
                .insert("command".into(), Value::String("echo hi".into()));
        }
        assert_eq!(design.validate(KINDS), vec![]);
        let parsed = parse_workflow(&design.export(), "x", KINDS).unwrap();
        let needs: Vec<Vec<String>> = parsed.tasks.iter().map(|t| t.depends_on.clone()).collect();
        assert_eq!(
            needs,
            [
                vec![],
                vec!["shell_1".to_owned()],
                vec!["approval_1".to_owned()]
            ]
        );
        assert!(parsed.tasks[1].requires_approval);
    }

    #[test]
    fn conditions_and_triggers_are_nodes_that_land_where_the_language_keeps_them() {
        let mut design = Design::new("Guarded");
        let task = design.add(&NodeKind::Agent("echo".into()), (300.0, 100.0), &none());
        let condition = design.add(&NodeKind::Condition, (100.0, 40.0), &none());
        assert_eq!(
            design.validate(KINDS).len(),
            1,
            "a loose condition is reported"
        );
        design.connect(&condition, &task).unwrap();
        assert!(design.loose.is_empty());
        assert_eq!(design.task("echo_1").unwrap().conditions.len(), 1);
        assert_eq!(
            design.position(&NodeId::Condition("echo_1".into(), 0)),
            (100.0, 40.0)
        );
        let trigger = design.add(&NodeKind::Trigger, (10.0, 10.0), &none());
        assert_eq!(trigger, NodeId::Schedule);
        assert_eq!(
            design.connect(&trigger, &task),
            Err("a trigger starts every first task by itself; it needs no connection".into())
        );
        assert!(design.edges().contains(&(NodeId::Schedule, task.clone())));
        assert_eq!(design.validate(KINDS), vec![]);
        let parsed = parse_workflow(&design.export(), "x", KINDS).unwrap();
        assert_eq!(parsed.triggers.schedule.unwrap().cron, "0 3 * * *");
        design.remove(&NodeId::Condition("echo_1".into(), 0));
        assert!(design.task("echo_1").unwrap().conditions.is_empty());
    }

    #[test]
    fn renaming_a_task_follows_its_dependants_and_templates() {
        let source = "name: R\ntasks:\n  - { id: build, name: B, agent: shell, inputs: { command: \"make\" } }\n  - { id: ship, name: S, agent: shell, depends_on: [build], inputs: { command: \"echo {{ tasks.build.outputs.stdout }}\" } }\n";
        let mut design = Design::import(source, KINDS).unwrap();
        design.rename("build", "compile").unwrap();
        assert_eq!(
            design.rename("ship", "compile"),
            Err("there is already a task `compile`".into())
        );
        assert_eq!(
            design.rename("ship", "Bad Id"),
            Err("a task id is lowercase letters, digits and _".into())
        );
        let ship = design.task("ship").unwrap();
        assert_eq!(ship.depends_on, vec!["compile".to_owned()]);
        assert_eq!(
            ship.inputs["command"],
            Value::String("echo {{ tasks.compile.outputs.stdout }}".into())
        );
        assert!(
            design
                .positions
                .contains_key(&NodeId::Task("compile".into()))
        );
        assert_eq!(design.upstream("ship"), vec!["compile".to_owned()]);
        assert_eq!(design.validate(KINDS), vec![]);
        design.remove(&NodeId::Task("compile".into()));
        assert!(design.task("ship").unwrap().depends_on.is_empty());
    }

    #[test]
    fn node_keys_survive_the_dom() {
        for node in [
            NodeId::Task("a_1".into()),
            NodeId::Condition("a:b".into(), 2),
            NodeId::Loose(3),
            NodeId::Schedule,
            NodeId::Push,
        ] {
            assert_eq!(NodeId::from_key(&node.key()), Some(node));
        }
        for hostile in [
            "",
            "task",
            "condition:x",
            "loose:-1",
            "trigger:cron",
            "nope:1",
        ] {
            assert_eq!(NodeId::from_key(hostile), None, "{hostile}");
        }
    }
}
