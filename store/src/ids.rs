//! The ids of runs, tasks, projects, users and workflows as types of their own, so that a
//! user's id passed where a run's is expected fails to compile instead of failing a lookup.
//!
//! Each is a string underneath and `#[serde(transparent)]`: the wire format and the stored
//! rows are exactly the strings they always were. Reading one never checks its shape:
//! whatever a log or a row holds today must keep reading, and an unknown id is refused by
//! the lookup that does not find it, not by its parser. They live in the store because it
//! is the lowest crate that every crate naming them (security, engine, node, api, the
//! binary) depends on; the workflow and agents crates below it keep plain strings.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares one id type: the newtype, its conversions to and from strings, comparisons
/// with strings (so a test or a filter can say `run.run_id == "r1"`), and an OpenAPI
/// schema that is a plain string.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Lets maps keyed by the id be looked up with a `&str` (a path segment, a
        // query parameter). Sound because the derived `Hash` and `Eq` are `str`'s.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        // By hand, as for the access vocabulary: the document shows a string (with this
        // type's name as its component), never an object wrapping one.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type! {
    /// A run: a UUIDv7 minted when it starts ([`RunId::generate`]), so ids sort by start.
    RunId
}

id_type! {
    /// A task of a run: the task's `id` in its workflow, unique within that workflow only.
    TaskId
}

id_type! {
    /// A project: the name its creator chose (`default` for the one every node has).
    ProjectId
}

id_type! {
    /// An account: a UUIDv7 minted when it is created ([`UserId::generate`]).
    UserId
}

id_type! {
    /// A workflow: the `id` its definition declares; every version of it shares the id.
    WorkflowId
}

id_type! {
    /// One agent attempt invoked outside any workflow (`POST /api/v1/agents/{kind}/invoke`):
    /// `inv-` and a UUIDv7 ([`InvocationId::generate`]).
    InvocationId
}

impl InvocationId {
    /// A fresh id for an invocation accepted now.
    pub fn generate() -> Self {
        Self(format!("inv-{}", uuid::Uuid::now_v7()))
    }
}

impl RunId {
    /// The run a schedule's tick starts: the same id whichever node fires the tick, so
    /// that the store's unique run id lets exactly one of them start it.
    pub fn for_tick(workflow: &WorkflowId, tick_ms: i64) -> Self {
        let digest = crate::digest::sha256_hex(&format!("schedule\n{workflow}\n{tick_ms}"));
        let part = |from: usize, to: usize| &digest[from..to];
        Self(format!(
            "{}-{}-{}-{}-{}",
            part(0, 8),
            part(8, 12),
            part(12, 16),
            part(16, 20),
            part(20, 32)
        ))
    }

    /// A fresh id for a run starting now. Time-ordered (v7), so the newest runs' ids sort
    /// last and the log's keys of one run stay close together.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl UserId {
    /// A fresh id for an account being created.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire and the stored rows see the bare string, and any string reads back: ids
    /// written before these types existed, or by hand, stay readable.
    #[test]
    fn an_id_is_its_string_on_the_wire_and_reads_whatever_was_stored() {
        let run = RunId::from("r1");
        assert_eq!(serde_json::to_value(&run).unwrap(), serde_json::json!("r1"));
        for stored in ["", "r1", "not a uuid / at all", "019a-…"] {
            let read: UserId = serde_json::from_value(serde_json::json!(stored)).unwrap();
            assert_eq!(read, stored);
            assert_eq!(read.to_string(), stored);
        }
    }

    #[test]
    fn generated_ids_are_distinct_uuids() {
        let first = RunId::generate();
        assert_ne!(first, RunId::generate());
        assert!(uuid::Uuid::parse_str(first.as_str()).is_ok());
        assert!(uuid::Uuid::parse_str(UserId::generate().as_str()).is_ok());
    }

    #[test]
    fn a_map_keyed_by_ids_is_looked_up_by_str() {
        let mut runs = std::collections::HashMap::new();
        runs.insert(RunId::from("r1"), 1);
        assert_eq!(runs.get("r1"), Some(&1));
    }

    #[test]
    fn the_schema_is_a_string() {
        let schema = serde_json::to_value(<WorkflowId as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
    }
}
