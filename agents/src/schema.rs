//! A small schema for agent inputs: named fields, their JSON type, required or not.
//! Enough to refuse a bad task before it runs, and to describe a kind in the API.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::errors::AgentError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Map,
    Any,
}

impl FieldType {
    fn accepts(self, value: &Value) -> bool {
        match self {
            FieldType::String => value.is_string(),
            FieldType::Integer => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::List => value.is_array(),
            FieldType::Map => value.is_object(),
            FieldType::Any => true,
        }
    }
}

/// One input. Names and descriptions are `Cow`: built-in kinds borrow literals, plugin
/// kinds own what settings declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: Cow<'static, str>,
    pub field_type: FieldType,
    pub required: bool,
    pub description: Cow<'static, str>,
}

impl Field {
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        field_type: FieldType,
        required: bool,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            name: name.into(),
            field_type,
            required,
            description: description.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSchema {
    pub fields: Vec<Field>,
    /// Whether inputs not in `fields` are accepted (the `echo` agent takes anything).
    pub open: bool,
}

impl InputSchema {
    /// Checks every field and reports the first problem by name.
    pub fn validate(&self, inputs: &Map<String, Value>) -> Result<(), AgentError> {
        for field in &self.fields {
            match inputs.get(field.name.as_ref()) {
                None | Some(Value::Null) if field.required => {
                    return Err(invalid(&field.name, "is required"));
                }
                Some(value) if !value.is_null() && !field.field_type.accepts(value) => {
                    return Err(invalid(
                        &field.name,
                        &format!("must be {:?}, got {}", field.field_type, type_name(value))
                            .to_lowercase(),
                    ));
                }
                _ => {}
            }
        }
        let unknown = inputs
            .keys()
            .find(|key| !self.fields.iter().any(|field| field.name == key.as_str()));
        if let Some(unknown) = unknown.filter(|_| !self.open) {
            let known: Vec<&str> = self
                .fields
                .iter()
                .map(|field| field.name.as_ref())
                .collect();
            return Err(invalid(
                unknown,
                &format!("is not an input of this agent; known: {}", known.join(", ")),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &str, reason: &str) -> AgentError {
    AgentError::InvalidInput {
        field: field.into(),
        reason: reason.into(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> InputSchema {
        InputSchema {
            fields: vec![
                Field::new("command", FieldType::String, true, ""),
                Field::new("timeout", FieldType::Integer, false, ""),
            ],
            open: false,
        }
    }

    fn check(inputs: Value) -> Result<(), AgentError> {
        let Value::Object(map) = inputs else {
            panic!("test inputs must be a map")
        };
        schema().validate(&map)
    }

    #[test]
    fn accepts_well_typed_inputs() {
        assert_eq!(check(json!({"command": "ls", "timeout": 3})), Ok(()));
        assert_eq!(check(json!({"command": "ls"})), Ok(()));
    }

    #[test]
    fn names_the_missing_wrong_or_unknown_field() {
        assert_eq!(
            check(json!({})).unwrap_err().to_string(),
            "input `command`: is required"
        );
        assert_eq!(
            check(json!({"command": 1})).unwrap_err().to_string(),
            "input `command`: must be string, got number"
        );
        assert_eq!(
            check(json!({"command": "x", "timeout": 1.5}))
                .unwrap_err()
                .to_string(),
            "input `timeout`: must be integer, got number"
        );
        assert_eq!(
            check(json!({"command": "x", "comand": 1}))
                .unwrap_err()
                .to_string(),
            "input `comand`: is not an input of this agent; known: command, timeout"
        );
    }
}
