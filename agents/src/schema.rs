//! A small schema for agent inputs: named fields, their JSON type, required or not.
//! Enough to describe a kind in the API and the builder. Built-in kinds derive it from
//! their typed inputs ([`InputSchema::of`]) and are checked by deserialising into them
//! ([`parse_inputs`]); plugin kinds declare it in settings and are checked against it
//! ([`InputSchema::validate`]).

use std::borrow::Cow;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::errors::{AgentError, invalid};
use crate::field_order::field_order;

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

    /// The type a JSON Schema gives a property: its one `type` besides `null` (an
    /// optional field is nullable), else `Any` (a field that takes several shapes).
    fn of_json_schema(property: &Value) -> Self {
        let named: Vec<&str> = match property.get("type") {
            Some(Value::String(name)) => vec![name.as_str()],
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(Value::as_str)
                .filter(|name| *name != "null")
                .collect(),
            _ => Vec::new(),
        };
        match named.as_slice() {
            ["string"] => FieldType::String,
            ["integer"] => FieldType::Integer,
            ["number"] => FieldType::Number,
            ["boolean"] => FieldType::Boolean,
            ["array"] => FieldType::List,
            ["object"] => FieldType::Map,
            _ => FieldType::Any,
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
    /// The fields of `T`, derived from its `JsonSchema`: a doc comment is the field's
    /// description, a field without a default is required, and the schema is open unless
    /// `T` denies unknown fields. Fields come in the order `T` declares them.
    pub fn of<T: JsonSchema + DeserializeOwned>() -> Self {
        let schema = SchemaSettings::draft2020_12()
            .for_deserialize()
            .with(|settings| settings.inline_subschemas = true)
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields: Vec<Field> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .map(|(name, property)| {
                        let description = property
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        Field::new(
                            name.clone(),
                            FieldType::of_json_schema(property),
                            required.contains(&name.as_str()),
                            description.replace('\n', " "),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let declared = field_order::<T>();
        fields.sort_by_key(|field| {
            declared
                .iter()
                .position(|name| *name == field.name)
                .unwrap_or(declared.len())
        });
        let open = schema.get("additionalProperties") != Some(&Value::Bool(false));
        Self { fields, open }
    }

    fn field_names(&self) -> String {
        let names: Vec<&str> = self
            .fields
            .iter()
            .map(|field| field.name.as_ref())
            .collect();
        names.join(", ")
    }

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
                        format!("must be {:?}, got {}", field.field_type, type_name(value))
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
            return Err(self.unknown(unknown));
        }
        Ok(())
    }

    fn unknown(&self, field: &str) -> AgentError {
        invalid(
            field,
            format!(
                "is not an input of this agent; known: {}",
                self.field_names()
            ),
        )
    }
}

/// `inputs` as the typed inputs `T`: the one check a built-in kind's inputs get. Errors
/// name the field: a missing one, an unknown one (listing those `T` has), or one of the
/// wrong shape. A null is absent: an optional input (an `Option`) takes it as `None`,
/// and a required one is missing (a skipped task's outputs read as null).
pub fn parse_inputs<T: DeserializeOwned + JsonSchema>(
    inputs: Map<String, Value>,
) -> Result<T, AgentError> {
    serde_path_to_error::deserialize(Value::Object(inputs)).map_err(|error| {
        let at = error.path().to_string();
        let message = error.inner().to_string();
        let within = |field: &str| match at.as_str() {
            "." => field.to_string(),
            _ => format!("{at}.{field}"),
        };
        if let Some(field) = quoted_after(&message, "missing field ") {
            return invalid(&within(field), "is required");
        }
        if let Some(field) = quoted_after(&message, "unknown field ") {
            // The path already ends at the unknown field.
            let at = if at == "." { field } else { &at };
            return InputSchema::of::<T>().unknown(at);
        }
        if message.starts_with("invalid type: null") {
            return invalid(&at, "is required");
        }
        invalid(&at, &message)
    })
}

/// The name in backticks after `prefix` at the start of a serde error message.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split('`').next()
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

    /// Typed inputs as a kind declares them.
    #[derive(Debug, PartialEq, serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Example {
        /// The command.
        command: String,
        /// Seconds it may take.
        timeout: Option<u64>,
    }

    fn parse(inputs: Value) -> Result<Example, String> {
        let Value::Object(map) = inputs else {
            panic!("test inputs must be a map")
        };
        parse_inputs(map).map_err(|error| error.to_string())
    }

    #[test]
    fn the_schema_is_derived_from_the_typed_inputs() {
        assert_eq!(
            InputSchema::of::<Example>(),
            InputSchema {
                fields: vec![
                    Field::new("command", FieldType::String, true, "The command."),
                    Field::new("timeout", FieldType::Integer, false, "Seconds it may take."),
                ],
                open: false,
            }
        );
        let open = InputSchema::of::<Map<String, Value>>();
        assert!(open.open && open.fields.is_empty(), "{open:?}");
    }

    #[test]
    fn typed_inputs_name_the_missing_wrong_or_unknown_field() {
        assert_eq!(
            parse(json!({"command": "ls", "timeout": null})),
            Ok(Example {
                command: "ls".into(),
                timeout: None
            })
        );
        let refused = |inputs| parse(inputs).expect_err("refused");
        assert_eq!(refused(json!({})), "input `command`: is required");
        assert_eq!(
            refused(json!({"command": null})),
            "input `command`: is required"
        );
        assert_eq!(
            refused(json!({"command": 1})),
            "input `command`: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            refused(json!({"command": "x", "timeout": -1})),
            "input `timeout`: invalid value: integer `-1`, expected u64"
        );
        assert_eq!(
            refused(json!({"command": "x", "comand": 1})),
            "input `comand`: is not an input of this agent; known: command, timeout"
        );
    }
}
