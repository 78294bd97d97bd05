//! Evaluates an expression against a [`Scope`].
//!
//! Rules that keep conditions forgiving where a run's data is incomplete: a missing output
//! or an unfinished task reads as `null`; ordering comparisons with `null` are false;
//! `==` across different types is false; `len(null)` is 0.

use std::cmp::Ordering;

use serde_json::Value;

use crate::errors::ExprError;
use crate::limits::EXPRESSION_DEPTH_MAX;

use super::names::{Name, classify};
use super::{BinaryOp, Expr, Function, Scope};

/// Evaluates `expr`; errors are unknown names and operations on the wrong types.
pub fn evaluate(expr: &Expr, scope: &Scope) -> Result<Value, ExprError> {
    // Parsed expressions are already bounded; this guards hand-built trees.
    if depth(expr) > 2 * EXPRESSION_DEPTH_MAX {
        return Err(ExprError::TooDeep {
            limit: EXPRESSION_DEPTH_MAX,
        });
    }
    eval(expr, scope)
}

fn depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(expr, 1)];
    while let Some((expr, level)) = stack.pop() {
        deepest = deepest.max(level);
        match expr {
            Expr::Literal(_) | Expr::Path(_) => {}
            Expr::List(items) | Expr::Call(_, items) => {
                stack.extend(items.iter().map(|item| (item, level + 1)));
            }
            Expr::Not(inner) | Expr::Negate(inner) => stack.push((inner, level + 1)),
            Expr::Binary(_, left, right) => {
                stack.push((left, level + 1));
                stack.push((right, level + 1));
            }
        }
    }
    deepest
}

fn eval(expr: &Expr, scope: &Scope) -> Result<Value, ExprError> {
    match expr {
        Expr::Literal(value) => Ok(value.clone()),
        Expr::List(items) => items
            .iter()
            .map(|item| eval(item, scope))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Expr::Path(segments) => lookup(segments, scope),
        Expr::Not(inner) => Ok(Value::Bool(!crate::template::truthy(&eval(inner, scope)?))),
        Expr::Negate(inner) => negate(eval(inner, scope)?),
        Expr::Binary(BinaryOp::And, left, right) => {
            let result = crate::template::truthy(&eval(left, scope)?)
                && crate::template::truthy(&eval(right, scope)?);
            Ok(Value::Bool(result))
        }
        Expr::Binary(BinaryOp::Or, left, right) => {
            let result = crate::template::truthy(&eval(left, scope)?)
                || crate::template::truthy(&eval(right, scope)?);
            Ok(Value::Bool(result))
        }
        Expr::Binary(op, left, right) => binary(*op, &eval(left, scope)?, &eval(right, scope)?),
        Expr::Call(function, arguments) => {
            let values = arguments
                .iter()
                .map(|argument| eval(argument, scope))
                .collect::<Result<Vec<_>, _>>()?;
            call(*function, values)
        }
    }
}

fn lookup(segments: &[String], scope: &Scope) -> Result<Value, ExprError> {
    match classify(segments, scope.item.map(|item| item.name))? {
        Name::Item { rest } => Ok(scope
            .item
            .map_or(Value::Null, |item| descend(item.value, rest))),
        Name::Variable { name, rest } => match scope.variables.get(name) {
            Some(value) => Ok(descend(value, rest)),
            None => Err(ExprError::UnknownName {
                name: segments.join("."),
                reason: "the workflow declares no such variable".to_owned(),
            }),
        },
        Name::TaskOutputs { task, rest } => Ok(scope
            .tasks
            .get(task)
            .map_or(Value::Null, |view| descend(&view.outputs, rest))),
        Name::TaskStatus { task } => Ok(scope
            .tasks
            .get(task)
            .map_or(Value::Null, |view| Value::String(view.status.clone()))),
        Name::RunId => Ok(Value::String(scope.run_id.to_owned())),
        Name::WorkflowName => Ok(Value::String(scope.workflow_name.to_owned())),
    }
}

/// Follows map keys and list indices; anything missing is `null`. A key read from a
/// list is read from each of its items: `tasks.code.outputs.file` of a fan-out is the
/// list of its children's files. Each step goes one level into the value or one name
/// along the path, so the depth is bounded by both.
fn descend(value: &Value, rest: &[String]) -> Value {
    let Some((segment, after)) = rest.split_first() else {
        return value.clone();
    };
    match value {
        Value::Object(map) => map
            .get(segment)
            .map_or(Value::Null, |next| descend(next, after)),
        Value::Array(items) => match segment.parse::<usize>() {
            Ok(index) => items
                .get(index)
                .map_or(Value::Null, |next| descend(next, after)),
            Err(_) => Value::Array(items.iter().map(|item| descend(item, rest)).collect()),
        },
        _ => Value::Null,
    }
}

fn negate(value: Value) -> Result<Value, ExprError> {
    if let Some(negated) = value.as_i64().and_then(i64::checked_neg) {
        return Ok(Value::from(negated));
    }
    match value.as_f64() {
        Some(number) => Ok(Value::from(-number)),
        None => Err(type_error("-", &value)),
    }
}

fn binary(op: BinaryOp, left: &Value, right: &Value) -> Result<Value, ExprError> {
    let result = match op {
        BinaryOp::Equal => loosely_equal(left, right),
        BinaryOp::NotEqual => !loosely_equal(left, right),
        BinaryOp::Less => compare(left, right, "<")? == Some(Ordering::Less),
        BinaryOp::LessOrEqual => matches!(
            compare(left, right, "<=")?,
            Some(Ordering::Less | Ordering::Equal)
        ),
        BinaryOp::Greater => compare(left, right, ">")? == Some(Ordering::Greater),
        BinaryOp::GreaterOrEqual => {
            matches!(
                compare(left, right, ">=")?,
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        BinaryOp::In => contains(right, left, "in")?,
        BinaryOp::And | BinaryOp::Or => {
            crate::template::truthy(left) && crate::template::truthy(right)
        }
    };
    Ok(Value::Bool(result))
}

/// `None` when either side is `null`, so every ordering test on it is false.
fn compare(left: &Value, right: &Value, operation: &str) -> Result<Option<Ordering>, ExprError> {
    match (left, right) {
        (Value::Null, _) | (_, Value::Null) => Ok(None),
        (Value::Number(a), Value::Number(b)) => Ok(compare_numbers(a, b)),
        (Value::String(a), Value::String(b)) => Ok(Some(a.cmp(b))),
        (Value::Number(_) | Value::String(_), other) | (other, _) => {
            Err(type_error(operation, other))
        }
    }
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    let exact = |n: &serde_json::Number| n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
    match (exact(a), exact(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Structural equality in which `1 == 1.0`; walks with an explicit stack.
pub(crate) fn loosely_equal(left: &Value, right: &Value) -> bool {
    let mut pending = vec![(left, right)];
    while let Some(pair) = pending.pop() {
        let same = match pair {
            (Value::Number(a), Value::Number(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
            (Value::Array(a), Value::Array(b)) => {
                pending.extend(a.iter().zip(b));
                a.len() == b.len()
            }
            (Value::Object(a), Value::Object(b)) => {
                let keys_match = a.len() == b.len() && a.keys().all(|key| b.contains_key(key));
                pending.extend(
                    a.iter()
                        .filter_map(|(key, value)| Some((value, b.get(key)?))),
                );
                keys_match
            }
            (a, b) => a == b,
        };
        if !same {
            return false;
        }
    }
    true
}

/// List membership, substring, or map key; nothing is in `null`.
fn contains(haystack: &Value, needle: &Value, operation: &str) -> Result<bool, ExprError> {
    match (haystack, needle) {
        (Value::Null, _) => Ok(false),
        (Value::Array(items), _) => Ok(items.iter().any(|item| loosely_equal(item, needle))),
        (Value::String(text), Value::String(part)) => Ok(text.contains(part.as_str())),
        (Value::Object(map), Value::String(key)) => Ok(map.contains_key(key)),
        (Value::String(_) | Value::Object(_), other) | (other, _) => {
            Err(type_error(operation, other))
        }
    }
}

fn call(function: Function, mut arguments: Vec<Value>) -> Result<Value, ExprError> {
    let second = arguments.pop();
    let first = arguments.pop();
    match (function, first, second) {
        (Function::Len, None, Some(value)) => length(&value).map(Value::from),
        (Function::Contains, Some(haystack), Some(needle)) => {
            contains(&haystack, &needle, "contains").map(Value::Bool)
        }
        (Function::Default, Some(Value::Null), Some(fallback)) => Ok(fallback),
        (Function::Default, Some(value), Some(_)) => Ok(value),
        // The parser checks arity; this covers hand-built trees.
        (function, _, _) => Err(ExprError::Type {
            operation: function.name().to_owned(),
            found: "the wrong number of arguments".to_owned(),
        }),
    }
}

fn length(value: &Value) -> Result<usize, ExprError> {
    match value {
        Value::Null => Ok(0),
        Value::String(text) => Ok(text.chars().count()),
        Value::Array(items) => Ok(items.len()),
        Value::Object(map) => Ok(map.len()),
        other => Err(type_error("len", other)),
    }
}

fn type_error(operation: &str, value: &Value) -> ExprError {
    ExprError::Type {
        operation: operation.to_owned(),
        found: format!("a {}", crate::variables::json_type_name(value)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::expr::{TaskView, parse};

    fn run(source: &str) -> Result<Value, ExprError> {
        let variables = BTreeMap::from([
            ("count".to_owned(), json!(3)),
            ("name".to_owned(), json!("audit")),
            ("tags".to_owned(), json!(["a", "b"])),
        ]);
        let tasks = BTreeMap::from([(
            "scan".to_owned(),
            TaskView {
                status: "completed".into(),
                outputs: json!({"findings": [{"id": 1}, {"id": 2}], "score": 0.5}),
            },
        )]);
        let scope = Scope {
            variables: &variables,
            tasks: &tasks,
            run_id: "run-1",
            workflow_name: "wf",
            item: None,
        };
        evaluate(&parse(source)?, &scope)
    }

    #[test]
    fn names_read_the_scope() {
        assert_eq!(run("variables.count"), Ok(json!(3)));
        assert_eq!(run("tasks.scan.outputs.findings.1.id"), Ok(json!(2)));
        assert_eq!(run("tasks.scan.status"), Ok(json!("completed")));
        assert_eq!(run("run.id"), Ok(json!("run-1")));
        assert_eq!(run("workflow.name"), Ok(json!("wf")));
    }

    #[test]
    fn a_key_read_from_a_list_is_read_from_each_item() {
        assert_eq!(run("tasks.scan.outputs.findings.id"), Ok(json!([1, 2])));
        assert_eq!(run("len(tasks.scan.outputs.findings.id)"), Ok(json!(2)));
        assert_eq!(
            run("tasks.scan.outputs.findings.missing"),
            Ok(json!([null, null]))
        );
        assert_eq!(run("variables.tags.0"), Ok(json!("a")));
        assert_eq!(run("variables.tags.9"), Ok(Value::Null));
    }

    #[test]
    fn missing_outputs_are_null_and_compare_false() {
        assert_eq!(run("tasks.scan.outputs.nothing"), Ok(Value::Null));
        assert_eq!(run("tasks.other.outputs.x"), Ok(Value::Null));
        assert_eq!(run("tasks.other.status"), Ok(Value::Null));
        assert_eq!(run("tasks.scan.outputs.nothing > 0"), Ok(json!(false)));
        assert_eq!(run("tasks.scan.outputs.nothing <= 0"), Ok(json!(false)));
        assert_eq!(run("len(tasks.other.outputs.x)"), Ok(json!(0)));
    }

    #[test]
    fn equality_is_false_across_types_and_loose_for_numbers() {
        assert_eq!(run("1 == '1'"), Ok(json!(false)));
        assert_eq!(run("1 != '1'"), Ok(json!(true)));
        assert_eq!(run("3 == 3.0"), Ok(json!(true)));
        assert_eq!(run("[1, 'a'] == [1.0, 'a']"), Ok(json!(true)));
        assert_eq!(run("null == null"), Ok(json!(true)));
    }

    #[test]
    fn ordering_works_on_numbers_and_strings_only() {
        assert_eq!(run("variables.count >= 3"), Ok(json!(true)));
        assert_eq!(run("'b' > 'a'"), Ok(json!(true)));
        assert_eq!(run("tasks.scan.outputs.score < 1"), Ok(json!(true)));
        assert_eq!(
            run("true < 1").err().map(|e| e.to_string()),
            Some("`<` cannot take a boolean".into())
        );
    }

    #[test]
    fn logic_uses_truthiness() {
        assert_eq!(run("!0 && 'x' || false"), Ok(json!(true)));
        assert_eq!(run("[] || ''"), Ok(json!(false)));
        assert_eq!(run("!(1 > 2)"), Ok(json!(true)));
    }

    #[test]
    fn membership_and_functions() {
        assert_eq!(run("'a' in variables.tags"), Ok(json!(true)));
        assert_eq!(run("'ud' in variables.name"), Ok(json!(true)));
        assert_eq!(run("'x' in null"), Ok(json!(false)));
        assert_eq!(run("contains(variables.tags, 'c')"), Ok(json!(false)));
        assert_eq!(run("contains('audit', 'dit')"), Ok(json!(true)));
        assert_eq!(run("len('héllo')"), Ok(json!(5)));
        assert_eq!(run("len(tasks.scan.outputs.findings)"), Ok(json!(2)));
        assert_eq!(
            run("default(tasks.scan.outputs.none, 'n/a')"),
            Ok(json!("n/a"))
        );
        assert_eq!(run("default(variables.count, 0)"), Ok(json!(3)));
        assert_eq!(run("-variables.count"), Ok(json!(-3)));
        assert_eq!(
            run("len(true)").err().map(|e| e.to_string()),
            Some("`len` cannot take a boolean".into())
        );
        assert_eq!(
            run("1 in 2").err().map(|e| e.to_string()),
            Some("`in` cannot take a number".into())
        );
    }

    #[test]
    fn unknown_variables_are_errors() {
        assert_eq!(
            run("variables.nope").err().map(|e| e.to_string()),
            Some("unknown name `variables.nope`: the workflow declares no such variable".into())
        );
    }

    #[test]
    fn hand_built_deep_trees_are_refused() {
        let mut expr = Expr::Literal(json!(true));
        for _ in 0..10_000 {
            expr = Expr::Not(Box::new(expr));
        }
        let empty = BTreeMap::new();
        let tasks = BTreeMap::new();
        let scope = Scope {
            variables: &empty,
            tasks: &tasks,
            run_id: "",
            workflow_name: "",
            item: None,
        };
        assert_eq!(
            evaluate(&expr, &scope),
            Err(ExprError::TooDeep {
                limit: EXPRESSION_DEPTH_MAX
            })
        );
        // Dropping the tree recurses too; unwind it by hand so the test itself cannot overflow.
        while let Expr::Not(inner) = expr {
            expr = *inner;
        }
    }
}
