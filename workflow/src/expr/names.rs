//! What a dotted name refers to; shared by validation and evaluation so they cannot disagree.

use crate::errors::ExprError;

/// The meaning of a dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    /// `variables.NAME.rest...`
    Variable { name: &'a str, rest: &'a [String] },
    /// `tasks.ID.outputs.rest...`
    TaskOutputs { task: &'a str, rest: &'a [String] },
    /// `tasks.ID.status`
    TaskStatus { task: &'a str },
    /// `run.id`
    RunId,
    /// `workflow.name`
    WorkflowName,
    /// `ITEM.rest...` in a fan-out task, where `ITEM` is its `as` name.
    Item { rest: &'a [String] },
}

/// Classifies a path, or says which names exist. `item` is the `as` name of the fan-out
/// whose templates are read, if any; it is never one of the fixed roots.
pub fn classify<'a>(segments: &'a [String], item: Option<&str>) -> Result<Name<'a>, ExprError> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.as_slice() {
        [first, ..] if Some(*first) == item => Ok(Name::Item {
            rest: &segments[1..],
        }),
        ["variables", name, ..] => Ok(Name::Variable {
            name,
            rest: &segments[2..],
        }),
        ["tasks", task, "outputs", ..] => Ok(Name::TaskOutputs {
            task,
            rest: &segments[3..],
        }),
        ["tasks", task, "status"] => Ok(Name::TaskStatus { task }),
        ["run", "id"] => Ok(Name::RunId),
        ["workflow", "name"] => Ok(Name::WorkflowName),
        ["variables"] => Err(unknown(segments, "name the variable: `variables.NAME`")),
        ["tasks", ..] => Err(unknown(
            segments,
            "a task is read as `tasks.ID.outputs...` or `tasks.ID.status`",
        )),
        ["run", ..] => Err(unknown(segments, "the run offers only `run.id`")),
        ["workflow", ..] => Err(unknown(
            segments,
            "the workflow offers only `workflow.name`",
        )),
        _ => Err(unknown(
            segments,
            "names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string",
        )),
    }
}

fn unknown(segments: &[String], reason: &str) -> ExprError {
    ExprError::UnknownName {
        name: segments.join("."),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(text: &str) -> Vec<String> {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn known_shapes_are_classified() {
        let deep = segments("tasks.scan.outputs.a.b");
        assert_eq!(
            classify(&deep, None),
            Ok(Name::TaskOutputs {
                task: "scan",
                rest: &deep[3..]
            })
        );
        assert_eq!(
            classify(&segments("tasks.scan.status"), None),
            Ok(Name::TaskStatus { task: "scan" })
        );
        assert_eq!(classify(&segments("run.id"), None), Ok(Name::RunId));
        let variable = segments("variables.path");
        assert_eq!(
            classify(&variable, None),
            Ok(Name::Variable {
                name: "path",
                rest: &[]
            })
        );
    }

    #[test]
    fn a_fan_out_s_item_is_read_by_its_name_and_nowhere_else() {
        let path = segments("module.name");
        assert_eq!(
            classify(&path, Some("module")),
            Ok(Name::Item { rest: &path[1..] })
        );
        assert!(classify(&path, None).is_err());
        assert!(classify(&path, Some("lane")).is_err());
    }

    #[test]
    fn unknown_shapes_explain_the_valid_ones() {
        let error = classify(&segments("tasks.scan.result"), None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error,
            Some("unknown name `tasks.scan.result`: a task is read as `tasks.ID.outputs...` or `tasks.ID.status`".into())
        );
        assert_eq!(
            classify(&segments("env.HOME"), None).map(|_| ()).map_err(|e| e.to_string()),
            Err("unknown name `env.HOME`: names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string".into())
        );
    }
}
