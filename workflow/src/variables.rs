//! Run-time variable overrides: type checks against the declared defaults, and the text
//! coercion behind the CLI's `--var name=value`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::errors::VariableError;
use crate::yaml;

/// The JSON type of a value as users read it: `null`, `boolean`, `number`, `string`, `list`, `map`.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Merges `overrides` over `defaults`, collecting every refused override.
pub(crate) fn resolve(
    defaults: &BTreeMap<String, Value>,
    overrides: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Vec<VariableError>> {
    let mut resolved = defaults.clone();
    let mut errors = Vec::new();
    for (name, value) in overrides {
        match defaults.get(name) {
            None => errors.push(VariableError::Unknown {
                name: name.clone(),
                known: known_names(defaults),
            }),
            Some(default) if !same_type(default, value) => errors.push(VariableError::WrongType {
                name: name.clone(),
                expected: json_type_name(default),
                given: json_type_name(value),
            }),
            Some(_) => {
                resolved.insert(name.clone(), value.clone());
            }
        }
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

fn known_names(defaults: &BTreeMap<String, Value>) -> String {
    if defaults.is_empty() {
        return "(none)".to_owned();
    }
    defaults
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `null` default accepts anything: it declares the name, not a type.
fn same_type(default: &Value, value: &Value) -> bool {
    default.is_null() || json_type_name(default) == json_type_name(value)
}

/// Turns command-line text into a value of the default's type.
///
/// Text stays text for a string default; numbers and booleans are parsed; lists and maps
/// are read as JSON or YAML flow (`[a, b]`, `{k: v}`); a `null` default takes the text as
/// a YAML value, so `5` is a number and `main` a string.
pub fn coerce_variable_text(default: &Value, text: &str) -> Result<Value, VariableError> {
    let refuse = |reason: &str| VariableError::NotCoercible {
        text: text.to_owned(),
        expected: json_type_name(default),
        reason: reason.to_owned(),
    };
    match default {
        Value::String(_) => Ok(Value::String(text.to_owned())),
        Value::Bool(_) => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(refuse("write `true` or `false`")),
        },
        Value::Number(_) => match yaml::resolve_scalar(text.trim(), false) {
            yaml::Scalar::Integer(number) => Ok(Value::Number(number)),
            yaml::Scalar::Float(number) => Ok(Value::from(number)),
            _ => Err(refuse("write a decimal number such as `3` or `0.5`")),
        },
        Value::Array(_) | Value::Object(_) => {
            let value = parse_structured(text).map_err(|reason| refuse(&reason))?;
            if json_type_name(&value) == json_type_name(default) {
                Ok(value)
            } else {
                Err(refuse(&format!("it reads as a {}", json_type_name(&value))))
            }
        }
        Value::Null => parse_structured(text).or_else(|_| Ok(Value::String(text.to_owned()))),
    }
}

/// JSON first (exact numbers, the usual escaping), then YAML for `[a, b]` and `{k: v}`.
fn parse_structured(text: &str) -> Result<Value, String> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    let loaded = yaml::load(text);
    if let Some(error) = loaded.errors.first() {
        return Err(error.message.clone());
    }
    let root = loaded.root.ok_or_else(|| "the text is empty".to_owned())?;
    yaml::to_value(&root).map_err(|error| error.message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn defaults() -> BTreeMap<String, Value> {
        BTreeMap::from([
            ("path".to_owned(), json!(".")),
            ("limit".to_owned(), json!(10)),
            ("anything".to_owned(), Value::Null),
        ])
    }

    #[test]
    fn overrides_merge_over_defaults() {
        let overrides = BTreeMap::from([
            ("limit".to_owned(), json!(2.5)),
            ("anything".to_owned(), json!(["x"])),
        ]);
        let resolved = resolve(&defaults(), &overrides);
        let expected = BTreeMap::from([
            ("path".to_owned(), json!(".")),
            ("limit".to_owned(), json!(2.5)),
            ("anything".to_owned(), json!(["x"])),
        ]);
        assert_eq!(resolved, Ok(expected));
    }

    #[test]
    fn unknown_and_mistyped_overrides_are_all_reported() {
        let overrides = BTreeMap::from([
            ("limit".to_owned(), json!("ten")),
            ("nope".to_owned(), json!(1)),
        ]);
        let messages: Vec<String> = match resolve(&defaults(), &overrides) {
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
            Ok(resolved) => panic!("accepted {resolved:?}"),
        };
        assert_eq!(
            messages,
            vec![
                "variable `limit` expects a number, but was given a string",
                "unknown variable `nope`; the workflow declares: anything, limit, path",
            ]
        );
    }

    #[test]
    fn text_is_coerced_to_the_default_type() {
        assert_eq!(coerce_variable_text(&json!("x"), "42"), Ok(json!("42")));
        assert_eq!(coerce_variable_text(&json!(1), "42"), Ok(json!(42)));
        assert_eq!(coerce_variable_text(&json!(1), "0.25"), Ok(json!(0.25)));
        assert_eq!(coerce_variable_text(&json!(false), "true"), Ok(json!(true)));
        assert_eq!(
            coerce_variable_text(&json!([]), "[a, 2]"),
            Ok(json!(["a", 2]))
        );
        assert_eq!(
            coerce_variable_text(&json!([]), r#"["a", 2]"#),
            Ok(json!(["a", 2]))
        );
        assert_eq!(
            coerce_variable_text(&json!({}), "{k: v}"),
            Ok(json!({"k": "v"}))
        );
        assert_eq!(coerce_variable_text(&Value::Null, "5"), Ok(json!(5)));
        assert_eq!(
            coerce_variable_text(&Value::Null, "main"),
            Ok(json!("main"))
        );
    }

    #[test]
    fn uncoercible_text_says_why() {
        let error = coerce_variable_text(&json!(1), "many")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error,
            Some("`many` is not a number: write a decimal number such as `3` or `0.5`".into())
        );
        let error = coerce_variable_text(&json!([]), "{a: 1}")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error,
            Some("`{a: 1}` is not a list: it reads as a map".into())
        );
        assert_eq!(
            coerce_variable_text(&json!(true), "yes").map_err(|e| e.to_string()),
            Err("`yes` is not a boolean: write `true` or `false`".into())
        );
    }
}
