//! Any expression text must parse and evaluate to a value or an error, never panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use troupe_workflow::{Scope, TaskView, expr};

fuzz_target!(|source: &str| {
    let variables = BTreeMap::from([("n".to_owned(), json!(2)), ("s".to_owned(), json!("text"))]);
    let tasks = BTreeMap::from([(
        "a".to_owned(),
        TaskView { status: "completed".into(), outputs: json!({"k": [1, 2], "m": {"x": null}}) },
    )]);
    let scope = Scope { variables: &variables, tasks: &tasks, run_id: "run", workflow_name: "wf", item: None };
    if let Ok(parsed) = expr::parse(source) {
        let _outcome = expr::evaluate(&parsed, &scope);
    }
});
