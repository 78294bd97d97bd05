//! Writes a workflow back as YAML that [`parse_workflow`](crate::parse_workflow) reads to
//! the same value.
//!
//! Structure is block style; every string is double-quoted with escapes, and values under
//! `variables` and `inputs` are written in flow style, so no scalar is ever re-typed on the
//! way back (`"1.0"` stays a string, `1.0` a number).

use serde_json::Value;

use crate::ast::{Condition, FanOut, OnBudget, Task, Workflow};

/// The workflow as YAML; `parse_workflow(&to_yaml(w), ..)` gives back `w`.
pub fn to_yaml(workflow: &Workflow) -> String {
    let mut out = String::new();
    line(&mut out, 0, "id", &quote(&workflow.id));
    line(&mut out, 0, "name", &quote(&workflow.name));
    if let Some(description) = &workflow.description {
        line(&mut out, 0, "description", &quote(description));
    }
    line(&mut out, 0, "version", &quote(&workflow.version));
    if workflow.separate_approver {
        line(&mut out, 0, "separate_approver", "true");
    }
    if let Some(project) = &workflow.project {
        line(&mut out, 0, "project", &quote(project));
    }
    if let Some(budget) = workflow.budget_usd {
        line(&mut out, 0, "budget_usd", &flow(&Value::from(budget)));
    }
    if workflow.on_budget != OnBudget::default() {
        line(&mut out, 0, "on_budget", workflow.on_budget.as_str());
    }
    if !workflow.variables.is_empty() {
        out.push_str("variables:\n");
        for (name, value) in &workflow.variables {
            line(&mut out, 2, &quote(name), &flow(value));
        }
    }
    write_triggers(&mut out, workflow);
    out.push_str("tasks:\n");
    for task in &workflow.tasks {
        write_task(&mut out, task);
    }
    out
}

fn write_triggers(out: &mut String, workflow: &Workflow) {
    let triggers = &workflow.triggers;
    if triggers.on_push.is_none() && triggers.schedule.is_none() {
        return;
    }
    out.push_str("triggers:\n");
    if let Some(push) = &triggers.on_push {
        out.push_str("  on_push:\n");
        line(out, 4, "branches", &string_list(&push.branches));
        if let Some(secret) = &push.secret {
            line(out, 4, "secret", &quote(secret));
        }
    }
    if let Some(schedule) = &triggers.schedule {
        out.push_str("  schedule:\n");
        line(out, 4, "cron", &quote(&schedule.cron));
        if let Some(zone) = &schedule.timezone {
            line(out, 4, "timezone", &quote(zone));
        }
        line(out, 4, "catch_up", schedule.catch_up.as_str());
    }
}

fn write_task(out: &mut String, task: &Task) {
    out.push_str(&format!("  - id: {}\n", quote(&task.id)));
    line(out, 4, "name", &quote(&task.name));
    line(out, 4, "agent", &quote(&task.agent));
    if !task.depends_on.is_empty() {
        line(out, 4, "depends_on", &string_list(&task.depends_on));
    }
    if !task.inputs.is_empty() {
        out.push_str("    inputs:\n");
        for (name, value) in &task.inputs {
            line(out, 6, &quote(name), &flow(value));
        }
    }
    if !task.conditions.is_empty() {
        out.push_str("    conditions:\n");
        for condition in &task.conditions {
            write_condition(out, condition);
        }
    }
    if let Some(timeout) = task.timeout_secs {
        line(out, 4, "timeout", &timeout.to_string());
    }
    line(out, 4, "max_retries", &task.max_retries.to_string());
    if task.requires_approval {
        line(out, 4, "requires_approval", "true");
    }
    if let Some(timeout) = task.approval_timeout_secs {
        line(out, 4, "approval_timeout", &timeout.to_string());
    }
    if task.estimated_cost != 0.0 {
        line(
            out,
            4,
            "estimated_cost",
            &flow(&Value::from(task.estimated_cost)),
        );
    }
    if let Some(budget) = task.budget_usd {
        line(out, 4, "budget_usd", &flow(&Value::from(budget)));
    }
    if !task.runs_on.is_empty() {
        line(out, 4, "runs_on", &string_list(&task.runs_on));
    }
    if let Some(fan_out) = &task.fan_out {
        write_fan_out(out, fan_out);
    }
}

fn write_fan_out(out: &mut String, fan_out: &FanOut) {
    line(out, 4, "for_each", &quote(&fan_out.for_each));
    line(out, 4, "as", &quote(&fan_out.item_name));
    line(out, 4, "max_items", &fan_out.max_items.to_string());
    if let Some(concurrency) = fan_out.concurrency {
        line(out, 4, "concurrency", &concurrency.to_string());
    }
    line(out, 4, "fail_fast", &fan_out.fail_fast.to_string());
}

fn write_condition(out: &mut String, condition: &Condition) {
    out.push_str(&format!("      - if: {}\n", quote(&condition.if_)));
    line(out, 8, "then", condition.then.as_str());
    if let Some(otherwise) = condition.else_ {
        line(out, 8, "else", otherwise.as_str());
    }
}

fn line(out: &mut String, indent: usize, key: &str, value: &str) {
    out.push_str(&format!("{:indent$}{key}: {value}\n", ""));
}

fn string_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| quote(item)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A value in YAML flow style; containers are written with an explicit stack.
fn flow(value: &Value) -> String {
    enum Step<'a> {
        Value(&'a Value),
        Text(&'static str),
        Key(&'a str),
    }
    let mut out = String::new();
    let mut stack = vec![Step::Value(value)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Text(text) => out.push_str(text),
            Step::Key(key) => {
                out.push_str(&quote(key));
                out.push_str(": ");
            }
            Step::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Step::Text("]"));
                for (position, item) in items.iter().enumerate().rev() {
                    stack.push(Step::Value(item));
                    if position > 0 {
                        stack.push(Step::Text(", "));
                    }
                }
            }
            Step::Value(Value::Object(map)) => {
                out.push('{');
                stack.push(Step::Text("}"));
                for (position, (key, item)) in map.iter().enumerate().rev() {
                    stack.push(Step::Value(item));
                    stack.push(Step::Key(key));
                    if position > 0 {
                        stack.push(Step::Text(", "));
                    }
                }
            }
            Step::Value(Value::String(text)) => out.push_str(&quote(text)),
            Step::Value(scalar) => out.push_str(&scalar.to_string()),
        }
    }
    out
}

/// A YAML double-quoted string; anything not plainly printable is escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Control characters, and those YAML treats as breaks or byte-order marks.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}
