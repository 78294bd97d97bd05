//! Reads the top level of a workflow: metadata, variables, triggers and the task list.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ast::{
    CatchUp, DEFAULT_VERSION, OnBudget, PushTrigger, ScheduleTrigger, Task, Triggers, Workflow,
};
use crate::limits::TASKS_MAX;
use crate::yaml::{Node, NodeKind, join_key, to_value};

use super::fields::Ctx;
use super::task::{TaskSpans, decode_task};

const TOP_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "version",
    "variables",
    "triggers",
    "separate_approver",
    "project",
    "budget_usd",
    "on_budget",
    "tasks",
];

pub(crate) fn decode_workflow(
    ctx: &mut Ctx<'_>,
    root: &Node,
    known_agents: &[&str],
) -> Option<(Workflow, Vec<TaskSpans>)> {
    let fields = ctx.fields(root, "", TOP_KEYS, &["name", "tasks"])?;
    let name = fields
        .get("name")
        .and_then(|node| ctx.non_empty_text(node, "name"));
    let id = match fields.get("id") {
        Some(node) => ctx
            .non_empty_text(node, "id")
            .filter(|id| check_identifier(ctx, node, "id", "workflow id", id)),
        None => name.as_deref().map(slug),
    };
    let description = fields
        .get("description")
        .and_then(|node| ctx.text(node, "description"));
    let version = fields
        .get("version")
        .map_or(Some(DEFAULT_VERSION.to_owned()), |node| {
            ctx.non_empty_text(node, "version")
        });
    let variables = fields
        .get("variables")
        .map(|node| decode_variables(ctx, node))
        .unwrap_or_default();
    let triggers = fields
        .get("triggers")
        .map(|node| decode_triggers(ctx, node))
        .unwrap_or_default();
    let separate_approver = fields
        .get("separate_approver")
        .and_then(|node| ctx.boolean(node, "separate_approver"))
        .unwrap_or(false);
    let project = fields.get("project").and_then(|node| {
        ctx.non_empty_text(node, "project")
            .filter(|project| check_identifier(ctx, node, "project", "project", project))
    });
    let budget_usd = fields
        .get("budget_usd")
        .and_then(|node| ctx.non_negative_number(node, "budget_usd"));
    let on_budget = fields
        .get("on_budget")
        .and_then(|node| decode_on_budget(ctx, node))
        .unwrap_or_default();
    let (tasks, spans) = fields
        .get("tasks")
        .map(|node| decode_tasks(ctx, node, known_agents))
        .unwrap_or_default();
    if let Some(node) = fields.get("on_budget")
        && budget_usd.is_none()
        && tasks.iter().all(|task: &Task| task.budget_usd.is_none())
    {
        let hint = Some("add `budget_usd:` to the workflow or to a task".to_owned());
        ctx.error(node.mark, "on_budget", "on_budget needs a budget", hint);
    }
    let workflow = Workflow {
        id: id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        description,
        version: version.unwrap_or_default(),
        variables,
        triggers,
        separate_approver,
        project,
        budget_usd,
        on_budget,
        tasks,
    };
    Some((workflow, spans))
}

/// Lowercase ASCII letters and digits, other runs of characters as one `-`.
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "workflow".to_owned()
    } else {
        slug.to_owned()
    }
}

/// Ids (of the workflow, of its project) are lowercase slugs: they appear in URLs,
/// store keys and permission checks.
fn check_identifier(ctx: &mut Ctx<'_>, node: &Node, key: &str, what: &str, id: &str) -> bool {
    let valid = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        let hint = Some(format!(
            "use lowercase letters, digits, `-` and `_`, e.g. `{}`",
            slug(id)
        ));
        ctx.error(
            node.mark,
            key,
            format!("{what} `{id}` must match [a-z0-9_-]+"),
            hint,
        );
    }
    valid
}

fn decode_variables(ctx: &mut Ctx<'_>, node: &Node) -> BTreeMap<String, Value> {
    let mut variables = BTreeMap::new();
    let NodeKind::Mapping(entries) = &node.kind else {
        let found = super::fields::describe(node);
        ctx.error(
            node.mark,
            "variables",
            format!("expected a map, found {found}"),
            None,
        );
        return variables;
    };
    for (key, value) in entries {
        let NodeKind::Scalar { text: name, .. } = &key.kind else {
            continue;
        };
        let path = join_key("variables", name);
        if !is_identifier(name) {
            let hint = Some("start with a letter or `_`, then letters, digits or `_`".to_owned());
            ctx.error(
                key.mark,
                &path,
                format!("variable name `{name}` cannot be used in templates"),
                hint,
            );
            continue;
        }
        match to_value(value) {
            Ok(converted) => {
                variables.insert(name.clone(), converted);
            }
            Err(error) => ctx.error(error.mark, &path, error.message, None),
        }
    }
    variables
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn decode_triggers(ctx: &mut Ctx<'_>, node: &Node) -> Triggers {
    let mut triggers = Triggers::default();
    let Some(fields) = ctx.fields(node, "triggers", &["on_push", "schedule"], &[]) else {
        return triggers;
    };
    if let Some(push) = fields.get("on_push") {
        let path = "triggers.on_push";
        let keys = &["branches", "secret"];
        if let Some(push_fields) = ctx.fields(push, path, keys, &["branches"]) {
            let branches = push_fields
                .get("branches")
                .map(|list| ctx.text_list(list, "triggers.on_push.branches"));
            let secret = push_fields
                .get("secret")
                .and_then(|name| decode_secret_name(ctx, name, "triggers.on_push.secret"));
            triggers.on_push = branches.map(|branches| PushTrigger {
                branches: branches.into_iter().map(|(branch, _)| branch).collect(),
                secret,
            });
        }
    }
    if let Some(schedule) = fields.get("schedule") {
        triggers.schedule = decode_schedule(ctx, schedule);
    }
    triggers
}

/// A name in the node's secret store, as `troupe secrets set` takes it.
fn decode_secret_name(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let name = ctx.non_empty_text(node, path)?;
    let valid = name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
    if !valid {
        let hint = Some(
            "a secret's name: lowercase letters, digits, `_.:-`, e.g. `hooks.shop`; set it with `troupe secrets set NAME`"
                .to_owned(),
        );
        ctx.error(
            node.mark,
            path,
            format!("`{name}` is not a secret's name"),
            hint,
        );
        return None;
    }
    Some(name)
}

fn decode_schedule(ctx: &mut Ctx<'_>, node: &Node) -> Option<ScheduleTrigger> {
    let path = "triggers.schedule";
    let keys = &["cron", "timezone", "catch_up"];
    let fields = ctx.fields(node, path, keys, &["cron"])?;
    let timezone = fields
        .get("timezone")
        .and_then(|zone| ctx.non_empty_text(zone, "triggers.schedule.timezone"));
    let catch_up = fields
        .get("catch_up")
        .and_then(|value| decode_catch_up(ctx, value))
        .unwrap_or_default();
    let cron_node = fields.get("cron")?;
    let cron = ctx.non_empty_text(cron_node, "triggers.schedule.cron")?;
    if let Err(reason) = check_cron(&cron) {
        let hint = Some(
            "five fields: minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\""
                .to_owned(),
        );
        ctx.error(
            cron_node.mark,
            "triggers.schedule.cron",
            format!("invalid cron `{cron}`: {reason}"),
            hint,
        );
        return None;
    }
    Some(ScheduleTrigger {
        cron,
        timezone,
        catch_up,
    })
}

fn decode_on_budget(ctx: &mut Ctx<'_>, node: &Node) -> Option<OnBudget> {
    match ctx.text(node, "on_budget")?.as_str() {
        "fail" => Some(OnBudget::Fail),
        "local_only" => Some(OnBudget::LocalOnly),
        other => {
            let hint = Some(
                "`fail` (the task fails) or `local_only` (the call goes to local models)"
                    .to_owned(),
            );
            ctx.error(
                node.mark,
                "on_budget",
                format!("unknown on_budget `{other}`"),
                hint,
            );
            None
        }
    }
}

fn decode_catch_up(ctx: &mut Ctx<'_>, node: &Node) -> Option<CatchUp> {
    let path = "triggers.schedule.catch_up";
    match ctx.text(node, path)?.as_str() {
        "once" => Some(CatchUp::Once),
        "skip" => Some(CatchUp::Skip),
        other => {
            let hint = Some("`once` (the latest missed tick fires) or `skip`".to_owned());
            ctx.error(node.mark, path, format!("unknown catch_up `{other}`"), hint);
            None
        }
    }
}

/// The five fields of a cron expression and the numbers each takes.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

fn check_cron(cron: &str) -> Result<(), String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("it has {} field(s), not 5", fields.len()));
    }
    let parsed = croner::Cron::new(cron)
        .parse()
        .map_err(|error| out_of_range(&fields).unwrap_or_else(|| error.to_string()))?;
    check_fires(&parsed)
}

/// A schedule that never fires (`0 0 31 2 *`: February has no 31st) is a mistake, not
/// a paused trigger. The calendar repeats every 400 years, and a cron has no year: a
/// schedule that fires at all fires within 400 years of any instant. The search starts
/// at a fixed one, so that the answer does not depend on the day the file is read.
fn check_fires(cron: &croner::Cron) -> Result<(), String> {
    use chrono::Datelike;
    let start = chrono::DateTime::UNIX_EPOCH;
    match cron.find_next_occurrence(&start, false) {
        Ok(next) if next.year() < start.year() + 400 => Ok(()),
        _ => Err("it never fires: no date matches its day, month and weekday".to_owned()),
    }
}

/// Which field holds a number outside its range, said so a person can fix it (the cron
/// library only says that some number is out of bounds).
fn out_of_range(fields: &[&str]) -> Option<String> {
    fields
        .iter()
        .zip(CRON_FIELDS)
        .find_map(|(field, (name, low, high))| {
            let step_free = field.split('/').next().unwrap_or(field);
            step_free
                .split([',', '-'])
                .filter_map(|number| number.parse::<u32>().ok())
                .find(|number| !(low..=high).contains(number))
                .map(|number| format!("{number} is not a {name} ({low}-{high})"))
        })
}

fn decode_tasks(
    ctx: &mut Ctx<'_>,
    node: &Node,
    known_agents: &[&str],
) -> (Vec<Task>, Vec<TaskSpans>) {
    let Some(items) = ctx.list(node, "tasks") else {
        return (Vec::new(), Vec::new());
    };
    if items.is_empty() {
        ctx.error(
            node.mark,
            "tasks",
            "a workflow needs at least one task",
            Some("add a task".to_owned()),
        );
    }
    if items.len() > TASKS_MAX {
        let message = format!(
            "{} tasks is more than the limit of {TASKS_MAX}",
            items.len()
        );
        ctx.error(
            node.mark,
            "tasks",
            message,
            Some("split the workflow".to_owned()),
        );
        return (Vec::new(), Vec::new());
    }
    let mut tasks = Vec::with_capacity(items.len());
    let mut spans = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let (task, task_spans) = decode_task(ctx, item, &format!("tasks[{index}]"), known_agents);
        tasks.push(task);
        spans.push(task_spans);
    }
    ctx.task = None;
    (tasks, spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_and_dashed() {
        assert_eq!(slug("Nightly dependency audit"), "nightly-dependency-audit");
        assert_eq!(slug("  CI / CD!! "), "ci-cd");
        assert_eq!(slug("日本"), "workflow");
    }

    #[test]
    fn cron_needs_five_valid_fields() {
        assert_eq!(check_cron("30 2 * * *"), Ok(()));
        assert_eq!(
            check_cron("0 30 2 * * *"),
            Err("it has 6 field(s), not 5".to_owned())
        );
        assert_eq!(
            check_cron("61 * * * *"),
            Err("61 is not a minute (0-59)".to_owned())
        );
        assert_eq!(
            check_cron("0 2 * 1-13 *"),
            Err("13 is not a month (1-12)".to_owned())
        );
        assert_eq!(
            check_cron("*/5 * * * 1,9"),
            Err("9 is not a day-of-week (0-7)".to_owned())
        );
    }

    #[test]
    fn a_cron_that_never_fires_is_refused_and_a_rare_one_is_not() {
        let never = Err("it never fires: no date matches its day, month and weekday".to_owned());
        assert_eq!(check_cron("0 0 31 2 *"), never);
        assert_eq!(check_cron("0 0 30 2 *"), never);
        assert_eq!(check_cron("0 0 31 4,6,9,11 *"), never);
        // Once every four years, and the 31st of the months that have one.
        assert_eq!(check_cron("0 0 29 2 *"), Ok(()));
        assert_eq!(check_cron("0 0 31 1-12 *"), Ok(()));
        // Day of month or day of week, as in cron: some Monday of February.
        assert_eq!(check_cron("0 0 30 2 1"), Ok(()));
    }
}
