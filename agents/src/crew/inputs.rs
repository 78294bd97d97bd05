//! Input types the model-backed kinds share: text that must say something, and file
//! lists that may come as one name. Each checks itself while it is deserialised, so a
//! kind's inputs are whole once they parse.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// A string with something in it, trimmed: an empty goal or log is refused by name
/// instead of being sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Text(String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim() {
            "" => Err(de::Error::custom("must not be empty")),
            trimmed => Ok(Self(trimmed.to_string())),
        }
    }
}

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1 })
    }
}

/// An optional text input, trimmed; blank counts as not given (a template that rendered
/// to nothing).
pub fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// A list of strings, also accepted as one string (so `{{ tasks.x.outputs.file }}` and
/// `{{ tasks.x.outputs.files }}` both work). Nulls in the list are left out: a skipped
/// task's outputs read as null.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Strings(pub Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StringsVisitor)
    }
}

struct StringsVisitor;

impl<'de> Visitor<'de> for StringsVisitor {
    type Value = Strings;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string or a list of strings")
    }

    fn visit_str<E: de::Error>(self, one: &str) -> Result<Strings, E> {
        Ok(Strings(vec![one.to_string()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Strings, A::Error> {
        let mut strings = Vec::new();
        while let Some(item) = items.next_element::<Option<String>>()? {
            strings.extend(item);
        }
        Ok(Strings(strings))
    }
}

impl JsonSchema for Strings {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Strings".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "array"], "items": { "type": "string" } })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_is_trimmed_and_must_say_something() {
        let text: Text = serde_json::from_value(json!("  a goal ")).expect("text");
        assert_eq!(text.as_str(), "a goal");
        let empty = serde_json::from_value::<Text>(json!("  ")).expect_err("empty");
        assert_eq!(empty.to_string(), "must not be empty");
    }

    #[test]
    fn strings_come_as_one_or_a_list_without_nulls() {
        let one: Strings = serde_json::from_value(json!("a.py")).expect("one");
        assert_eq!(one.0, ["a.py"]);
        let list: Strings = serde_json::from_value(json!(["a.py", null, "b.py"])).expect("list");
        assert_eq!(list.0, ["a.py", "b.py"]);
        let wrong = serde_json::from_value::<Strings>(json!([1])).expect_err("number");
        assert_eq!(
            wrong.to_string(),
            "invalid type: integer `1`, expected a string"
        );
        let wrong = serde_json::from_value::<Strings>(json!(7)).expect_err("number");
        assert_eq!(
            wrong.to_string(),
            "invalid type: integer `7`, expected a string or a list of strings"
        );
    }
}
