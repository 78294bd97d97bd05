//! `{{ ... }}` templates in task inputs and condition `if`s.
//!
//! A string that is exactly one template keeps the expression's type. Inside longer text a
//! value is written as text: strings as they are, `null` as nothing, numbers and booleans
//! in their JSON spelling, lists and maps as compact JSON.
//!
//! Truthiness, used by conditions and `&&`, `||`, `!`: `null`, `false`, `0`, `""`, `[]`
//! and `{}` are false; everything else is true.

use serde_json::Value;

use crate::ast::{Condition, ConditionAction};
use crate::errors::{ExprError, TemplateError};
use crate::expr::{self, Scope};
use crate::limits::{RENDERED_BYTES_MAX, YAML_DEPTH_MAX};
use crate::shell_quote::Lexer;

/// A piece of template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    Text(&'a str),
    /// The text between `{{` and `}}`, and the byte offset where that text starts.
    Expression(&'a str, usize),
}

/// Splits text into literal runs and expressions; `}}` inside a quoted string does not close.
pub(crate) fn segments(text: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let mut found = Vec::new();
    let mut rest_start = 0;
    while let Some(open) = text[rest_start..].find("{{").map(|at| rest_start + at) {
        if open > rest_start {
            found.push(Segment::Text(&text[rest_start..open]));
        }
        let inner_start = open + 2;
        let close = find_close(&text[inner_start..])
            .map(|at| inner_start + at)
            .ok_or(TemplateError::Unclosed { offset: open })?;
        found.push(Segment::Expression(&text[inner_start..close], inner_start));
        rest_start = close + 2;
    }
    if rest_start < text.len() {
        found.push(Segment::Text(&text[rest_start..]));
    }
    Ok(found)
}

fn find_close(inner: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (at, c) in inner.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if inner[at..].starts_with("}}") => return Some(at),
            None => {}
        }
    }
    None
}

/// Renders every template in `value`, descending into lists and maps.
pub fn render(value: &Value, scope: &Scope) -> Result<Value, TemplateError> {
    render_at(value, scope, 0, &mut Budget(RENDERED_BYTES_MAX))
}

/// Renders a task's inputs: those named in `shell_commands` (strings run with `sh -c`)
/// with each value quoted for where it stands ([`shell_quote`](crate::shell_quote)),
/// the others as [`render`] does. One byte budget covers them all.
pub fn render_inputs(
    inputs: &serde_json::Map<String, Value>,
    scope: &Scope,
    shell_commands: &[&str],
) -> Result<Value, TemplateError> {
    let mut budget = Budget(RENDERED_BYTES_MAX);
    let mut rendered = serde_json::Map::new();
    for (key, value) in inputs {
        let value = match value {
            Value::String(text) if shell_commands.contains(&key.as_str()) => {
                let command = render_shell_command(text, scope)?;
                budget.spend(&command)?;
                command
            }
            other => render_at(other, scope, 1, &mut budget)?,
        };
        rendered.insert(key.clone(), value);
    }
    Ok(Value::Object(rendered))
}

/// A shell command with every template's value quoted for its place; always a string.
fn render_shell_command(text: &str, scope: &Scope) -> Result<Value, TemplateError> {
    let mut lexer = Lexer::default();
    let mut rendered = String::new();
    for part in segments(text)? {
        match part {
            Segment::Text(literal) => {
                lexer.read(literal);
                rendered.push_str(literal);
            }
            Segment::Expression(source, offset) => {
                let mut value = String::new();
                write_text(&mut value, &evaluate_source(source, scope)?);
                rendered.push_str(&lexer.quote(&value, offset)?);
            }
        }
    }
    Ok(Value::String(rendered))
}

/// Bytes the rest of one rendering may still produce (`RENDERED_BYTES_MAX` in all).
struct Budget(usize);

impl Budget {
    fn spend(&mut self, value: &Value) -> Result<(), TemplateError> {
        let bytes = match value {
            Value::String(text) => text.len(),
            Value::Array(_) | Value::Object(_) => value.to_string().len(),
            _ => 0,
        };
        self.0 = self.0.checked_sub(bytes).ok_or(TemplateError::TooLarge {
            limit: RENDERED_BYTES_MAX,
        })?;
        Ok(())
    }
}

fn render_at(
    value: &Value,
    scope: &Scope,
    depth: usize,
    budget: &mut Budget,
) -> Result<Value, TemplateError> {
    // Parsed inputs nest at most this deep; the check guards values built elsewhere.
    if depth > 2 * YAML_DEPTH_MAX {
        return Err(TemplateError::TooDeep {
            limit: 2 * YAML_DEPTH_MAX,
        });
    }
    match value {
        Value::String(text) => {
            let rendered = render_text(text, scope)?;
            budget.spend(&rendered)?;
            Ok(rendered)
        }
        Value::Array(items) => items
            .iter()
            .map(|item| render_at(item, scope, depth + 1, budget))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            let mut rendered = serde_json::Map::new();
            for (key, item) in map {
                rendered.insert(key.clone(), render_at(item, scope, depth + 1, budget)?);
            }
            Ok(Value::Object(rendered))
        }
        other => Ok(other.clone()),
    }
}

/// Renders one string; the result is typed only when the string is exactly one template.
pub(crate) fn render_text(text: &str, scope: &Scope) -> Result<Value, TemplateError> {
    let parts = segments(text)?;
    if let [Segment::Expression(source, _)] = parts.as_slice() {
        return evaluate_source(source, scope);
    }
    let mut rendered = String::new();
    for part in parts {
        match part {
            Segment::Text(literal) => rendered.push_str(literal),
            Segment::Expression(source, _) => {
                write_text(&mut rendered, &evaluate_source(source, scope)?)
            }
        }
    }
    Ok(Value::String(rendered))
}

fn evaluate_source(source: &str, scope: &Scope) -> Result<Value, TemplateError> {
    let wrap = |source_error: ExprError| TemplateError::Expression {
        expression: source.trim().to_owned(),
        source: source_error,
    };
    let parsed = expr::parse(source.trim()).map_err(wrap)?;
    expr::evaluate(&parsed, scope).map_err(wrap)
}

fn write_text(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(text) => out.push_str(text),
        other => out.push_str(&other.to_string()),
    }
}

/// Whether a value counts as true in a condition.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// What a task's conditions say to do.
///
/// In order: a true `if` returns its `then`; a false one returns its `else` when it has one
/// and otherwise leaves the decision to the next condition; with none deciding, the task
/// executes. An `if` without `{{` is read as a bare expression.
pub fn decide(conditions: &[Condition], scope: &Scope) -> Result<ConditionAction, TemplateError> {
    for condition in conditions {
        if truthy(&condition_value(&condition.if_, scope)?) {
            return Ok(condition.then);
        }
        if let Some(otherwise) = condition.else_ {
            return Ok(otherwise);
        }
    }
    Ok(ConditionAction::Execute)
}

fn condition_value(text: &str, scope: &Scope) -> Result<Value, TemplateError> {
    if text.contains("{{") {
        render_text(text, scope)
    } else {
        evaluate_source(text, scope)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::expr::TaskView;

    struct Fixture {
        variables: BTreeMap<String, Value>,
        tasks: BTreeMap<String, TaskView>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                variables: BTreeMap::from([
                    ("path".to_owned(), json!("/repo")),
                    ("limit".to_owned(), json!(5)),
                    ("missing".to_owned(), Value::Null),
                ]),
                tasks: BTreeMap::from([(
                    "scan".to_owned(),
                    TaskView {
                        status: "completed".into(),
                        outputs: json!({"findings": ["a", "b"], "meta": {"ok": true}, "errors": 2}),
                    },
                )]),
            }
        }

        fn scope(&self) -> Scope<'_> {
            Scope {
                variables: &self.variables,
                tasks: &self.tasks,
                run_id: "r1",
                workflow_name: "audit",
                item: None,
            }
        }
    }

    fn condition(if_: &str, then: ConditionAction, else_: Option<ConditionAction>) -> Condition {
        Condition {
            if_: if_.to_owned(),
            then,
            else_,
        }
    }

    #[test]
    fn shell_commands_get_their_values_quoted_and_other_inputs_do_not() {
        let fixture = Fixture::new();
        let inputs = json!({
            "command": "ls {{ variables.path }} '{{ variables.limit }}' {{ variables.missing }}",
            "note": "ls {{ variables.path }}",
            "count": "{{ variables.limit }}",
        });
        let Value::Object(inputs) = inputs else {
            unreachable!("a map")
        };
        let rendered = render_inputs(&inputs, &fixture.scope(), &["command"]).unwrap();
        assert_eq!(
            rendered,
            json!({"command": "ls '/repo' '5' ''", "note": "ls /repo", "count": 5})
        );
        let Value::Object(refused) = json!({"command": "echo $'{{ variables.path }}'"}) else {
            unreachable!("a map")
        };
        let error = render_inputs(&refused, &fixture.scope(), &["command"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the template at character 9 of a shell command stands inside $'...', where its \
             value cannot be quoted; move it out (Troupe quotes each value for where it stands)"
        );
    }

    #[test]
    fn a_whole_template_keeps_its_type() {
        let fixture = Fixture::new();
        let scope = fixture.scope();
        assert_eq!(
            render(&json!("{{ tasks.scan.outputs.findings }}"), &scope),
            Ok(json!(["a", "b"]))
        );
        assert_eq!(render(&json!("{{variables.limit}}"), &scope), Ok(json!(5)));
        assert_eq!(
            render(&json!("{{ tasks.scan.outputs.meta }}"), &scope),
            Ok(json!({"ok": true}))
        );
        assert_eq!(
            render(&json!("{{ variables.missing }}"), &scope),
            Ok(Value::Null)
        );
    }

    #[test]
    fn templates_inside_text_render_as_text() {
        let fixture = Fixture::new();
        let scope = fixture.scope();
        let input = json!({
            "a": "path={{ variables.path }} n={{ variables.limit }}",
            "b": ["x {{ tasks.scan.outputs.findings }}", "[{{ variables.missing }}]"],
            "c": 7,
            "d": " {{ run.id }}",
            "e": "no templates }} here",
        });
        let expected = json!({
            "a": "path=/repo n=5",
            "b": ["x [\"a\",\"b\"]", "[]"],
            "c": 7,
            "d": " r1",
            "e": "no templates }} here",
        });
        assert_eq!(render(&input, &scope), Ok(expected));
    }

    #[test]
    fn closing_braces_inside_quotes_do_not_close() {
        assert_eq!(
            segments("a{{ '}}' }}b"),
            Ok(vec![
                Segment::Text("a"),
                Segment::Expression(" '}}' ", 3),
                Segment::Text("b")
            ])
        );
        assert_eq!(
            segments("x {{ 1"),
            Err(TemplateError::Unclosed { offset: 2 })
        );
    }

    /// The attack: a workflow within the 4 MiB source limit names a 1 MiB output a few
    /// thousand times; rendered, that is gigabytes. The rendering stops at its budget.
    #[test]
    fn a_template_that_expands_past_the_budget_is_refused() {
        let mut fixture = Fixture::new();
        fixture
            .variables
            .insert("big".to_owned(), json!("x".repeat(1024 * 1024)));
        let inputs: Vec<Value> = (0..64).map(|_| json!("{{ variables.big }}")).collect();
        assert_eq!(
            render(&Value::Array(inputs.clone()), &fixture.scope()),
            Err(TemplateError::TooLarge {
                limit: RENDERED_BYTES_MAX
            })
        );
        let within = Value::Array(inputs[..8].to_vec());
        assert!(render(&within, &fixture.scope()).is_ok(), "8 MiB is within");
    }

    #[test]
    fn render_errors_name_the_expression() {
        let fixture = Fixture::new();
        let error = render(&json!("{{ len(true) }}"), &fixture.scope())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error,
            Some("in `{{ len(true) }}`: `len` cannot take a boolean".into())
        );
    }

    #[test]
    fn truthiness_table() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&falsy), "{falsy} should be false");
        }
        for true_ in [
            json!(true),
            json!(-1),
            json!("0"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truthy(&true_), "{true_} should be true");
        }
    }

    #[test]
    fn first_deciding_condition_wins() {
        use ConditionAction::{Execute, Fail, Skip};
        let fixture = Fixture::new();
        let scope = fixture.scope();
        let decide_on = |conditions: &[Condition]| decide(conditions, &scope);
        assert_eq!(decide_on(&[]), Ok(Execute));
        assert_eq!(
            decide_on(&[condition(
                "{{ tasks.scan.outputs.errors > 0 }}",
                Fail,
                Some(Skip)
            )]),
            Ok(Fail)
        );
        assert_eq!(
            decide_on(&[condition(
                "{{ tasks.scan.outputs.errors > 9 }}",
                Fail,
                Some(Skip)
            )]),
            Ok(Skip)
        );
        // A false `if` without `else` passes the decision on.
        assert_eq!(
            decide_on(&[
                condition("{{ false }}", Fail, None),
                condition("{{ len(tasks.scan.outputs.findings) == 2 }}", Skip, None),
            ]),
            Ok(Skip)
        );
        assert_eq!(
            decide_on(&[condition("{{ false }}", Fail, None)]),
            Ok(Execute)
        );
        // Missing outputs compare false instead of failing the run.
        assert_eq!(
            decide_on(&[condition(
                "{{ tasks.gone.outputs.n > 0 }}",
                Execute,
                Some(Skip)
            )]),
            Ok(Skip)
        );
        // Bare expressions work without braces.
        assert_eq!(
            decide_on(&[condition("tasks.scan.status == 'completed'", Skip, None)]),
            Ok(Skip)
        );
    }
}
