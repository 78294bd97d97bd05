//! Reads one task, recording where its ids and templates are for the later graph checks.

use std::collections::{BTreeMap, HashSet};

use crate::ast::{
    Condition, ConditionAction, DEFAULT_ITEM_NAME, DEFAULT_MAX_ITEMS, DEFAULT_MAX_RETRIES, FanOut,
    Task,
};
use crate::limits::FAN_OUT_ITEMS_MAX;
use crate::suggest::did_you_mean;
use crate::template::{Segment, segments};
use crate::yaml::{Mark, Node, NodeKind, join_key, to_value};

use super::fields::Ctx;

const TASK_KEYS: &[&str] = &[
    "id",
    "name",
    "agent",
    "inputs",
    "depends_on",
    "conditions",
    "timeout",
    "max_retries",
    "requires_approval",
    "approval_timeout",
    "estimated_cost",
    "budget_usd",
    "runs_on",
    "for_each",
    "as",
    "max_items",
    "concurrency",
    "fail_fast",
];
/// The keys that mean something only beside `for_each`.
const FAN_OUT_KEYS: &[&str] = &["as", "max_items", "concurrency", "fail_fast"];
/// Names an item may not take: the roots every template already reads.
const RESERVED_NAMES: &[&str] = &["variables", "tasks", "run", "workflow"];
const CONDITION_KEYS: &[&str] = &["if", "then", "else"];
/// Retries are capped so that a typo cannot keep a failing agent busy for days.
pub(crate) const MAX_RETRIES_MAX: u64 = 100;

/// Positions the graph and template checks need after decoding.
pub(crate) struct TaskSpans {
    /// Set when the id was present and well formed.
    pub(crate) id_valid: bool,
    pub(crate) id_mark: Mark,
    pub(crate) depends_on: Vec<Mark>,
    pub(crate) templates: Vec<TemplateUse>,
}

/// A string that holds a template, or a condition's `if`.
pub(crate) struct TemplateUse {
    pub(crate) path: String,
    pub(crate) mark: Mark,
    pub(crate) text: String,
    /// Condition `if`s without `{{` are bare expressions.
    pub(crate) is_condition: bool,
    /// Whether a fan-out's item is in scope: in its inputs and conditions, not in the
    /// `for_each` that makes the items.
    pub(crate) sees_item: bool,
}

pub(crate) fn decode_task(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    known_agents: &[&str],
) -> (Task, TaskSpans) {
    ctx.task = None;
    let mut task = Task {
        id: String::new(),
        name: String::new(),
        agent: String::new(),
        inputs: BTreeMap::new(),
        depends_on: Vec::new(),
        conditions: Vec::new(),
        timeout_secs: None,
        max_retries: DEFAULT_MAX_RETRIES,
        requires_approval: false,
        approval_timeout_secs: None,
        estimated_cost: 0.0,
        budget_usd: None,
        runs_on: Vec::new(),
        fan_out: None,
    };
    let mut spans = TaskSpans {
        id_valid: false,
        id_mark: node.mark,
        depends_on: Vec::new(),
        templates: Vec::new(),
    };
    let Some(fields) = ctx.fields(node, path, TASK_KEYS, &["id", "name", "agent"]) else {
        return (task, spans);
    };
    let at = |key: &str| join_key(path, key);
    if let Some(id_node) = fields.get("id") {
        spans.id_mark = id_node.mark;
        if let Some(id) = ctx.text(id_node, &at("id")) {
            spans.id_valid = check_id(ctx, &id, id_node.mark, &at("id"));
            ctx.task = Some(id.clone());
            task.id = id;
        }
    }
    if let Some(value) = fields.get("name") {
        task.name = ctx.non_empty_text(value, &at("name")).unwrap_or_default();
    }
    if let Some(value) = fields.get("agent") {
        task.agent = decode_agent(ctx, value, &at("agent"), known_agents).unwrap_or_default();
    }
    if let Some(value) = fields.get("inputs") {
        task.inputs = decode_inputs(ctx, value, &at("inputs"), &mut spans.templates);
    }
    if let Some(value) = fields.get("depends_on") {
        let (depends_on, marks) = decode_depends_on(ctx, value, &at("depends_on"));
        task.depends_on = depends_on;
        spans.depends_on = marks;
    }
    if let Some(value) = fields.get("conditions") {
        task.conditions = decode_conditions(ctx, value, &at("conditions"), &mut spans.templates);
    }
    if let Some(value) = fields.get("runs_on") {
        task.runs_on = decode_runs_on(ctx, value, &at("runs_on"));
    }
    decode_limits(ctx, &fields, path, &mut task);
    task.fan_out = decode_fan_out(ctx, &fields, path, &mut spans.templates);
    if task.fan_out.is_some()
        && task.requires_approval
        && let Some(value) = fields.get("requires_approval")
    {
        let hint = Some("put an approval task before the fan-out, in its depends_on".to_owned());
        let message = "a fan-out task cannot wait for approval: its children would each ask";
        ctx.error(value.mark, &at("requires_approval"), message, hint);
    }
    (task, spans)
}

/// `for_each` and its companions; `None` without `for_each` (and an error for each
/// companion given without it).
fn decode_fan_out(
    ctx: &mut Ctx<'_>,
    fields: &super::fields::Fields<'_>,
    path: &str,
    templates: &mut Vec<TemplateUse>,
) -> Option<FanOut> {
    let at = |key: &str| join_key(path, key);
    let Some(for_each) = fields.get("for_each") else {
        for key in FAN_OUT_KEYS {
            if let Some(value) = fields.get(key) {
                let hint = Some(format!(
                    "add `for_each: \"{{{{ ... }}}}\"` or remove `{key}`"
                ));
                ctx.error(
                    value.mark,
                    &at(key),
                    format!("`{key}` needs `for_each`"),
                    hint,
                );
            }
        }
        return None;
    };
    // Past an error, each key falls back to its default: the task stays a fan-out, so
    // its templates are read with its item in scope and report nothing more.
    let text = decode_for_each(ctx, for_each, &at("for_each"));
    if let Some(text) = &text {
        templates.push(TemplateUse {
            path: at("for_each"),
            mark: for_each.mark,
            text: text.clone(),
            is_condition: false,
            sees_item: false,
        });
    }
    let item_name = fields
        .get("as")
        .map_or(Some(DEFAULT_ITEM_NAME.to_owned()), |value| {
            decode_item_name(ctx, value, &at("as"))
        });
    // FAN_OUT_ITEMS_MAX fits in u32, so a value within the range converts.
    let mut count = |key: &str| {
        let value = fields.get(key)?;
        let count = ctx.integer(value, &at(key), 1, FAN_OUT_ITEMS_MAX)?;
        u32::try_from(count).ok()
    };
    let max_items = count("max_items").unwrap_or(DEFAULT_MAX_ITEMS);
    let concurrency = count("concurrency");
    let fail_fast = fields
        .get("fail_fast")
        .and_then(|value| ctx.boolean(value, &at("fail_fast")))
        .unwrap_or(true);
    Some(FanOut {
        for_each: text.unwrap_or_default(),
        item_name: item_name.unwrap_or_else(|| DEFAULT_ITEM_NAME.to_owned()),
        max_items,
        concurrency,
        fail_fast,
    })
}

/// `for_each` is one template and nothing else: its value, not text, is the list.
fn decode_for_each(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let text = ctx.non_empty_text(node, path)?;
    let single = matches!(segments(&text).as_deref(), Ok([Segment::Expression(..)]));
    if !single {
        let hint = Some(
            "write one template whose value is a list, e.g. `\"{{ tasks.architect.outputs.modules }}\"`"
                .to_owned(),
        );
        ctx.error(
            node.mark,
            path,
            "`for_each` must be exactly one template",
            hint,
        );
        return None;
    }
    Some(text)
}

/// The item's name: an identifier that is not one of the fixed roots.
fn decode_item_name(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let name = ctx.non_empty_text(node, path)?;
    let identifier = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !identifier {
        let hint = Some("use lowercase letters, digits and `_`, e.g. `module`".to_owned());
        ctx.error(node.mark, path, format!("`{name}` is not a name"), hint);
        return None;
    }
    if RESERVED_NAMES.contains(&name.as_str()) {
        let hint = Some("pick another name, e.g. `module`".to_owned());
        let message = format!("`{name}` is taken: templates read `{name}.` already");
        ctx.error(node.mark, path, message, hint);
        return None;
    }
    Some(name)
}

/// Node labels: letters, digits, `.`, `_` and `-`, each once.
fn decode_runs_on(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for (index, (label, mark)) in ctx.text_list(node, path).into_iter().enumerate() {
        let at = format!("{path}[{index}]");
        let well_formed = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !well_formed {
            let hint = Some("a label as a node's cluster.labels has it, e.g. `gpu`".to_owned());
            ctx.error(mark, &at, format!("`{label}` is not a node label"), hint);
        } else if labels.contains(&label) {
            let hint = Some("list each label once".to_owned());
            ctx.error(mark, &at, format!("`{label}` is listed twice"), hint);
        } else {
            labels.push(label);
        }
    }
    labels
}

fn check_id(ctx: &mut Ctx<'_>, id: &str, mark: Mark, path: &str) -> bool {
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        let hint = Some("use lowercase letters, digits and `_`, e.g. `run_tests`".to_owned());
        ctx.error(
            mark,
            path,
            format!("task id `{id}` must match [a-z0-9_]+"),
            hint,
        );
    }
    valid
}

fn decode_agent(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    known_agents: &[&str],
) -> Option<String> {
    let agent = ctx.non_empty_text(node, path)?;
    if !known_agents.contains(&agent.as_str()) {
        let known = if known_agents.is_empty() {
            "(none)".to_owned()
        } else {
            known_agents.join(", ")
        };
        let hint = match did_you_mean(&agent, known_agents.iter().copied()) {
            Some(suggestion) => format!("{suggestion} known agent kinds: {known}"),
            None => format!("known agent kinds: {known}"),
        };
        ctx.error(
            node.mark,
            path,
            format!("unknown agent kind `{agent}`"),
            Some(hint),
        );
    }
    Some(agent)
}

fn decode_inputs(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    templates: &mut Vec<TemplateUse>,
) -> BTreeMap<String, serde_json::Value> {
    let mut inputs = BTreeMap::new();
    let NodeKind::Mapping(entries) = &node.kind else {
        let found = super::fields::describe(node);
        ctx.error(
            node.mark,
            path,
            format!("expected a map, found {found}"),
            None,
        );
        return inputs;
    };
    for (key, value) in entries {
        let NodeKind::Scalar { text: name, .. } = &key.kind else {
            continue;
        };
        let value_path = join_key(path, name);
        collect_templates(value, &value_path, templates);
        match to_value(value) {
            Ok(converted) => {
                inputs.insert(name.clone(), converted);
            }
            Err(error) => ctx.error(error.mark, &value_path, error.message, None),
        }
    }
    inputs
}

/// Records every string holding `{{`, at any depth; iterative because inputs may nest.
fn collect_templates(node: &Node, path: &str, templates: &mut Vec<TemplateUse>) {
    let mut stack = vec![(node, path.to_owned())];
    while let Some((node, path)) = stack.pop() {
        match &node.kind {
            NodeKind::Scalar { text, .. } if text.contains("{{") => templates.push(TemplateUse {
                path,
                mark: node.mark,
                text: text.clone(),
                is_condition: false,
                sees_item: true,
            }),
            NodeKind::Scalar { .. } => {}
            NodeKind::Sequence(items) => {
                for (index, item) in items.iter().enumerate().rev() {
                    stack.push((item, format!("{path}[{index}]")));
                }
            }
            NodeKind::Mapping(entries) => {
                for (key, value) in entries.iter().rev() {
                    if let NodeKind::Scalar { text, .. } = &key.kind {
                        stack.push((value, join_key(&path, text)));
                    }
                }
            }
        }
    }
}

fn decode_depends_on(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> (Vec<String>, Vec<Mark>) {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut marks = Vec::new();
    for (index, (id, mark)) in ctx.text_list(node, path).into_iter().enumerate() {
        if !seen.insert(id.clone()) {
            let hint = Some("list each dependency once".to_owned());
            ctx.error(
                mark,
                &format!("{path}[{index}]"),
                format!("`{id}` is listed twice"),
                hint,
            );
            continue;
        }
        ids.push(id);
        marks.push(mark);
    }
    (ids, marks)
}

fn decode_conditions(
    ctx: &mut Ctx<'_>,
    node: &Node,
    path: &str,
    templates: &mut Vec<TemplateUse>,
) -> Vec<Condition> {
    let Some(items) = ctx.list(node, path) else {
        return Vec::new();
    };
    let mut conditions = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let Some(fields) = ctx.fields(item, &item_path, CONDITION_KEYS, &["if", "then"]) else {
            continue;
        };
        let if_ = fields.get("if").and_then(|value| {
            let if_path = join_key(&item_path, "if");
            let text = condition_text(ctx, value, &if_path)?;
            templates.push(TemplateUse {
                path: if_path,
                mark: value.mark,
                text: text.clone(),
                is_condition: true,
                sees_item: true,
            });
            Some(text)
        });
        let then = fields
            .get("then")
            .and_then(|value| action(ctx, value, &join_key(&item_path, "then")));
        let else_ = fields
            .get("else")
            .and_then(|value| action(ctx, value, &join_key(&item_path, "else")));
        if let (Some(if_), Some(then)) = (if_, then) {
            conditions.push(Condition { if_, then, else_ });
        }
    }
    conditions
}

/// A string, or a plain boolean read as the expression `true`/`false`.
fn condition_text(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    if let NodeKind::Scalar {
        text,
        quoted: false,
    } = &node.kind
        && (text == "true" || text == "false")
    {
        return Some(text.clone());
    }
    ctx.non_empty_text(node, path)
}

fn action(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<ConditionAction> {
    let text = ctx.text(node, path)?;
    match text.as_str() {
        "execute" => Some(ConditionAction::Execute),
        "skip" => Some(ConditionAction::Skip),
        "fail" => Some(ConditionAction::Fail),
        other => {
            let hint = did_you_mean(other, ["execute", "skip", "fail"])
                .or_else(|| Some("use `execute`, `skip` or `fail`".to_owned()));
            ctx.error(node.mark, path, format!("unknown action `{other}`"), hint);
            None
        }
    }
}

fn decode_limits(
    ctx: &mut Ctx<'_>,
    fields: &super::fields::Fields<'_>,
    path: &str,
    task: &mut Task,
) {
    let at = |key: &str| join_key(path, key);
    if let Some(value) = fields.get("timeout") {
        task.timeout_secs = ctx.integer(value, &at("timeout"), 1, u64::MAX);
    }
    if let Some(value) = fields.get("max_retries") {
        let retries = ctx.integer(value, &at("max_retries"), 0, MAX_RETRIES_MAX);
        // MAX_RETRIES_MAX fits in u32, so the conversion cannot fail once the range is checked.
        task.max_retries = retries
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(DEFAULT_MAX_RETRIES);
    }
    if let Some(value) = fields.get("requires_approval") {
        task.requires_approval = ctx
            .boolean(value, &at("requires_approval"))
            .unwrap_or(false);
    }
    if let Some(value) = fields.get("approval_timeout") {
        task.approval_timeout_secs = ctx.integer(value, &at("approval_timeout"), 1, u64::MAX);
        if !task.requires_approval {
            let hint =
                Some("add `requires_approval: true` or remove `approval_timeout`".to_owned());
            ctx.error(
                value.mark,
                &at("approval_timeout"),
                "approval_timeout needs an approval gate",
                hint,
            );
        }
    }
    if let Some(value) = fields.get("estimated_cost") {
        task.estimated_cost = ctx
            .non_negative_number(value, &at("estimated_cost"))
            .unwrap_or(0.0);
    }
    if let Some(value) = fields.get("budget_usd") {
        task.budget_usd = ctx.non_negative_number(value, &at("budget_usd"));
    }
}
