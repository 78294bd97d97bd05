//! What a user reads, pinned as text: the diagnostics of a workflow with many mistakes,
//! and a task's inputs rendered from its scope. A change to either shows up as a diff
//! of the expected text (`UPDATE_EXPECT=1 cargo nextest run ...` rewrites it after a
//! deliberate change).

use expect_test::expect;
use troupe_workflow::parse_workflow;

const AGENTS: &[&str] = &["shell", "code_review", "human_review"];

#[test]
fn every_mistake_of_a_workflow_is_reported_with_its_position() {
    let source = r#"name: Broken
variables:
  target: 3
tasks:
  - id: build
    name: Build
    agent: shel
    inputs: { command: "make {{ variables.missing }}" }
  - id: review
    name: Review
    agent: code_review
    depends_on: [build, nowhere]
    timeout: -5
  - id: build
    name: Again
    agent: shell
    conditions:
      - if: "{{ tasks.review.outputs.x > }}"
        then: explode
"#;
    let diagnostics = parse_workflow(source, "broken.yaml", AGENTS)
        .expect_err("the workflow is broken")
        .to_string();
    expect![[r#"
        broken.yaml:7:12: tasks[0].agent: unknown agent kind `shel` (hint: did you mean `shell`? known agent kinds: shell, code_review, human_review)
        broken.yaml:8:24: tasks[0].inputs.command: unknown variable `missing` (hint: declare it under `variables:` as `missing: ...`)
        broken.yaml:12:25: tasks[1].depends_on[1]: depends on unknown task `nowhere` (hint: declare a task with id `nowhere` or remove it)
        broken.yaml:13:14: tasks[1].timeout: expected an integer ≥ 1, found -5
        broken.yaml:14:9: tasks[2].id: duplicate task id `build` (first used at line 5) (hint: give each task its own id)
        broken.yaml:18:13: tasks[2].conditions[0].if: invalid expression `tasks.review.outputs.x >`: syntax error at character 24: expected a value, found the end
        broken.yaml:19:15: tasks[2].conditions[0].then: unknown action `explode` (hint: use `execute`, `skip` or `fail`)"#]].assert_eq(&diagnostics);
}

#[test]
fn a_tasks_inputs_render_from_variables_and_earlier_outputs() {
    use std::collections::BTreeMap;

    use serde_json::json;
    use troupe_workflow::{Scope, TaskView, render};

    let variables = BTreeMap::from([("repository".to_string(), json!("./shop"))]);
    let tasks = BTreeMap::from([(
        "scan".to_string(),
        TaskView {
            status: "completed".into(),
            outputs: json!({"files_with_findings": ["pay.py", "db.py"], "critical_count": 2}),
        },
    )]);
    let scope = Scope {
        variables: &variables,
        tasks: &tasks,
        run_id: "run-1",
        workflow_name: "Scan and review",
        item: None,
    };
    let inputs = json!({
        "work_dir": "{{ variables.repository }}",
        "files": "{{ tasks.scan.outputs.files_with_findings }}",
        "focus": "{{ tasks.scan.outputs.critical_count }} critical finding(s) in {{ variables.repository }}",
        "later": "{{ tasks.deploy.outputs.url }}",
        "literal": 7
    });
    let rendered = render(&inputs, &scope).expect("every template renders");
    expect![[r#"
        {
          "files": [
            "pay.py",
            "db.py"
          ],
          "focus": "2 critical finding(s) in ./shop",
          "later": null,
          "literal": 7,
          "work_dir": "./shop"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&rendered).unwrap());
}
