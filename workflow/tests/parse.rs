//! Parsing the workflow language: the spec's example, and one test per kind of error.

use std::collections::BTreeMap;

use serde_json::json;
use troupe_workflow::{
    Condition, ConditionAction, FanOut, OnBudget, ScheduleTrigger, Task, Triggers, Workflow,
    parse_workflow, to_yaml,
};

const AGENTS: &[&str] = &["security_scanner", "code_review", "human_review", "shell"];

const SPEC_EXAMPLE: &str = r#"name: "Nightly dependency audit"
variables:
  repository_path: "."
triggers:
  schedule: { cron: "30 2 * * *" }
tasks:
  - id: scan
    name: "Scan for vulnerable dependencies and secrets"
    agent: security_scanner
    inputs:
      repository: "{{ variables.repository_path }}"
    timeout: 600
  - id: triage
    name: "Explain the findings"
    agent: code_review
    depends_on: [scan]
    inputs:
      findings: "{{ tasks.scan.outputs.findings }}"
    conditions:
      - if: "{{ len(tasks.scan.outputs.findings) > 0 }}"
        then: execute
        else: skip
  - id: sign_off
    name: "Security lead signs off"
    agent: human_review
    depends_on: [triage]
    requires_approval: true
"#;

fn task(id: &str, name: &str, agent: &str) -> Task {
    Task {
        id: id.into(),
        name: name.into(),
        agent: agent.into(),
        inputs: BTreeMap::new(),
        depends_on: Vec::new(),
        conditions: Vec::new(),
        timeout_secs: None,
        max_retries: 3,
        requires_approval: false,
        approval_timeout_secs: None,
        estimated_cost: 0.0,
        budget_usd: None,
        runs_on: Vec::new(),
        fan_out: None,
    }
}

/// The rendered diagnostics, one string per problem.
fn errors(source: &str) -> Vec<String> {
    match parse_workflow(source, "wf.yaml", AGENTS) {
        Ok(workflow) => panic!("expected errors, parsed {workflow:?}"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

fn with_tasks(tasks: &str) -> String {
    format!("name: t\nvariables:\n  limit: 3\ntasks:\n{tasks}")
}

#[test]
fn the_spec_example_parses_to_the_expected_workflow() {
    let parsed = parse_workflow(SPEC_EXAMPLE, "audit.yaml", AGENTS);
    let mut scan = task(
        "scan",
        "Scan for vulnerable dependencies and secrets",
        "security_scanner",
    );
    scan.inputs.insert(
        "repository".into(),
        json!("{{ variables.repository_path }}"),
    );
    scan.timeout_secs = Some(600);
    let mut triage = task("triage", "Explain the findings", "code_review");
    triage.depends_on = vec!["scan".into()];
    triage.inputs.insert(
        "findings".into(),
        json!("{{ tasks.scan.outputs.findings }}"),
    );
    triage.conditions = vec![Condition {
        if_: "{{ len(tasks.scan.outputs.findings) > 0 }}".into(),
        then: ConditionAction::Execute,
        else_: Some(ConditionAction::Skip),
    }];
    let mut sign_off = task("sign_off", "Security lead signs off", "human_review");
    sign_off.depends_on = vec!["triage".into()];
    sign_off.requires_approval = true;
    let expected = Workflow {
        id: "nightly-dependency-audit".into(),
        name: "Nightly dependency audit".into(),
        description: None,
        version: "1.0".into(),
        variables: BTreeMap::from([("repository_path".into(), json!("."))]),
        triggers: Triggers {
            on_push: None,
            schedule: Some(ScheduleTrigger {
                cron: "30 2 * * *".into(),
                timezone: None,
                catch_up: Default::default(),
            }),
        },
        separate_approver: false,
        project: None,
        budget_usd: None,
        on_budget: Default::default(),
        tasks: vec![scan, triage, sign_off],
    };
    assert_eq!(parsed, Ok(expected));
}

#[test]
fn workflow_helpers_follow_the_graph() {
    let source = with_tasks(
        "  - {id: a, name: A, agent: shell, estimated_cost: 1.5}\n  - {id: b, name: B, agent: shell, depends_on: [c], estimated_cost: 2}\n  - {id: c, name: C, agent: shell, depends_on: [a]}\n  - {id: d, name: D, agent: shell}\n",
    );
    let workflow = parse_workflow(&source, "wf.yaml", AGENTS).map_err(|d| d.to_string());
    let Ok(workflow) = workflow else {
        panic!("{workflow:?}")
    };
    assert_eq!(workflow.topological_order(), vec!["a", "d", "c", "b"]);
    assert_eq!(
        workflow.downstream("a").into_iter().collect::<Vec<_>>(),
        vec!["b", "c"]
    );
    assert!(workflow.downstream("zzz").is_empty());
    assert_eq!(workflow.estimated_cost(), 3.5);
    assert_eq!(
        workflow.task("c").map(|t| t.depends_on.clone()),
        Some(vec!["a".to_string()])
    );
    assert_eq!(workflow.task("zzz"), None);
}

#[test]
fn optional_keys_are_read() {
    let source = r#"id: my-flow
name: t
description: "what it does"
version: 2.10
separate_approver: true
project: shop-web
triggers:
  on_push: { branches: [main, develop] }
  schedule: { cron: "0 9 * * 1", timezone: Europe/Paris }
tasks:
  - id: a
    name: A
    agent: shell
    max_retries: 0
    requires_approval: true
    approval_timeout: 3600
    estimated_cost: 0.25
    runs_on: [gpu, big-disk]
    inputs: { deep: { list: [1, 2.5, true, null, "x"] } }
"#;
    let parsed = parse_workflow(source, "wf.yaml", AGENTS).map_err(|d| d.to_string());
    let Ok(workflow) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(workflow.id, "my-flow");
    assert_eq!(workflow.version, "2.10");
    assert_eq!(workflow.description.as_deref(), Some("what it does"));
    assert!(workflow.separate_approver);
    assert_eq!(workflow.project.as_deref(), Some("shop-web"));
    assert_eq!(
        workflow.triggers.on_push.map(|p| p.branches),
        Some(vec!["main".into(), "develop".into()])
    );
    assert_eq!(
        workflow.triggers.schedule.and_then(|s| s.timezone),
        Some("Europe/Paris".into())
    );
    let task = &workflow.tasks[0];
    assert_eq!(
        (
            task.max_retries,
            task.approval_timeout_secs,
            task.estimated_cost
        ),
        (0, Some(3600), 0.25)
    );
    assert_eq!(task.runs_on, ["gpu", "big-disk"]);
    assert_eq!(
        task.inputs["deep"],
        json!({"list": [1, 2.5, true, null, "x"]})
    );
    assert!(
        task.inputs["deep"]["list"][0].is_u64(),
        "integers stay integers"
    );
}

#[test]
fn unknown_keys_suggest_the_closest() {
    let source = with_tasks("  - id: a\n    name: A\n    agent: shell\n    depends-on: []\n");
    assert_eq!(
        errors(&source),
        vec![
            "wf.yaml:8:5: tasks[0].depends-on: unknown key `depends-on` (hint: did you mean `depends_on`?)"
        ]
    );
    assert_eq!(
        errors("name: t\ntask: []\n"),
        vec![
            "wf.yaml:1:1: missing required key `tasks` (hint: add `tasks: ...`)",
            "wf.yaml:2:1: task: unknown key `task` (hint: did you mean `tasks`?)",
        ]
    );
}

#[test]
fn wrong_types_name_expected_and_found() {
    let source = with_tasks(
        "  - id: a\n    name: [x]\n    agent: shell\n    requires_approval: yes\n    depends_on: a\n",
    );
    assert_eq!(
        errors(&source),
        vec![
            "wf.yaml:6:11: tasks[0].name: expected a string, found a list",
            "wf.yaml:8:24: tasks[0].requires_approval: expected `true` or `false`, found the string \"yes\"",
            "wf.yaml:9:17: tasks[0].depends_on: expected a list, found the string \"a\"",
        ]
    );
}

#[test]
fn numeric_limits_are_checked() {
    let source = with_tasks(
        "  - id: a\n    name: A\n    agent: shell\n    timeout: 0\n    max_retries: -1\n    estimated_cost: -2\n    approval_timeout: 1.5\n",
    );
    assert_eq!(
        errors(&source),
        vec![
            "wf.yaml:8:14: tasks[0].timeout: expected an integer ≥ 1, found 0",
            "wf.yaml:9:18: tasks[0].max_retries: expected an integer from 0 to 100, found -1",
            "wf.yaml:10:21: tasks[0].estimated_cost: must not be negative, found -2",
            "wf.yaml:11:23: tasks[0].approval_timeout: expected an integer ≥ 1, found the number `1.5`",
            "wf.yaml:11:23: tasks[0].approval_timeout: approval_timeout needs an approval gate (hint: add `requires_approval: true` or remove `approval_timeout`)",
        ]
    );
}

#[test]
fn required_keys_and_ids_are_checked() {
    let source = with_tasks(
        "  - id: Bad-Id\n    name: A\n  - {id: b, name: B, agent: shell}\n  - {id: b, name: C, agent: shell}\n",
    );
    let found = parse_workflow(&source, "wf.yaml", AGENTS)
        .err()
        .map(|d| d.0)
        .unwrap_or_default();
    let summary: Vec<(usize, usize, &str, Option<&str>, &str)> = found
        .iter()
        .map(|d| {
            (
                d.line,
                d.column,
                d.path.as_str(),
                d.task_id.as_deref(),
                d.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (5, 5, "tasks[0]", None, "missing required key `agent`"),
            (
                5,
                9,
                "tasks[0].id",
                None,
                "task id `Bad-Id` must match [a-z0-9_]+"
            ),
            (
                8,
                10,
                "tasks[2].id",
                Some("b"),
                "duplicate task id `b` (first used at line 7)"
            ),
        ]
    );
}

#[test]
fn unknown_dependencies_and_agents_are_reported() {
    let source = with_tasks(
        "  - id: build\n    name: A\n    agent: shel\n  - id: test\n    name: B\n    agent: shell\n    depends_on: [biuld]\n",
    );
    assert_eq!(
        errors(&source),
        vec![
            "wf.yaml:7:12: tasks[0].agent: unknown agent kind `shel` (hint: did you mean `shell`? known agent kinds: security_scanner, code_review, human_review, shell)",
            "wf.yaml:11:18: tasks[1].depends_on[0]: depends on unknown task `biuld` (hint: did you mean `build`?)",
        ]
    );
}

#[test]
fn cycles_are_reported_with_their_path() {
    let source = with_tasks(
        "  - {id: a, name: A, agent: shell, depends_on: [b]}\n  - {id: b, name: B, agent: shell, depends_on: [a]}\n  - {id: c, name: C, agent: shell, depends_on: [c]}\n",
    );
    assert_eq!(
        errors(&source),
        vec![
            "wf.yaml:5:49: tasks[0].depends_on[0]: dependency cycle: a -> b -> a (hint: remove one of the depends_on entries along the cycle)",
            "wf.yaml:7:49: tasks[2].depends_on[0]: dependency cycle: c -> c (hint: remove one of the depends_on entries along the cycle)",
        ]
    );
}

#[test]
fn cron_errors_point_at_the_value() {
    let source = "name: t\ntriggers:\n  schedule:\n    cron: \"0 0 30 2 * *\"\ntasks:\n  - {id: a, name: A, agent: shell}\n";
    assert_eq!(
        errors(source),
        vec![
            "wf.yaml:4:11: triggers.schedule.cron: invalid cron `0 0 30 2 * *`: it has 6 field(s), not 5 (hint: five fields: minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\")"
        ]
    );
    let bad_minute = source.replace("0 0 30 2 * *", "99 * * * *");
    let found = errors(&bad_minute);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("wf.yaml:4:11: triggers.schedule.cron: invalid cron `99 * * * *`: "),
        "{found:?}"
    );
    let never = source.replace("0 0 30 2 * *", "0 0 31 2 *");
    assert_eq!(
        errors(&never),
        vec![
            "wf.yaml:4:11: triggers.schedule.cron: invalid cron `0 0 31 2 *`: it never fires: no date matches its day, month and weekday (hint: five fields: minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\")"
        ]
    );
}

#[test]
fn template_errors_are_located_and_explained() {
    let source = with_tasks(
        r#"  - id: a
    name: A
    agent: shell
  - id: b
    name: B
    agent: shell
    depends_on: [a]
    inputs:
      x: "{{ variables.limt }}"
      y: ["ok", {z: "n={{ tasks.a.outputs.n + 1 }}"}]
      w: "{{ tasks.c.status }}"
      v: "{{ env.HOME }}"
      u: "{{ unclosed"
    conditions:
      - if: "{{ tasks.a.outputs.n > 0 }}"
        then: skip
  - id: c
    name: C
    agent: shell
    conditions:
      - if: "tasks.b.status == 'completed'"
        then: execute
"#,
    );
    assert_eq!(
        errors(&source),
        vec![
            "wf.yaml:13:10: tasks[1].inputs.x: unknown variable `limt` (hint: did you mean `limit`?)",
            "wf.yaml:14:21: tasks[1].inputs.y[1].z: invalid expression `tasks.a.outputs.n + 1`: syntax error at character 18: unexpected character `+`",
            "wf.yaml:15:10: tasks[1].inputs.w: task `c` is not upstream of `b`, so reading it could race (hint: add `c` to the depends_on of `b`)",
            "wf.yaml:16:10: tasks[1].inputs.v: unknown name `env.HOME`: names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string",
            "wf.yaml:17:10: tasks[1].inputs.u: `{{` at character 0 has no closing `}}` (hint: close it with `}}`)",
            "wf.yaml:25:13: tasks[2].conditions[0].if: task `b` is not upstream of `c`, so reading it could race (hint: add `b` to the depends_on of `c`)",
        ]
    );
}

#[test]
fn every_error_is_collected_at_once() {
    let source = "name: 5\nversion: true\nbogus: 1\ntriggers: {on_push: {branches: main}}\ntasks:\n  - {id: a, name: A, agent: nope, depends_on: [zz], timeout: -5}\n  - 7\n";
    let found = errors(source);
    assert_eq!(found.len(), 7, "{found:#?}");
    assert_eq!(
        found[0],
        "wf.yaml:2:10: version: expected a string, found the boolean `true`"
    );
}

#[test]
fn yaml_level_problems_become_diagnostics() {
    assert_eq!(
        errors("name: a\nname: b\ntasks: [{id: a, name: A, agent: shell}]\n"),
        vec![
            "wf.yaml:2:1: name: duplicate key `name` (first defined at line 1) (hint: remove or rename one of them)"
        ]
    );
    assert_eq!(
        errors(""),
        vec!["wf.yaml:1:1: the workflow is empty (hint: start with `name:` and `tasks:`)"]
    );
    let found = errors("name: [unclosed\ntasks: []\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("invalid YAML"), "{found:?}");
    assert_eq!(
        errors("- 1\n"),
        vec!["wf.yaml:1:1: expected a map, found a list"]
    );
}

#[test]
fn a_project_must_be_a_slug() {
    let source = "name: t\nproject: \"Shop Web\"\ntasks:\n  - { id: a, name: A, agent: shell }\n";
    let errors = parse_workflow(source, "wf.yaml", AGENTS).unwrap_err();
    let error = &errors.0[0];
    assert_eq!((error.line, error.path.as_str()), (2, "project"));
    assert_eq!(error.message, "project `Shop Web` must match [a-z0-9_-]+");
    assert_eq!(
        error.hint.as_deref(),
        Some("use lowercase letters, digits, `-` and `_`, e.g. `shop-web`")
    );
}

#[test]
fn runs_on_names_labels_each_once() {
    let source = with_tasks(
        "  - id: a\n    name: A\n    agent: shell\n    runs_on: [gpu, \"has space\", gpu, 7]\n",
    );
    let errors = parse_workflow(&source, "wf.yaml", AGENTS)
        .expect_err("bad labels")
        .to_string();
    assert!(
        errors.contains("tasks[0].runs_on[1]: `has space` is not a node label"),
        "{errors}"
    );
    assert!(
        errors.contains("tasks[0].runs_on[2]: `gpu` is listed twice"),
        "{errors}"
    );
}

const FAN_OUT: &str = r#"name: lanes
tasks:
  - id: architect
    name: Architect
    agent: code_review
  - id: code
    name: Code
    agent: shell
    depends_on: [architect]
    for_each: "{{ tasks.architect.outputs.modules }}"
    as: module
    max_items: 12
    concurrency: 4
    fail_fast: false
    inputs:
      command: "echo {{ module.name }}"
    conditions:
      - if: "{{ module.kind != 'docs' }}"
        then: execute
        else: skip
  - id: test
    name: Test
    agent: shell
    depends_on: [code]
    for_each: "{{ tasks.code.outputs }}"
    inputs:
      command: "echo {{ item.stdout }}"
"#;

#[test]
fn a_fan_out_parses_with_its_item_in_scope_and_its_defaults() {
    let workflow = parse_workflow(FAN_OUT, "lanes.yaml", AGENTS).expect("parses");
    let code = workflow.task("code").and_then(|task| task.fan_out.clone());
    assert_eq!(
        code,
        Some(FanOut {
            for_each: "{{ tasks.architect.outputs.modules }}".into(),
            item_name: "module".into(),
            max_items: 12,
            concurrency: Some(4),
            fail_fast: false,
        })
    );
    let test = workflow.task("test").and_then(|task| task.fan_out.clone());
    assert_eq!(
        test,
        Some(FanOut {
            for_each: "{{ tasks.code.outputs }}".into(),
            item_name: "item".into(),
            max_items: 50,
            concurrency: None,
            fail_fast: true,
        })
    );
    let written = to_yaml(&workflow);
    assert_eq!(parse_workflow(&written, "again.yaml", AGENTS), Ok(workflow));
}

#[test]
fn a_bad_fan_out_is_refused_where_it_is_written() {
    let with = |key: &str, value: &str| {
        FAN_OUT.replace(
            "    as: module\n",
            &format!("    as: module\n    {key}: {value}\n"),
        )
    };
    let cases = [
        (
            FAN_OUT.replace(
                "\"{{ tasks.architect.outputs.modules }}\"",
                "\"modules: {{ tasks.architect.outputs.modules }}\"",
            ),
            "wf.yaml:10:15: tasks[1].for_each: `for_each` must be exactly one template (hint: write one template whose value is a list, e.g. `\"{{ tasks.architect.outputs.modules }}\"`)",
        ),
        (
            FAN_OUT.replace("as: module", "as: tasks"),
            "wf.yaml:11:9: tasks[1].as: `tasks` is taken: templates read `tasks.` already (hint: pick another name, e.g. `module`)",
        ),
        (
            FAN_OUT.replace("as: module", "as: Module"),
            "wf.yaml:11:9: tasks[1].as: `Module` is not a name (hint: use lowercase letters, digits and `_`, e.g. `module`)",
        ),
        (
            FAN_OUT.replace("max_items: 12", "max_items: 0"),
            "wf.yaml:12:16: tasks[1].max_items: expected an integer from 1 to 10000, found 0",
        ),
        (
            FAN_OUT.replace("max_items: 12", "max_items: 10001"),
            "wf.yaml:12:16: tasks[1].max_items: expected an integer from 1 to 10000, found 10001",
        ),
        (
            FAN_OUT.replace("concurrency: 4", "concurrency: 0"),
            "wf.yaml:13:18: tasks[1].concurrency: expected an integer from 1 to 10000, found 0",
        ),
        (
            with("requires_approval", "true"),
            "wf.yaml:12:24: tasks[1].requires_approval: a fan-out task cannot wait for approval: its children would each ask (hint: put an approval task before the fan-out, in its depends_on)",
        ),
        (
            FAN_OUT.replace("{{ tasks.architect.outputs.modules }}", "{{ module.list }}"),
            "wf.yaml:10:15: tasks[1].for_each: unknown name `module.list`: names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string",
        ),
        (
            FAN_OUT.replace("echo {{ item.stdout }}", "echo {{ module.stdout }}"),
            "wf.yaml:27:16: tasks[2].inputs.command: unknown name `module.stdout`: names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string",
        ),
        (
            FAN_OUT.replace("max_items: 12", "max_items: 400"),
            "wf.yaml:25:15: tasks[2].for_each: nested fan-outs may make 20000 children (400 × max_items 50); the most is 10000 (hint: lower max_items here or in the fan-out it reads)",
        ),
    ];
    // A bad `as` leaves the item unnamed, so the templates that read `module` say so too.
    let unnamed = [
        "wf.yaml:16:16: tasks[1].inputs.command: unknown name `module.name`: names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string",
        "wf.yaml:18:13: tasks[1].conditions[0].if: unknown name `module.kind`: names start with `variables.`, `tasks.`, `run.` or `workflow.`; quote text to make it a string",
    ];
    for (source, expected) in cases {
        let mut expected = vec![expected.to_owned()];
        if expected[0].contains("tasks[1].as:") {
            expected.extend(unnamed.map(str::to_owned));
        }
        assert_eq!(errors(&source), expected, "{source}");
    }
    let loose = "name: t\ntasks:\n  - {id: a, name: A, agent: shell, concurrency: 2}\n";
    assert_eq!(
        errors(loose),
        vec![
            "wf.yaml:3:49: tasks[0].concurrency: `concurrency` needs `for_each` (hint: add `for_each: \"{{ ... }}\"` or remove `concurrency`)"
        ]
    );
}

#[test]
fn budgets_are_read_for_the_run_and_for_a_task() {
    let source = "name: t\nbudget_usd: 2.5\non_budget: local_only\ntasks:\n  \
                  - { id: a, name: A, agent: shell, budget_usd: 0.5, estimated_cost: 0.1 }\n  \
                  - { id: b, name: B, agent: shell }\n";
    let workflow = parse_workflow(source, "wf.yaml", AGENTS).unwrap();
    assert_eq!(workflow.budget_usd, Some(2.5));
    assert_eq!(workflow.on_budget, OnBudget::LocalOnly);
    assert_eq!(workflow.task("a").unwrap().budget_usd, Some(0.5));
    assert_eq!(workflow.task("b").unwrap().budget_usd, None);
    let again = parse_workflow(&to_yaml(&workflow), "again.yaml", AGENTS).unwrap();
    assert_eq!(again, workflow, "export keeps the budgets");
    let plain = parse_workflow(
        &with_tasks("  - { id: a, name: A, agent: shell }\n"),
        "wf.yaml",
        AGENTS,
    )
    .unwrap();
    assert_eq!((plain.budget_usd, plain.on_budget), (None, OnBudget::Fail));
}

#[test]
fn a_bad_budget_is_refused_where_it_is_written() {
    let task = "  - { id: a, name: A, agent: shell }\n";
    for (source, expected) in [
        (
            format!("name: t\nbudget_usd: -1\ntasks:\n{task}"),
            "wf.yaml:2:13: budget_usd: must not be negative, found -1",
        ),
        (
            format!("name: t\nbudget_usd: lots\ntasks:\n{task}"),
            "wf.yaml:2:13: budget_usd: expected a number ≥ 0, found the string \"lots\"",
        ),
        (
            format!("name: t\nbudget_usd: 1\non_budget: pray\ntasks:\n{task}"),
            "wf.yaml:3:12: on_budget: unknown on_budget `pray` (hint: `fail` (the task fails) or `local_only` (the call goes to local models))",
        ),
        (
            format!("name: t\non_budget: local_only\ntasks:\n{task}"),
            "wf.yaml:2:12: on_budget: on_budget needs a budget (hint: add `budget_usd:` to the workflow or to a task)",
        ),
        (
            with_tasks("  - { id: a, name: A, agent: shell, budget_usd: -0.5 }\n"),
            "wf.yaml:5:49: tasks[0].budget_usd: must not be negative, found -0.5",
        ),
    ] {
        assert_eq!(errors(&source), vec![expected.to_owned()], "{source}");
    }
    // A task's budget is enough for `on_budget`.
    let source = "name: t\non_budget: local_only\ntasks:\n  - { id: a, name: A, agent: shell, budget_usd: 1 }\n";
    assert!(parse_workflow(source, "wf.yaml", AGENTS).is_ok());
}
