//! Properties over generated input: nothing panics, and export round-trips.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use troupe_workflow::{
    CatchUp, Condition, ConditionAction, FanOut, OnBudget, PushTrigger, ScheduleTrigger, Scope,
    Task, TaskView, Triggers, Workflow, decide, expr, parse_workflow, render, to_yaml,
};

const AGENTS: &[&str] = &["shell", "code_review"];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.,:#'\"\\-]{1,20}",
        "\\PC{1,12}",
        Just("1.0".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just(" lead and trail ".to_owned()),
        Just("line\nbreak\ttab \\ \u{85}\u{2028}\u{7f}".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        // `{{` opens a template, which must then be valid: plain values leave it out.
        text()
            .prop_filter("no template markers", |t| !t.contains("{{"))
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn action() -> impl Strategy<Value = ConditionAction> {
    prop_oneof![
        Just(ConditionAction::Execute),
        Just(ConditionAction::Skip),
        Just(ConditionAction::Fail)
    ]
}

fn task(index: usize) -> impl Strategy<Value = Task> {
    let id = format!("t{index}");
    (
        text().prop_filter("names are not blank", |t| !t.trim().is_empty()),
        prop::sample::select(AGENTS),
        prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3),
        prop::collection::vec((action(), prop::option::of(action())), 0..2),
        (
            prop::option::of(1u64..100_000),
            0u32..=100,
            any::<bool>(),
            prop::option::of(1u64..100_000),
        ),
        (0.0f64..1000.0, prop::option::of(0.0f64..100.0)),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        prop::option::of((
            prop::sample::select(vec!["item", "module", "lane_2"]),
            1u32..=10_000,
            prop::option::of(1u32..=64),
            any::<bool>(),
        )),
    )
        .prop_map(
            move |(name, agent, inputs, conditions, limits, (cost, budget), deps, fan_out)| {
                let (timeout_secs, max_retries, requires_approval, approval_timeout) = limits;
                let mut depends_on: Vec<String> = deps
                    .iter()
                    .filter(|_| index > 0)
                    .map(|i| format!("t{}", i.index(index)))
                    .collect();
                depends_on.sort();
                depends_on.dedup();
                let conditions = conditions
                    .into_iter()
                    .map(|(then, else_)| Condition {
                        if_: "{{ variables.flag && run.id != '' }}".into(),
                        then,
                        else_,
                    })
                    .collect();
                Task {
                    id: id.clone(),
                    name,
                    agent: agent.to_string(),
                    inputs,
                    depends_on,
                    conditions,
                    timeout_secs,
                    max_retries,
                    requires_approval,
                    approval_timeout_secs: approval_timeout.filter(|_| requires_approval),
                    estimated_cost: cost,
                    budget_usd: budget,
                    runs_on: if requires_approval {
                        vec!["gpu".into(), "big-disk_2.x".into()]
                    } else {
                        Vec::new()
                    },
                    // A fan-out cannot wait for approval; a list literal needs no upstream.
                    fan_out: fan_out.filter(|_| !requires_approval).map(
                        |(item_name, max_items, concurrency, fail_fast)| FanOut {
                            for_each: "{{ [1, 'two', [3]] }}".into(),
                            item_name: item_name.into(),
                            max_items,
                            concurrency,
                            fail_fast,
                        },
                    ),
                }
            },
        )
}

fn workflow() -> impl Strategy<Value = Workflow> {
    (1usize..6)
        .prop_flat_map(|count| {
            (
                text().prop_filter("names are not blank", |t| !t.trim().is_empty()),
                prop::option::of(text()),
                "[0-9]\\.[0-9]{1,2}",
                prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..3),
                prop::option::of(prop::collection::vec("[a-z/]{1,8}", 0..3)),
                prop::option::of((
                    prop::sample::select(vec!["30 2 * * *", "0 9 * * 1", "*/5 * * * *"]),
                    // A blank time zone is invalid, so a valid workflow never has one.
                    prop::option::of(
                        text().prop_filter("time zones are not blank", |t| !t.trim().is_empty()),
                    ),
                )),
                (
                    any::<bool>(),
                    prop::option::of(0.0f64..1000.0),
                    any::<bool>(),
                ),
                prop::option::of("[a-z0-9_-]{1,12}"),
                (0..count).map(task).collect::<Vec<_>>(),
            )
        })
        .prop_map(
            |(
                name,
                description,
                version,
                mut variables,
                branches,
                schedule,
                (separate_approver, budget_usd, local_only),
                project,
                tasks,
            )| {
                variables.insert("flag".into(), json!(true));
                Workflow {
                    id: "generated-flow".into(),
                    name,
                    description,
                    version,
                    variables,
                    triggers: Triggers {
                        on_push: branches.map(|branches| PushTrigger {
                            branches,
                            secret: Some("hooks.shop".into()),
                        }),
                        schedule: schedule.map(|(cron, timezone)| ScheduleTrigger {
                            cron: cron.into(),
                            catch_up: if timezone.is_some() {
                                CatchUp::Skip
                            } else {
                                CatchUp::Once
                            },
                            timezone,
                        }),
                    },
                    separate_approver,
                    project,
                    // `on_budget` needs a budget somewhere to be valid.
                    on_budget: if local_only && budget_usd.is_some() {
                        OnBudget::LocalOnly
                    } else {
                        OnBudget::Fail
                    },
                    budget_usd,
                    tasks,
                }
            },
        )
}

fn scope_parts() -> (BTreeMap<String, Value>, BTreeMap<String, TaskView>) {
    let variables = BTreeMap::from([("n".to_owned(), json!(2)), ("s".to_owned(), json!("x"))]);
    let tasks = BTreeMap::from([(
        "a".to_owned(),
        TaskView {
            status: "completed".into(),
            outputs: json!({"k": [1, 2]}),
        },
    )]);
    (variables, tasks)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn export_round_trips(workflow in workflow()) {
        let yaml = to_yaml(&workflow);
        let parsed = parse_workflow(&yaml, "gen.yaml", AGENTS);
        prop_assert_eq!(parsed, Ok(workflow), "yaml:\n{}", yaml);
    }

    #[test]
    fn random_text_never_panics_the_parser(source in "\\PC{0,200}") {
        let _outcome = parse_workflow(&source, "fuzz.yaml", AGENTS);
    }

    #[test]
    fn yaml_like_text_never_panics_the_parser(source in "[-:{}\\[\\],&*!|>'\"# \\na-z0-9._]{0,300}") {
        let prefixed = format!("name: x\ntasks:\n  - {source}");
        let _outcome = parse_workflow(&prefixed, "fuzz.yaml", AGENTS);
        let _outcome = parse_workflow(&source, "fuzz.yaml", AGENTS);
    }

    #[test]
    fn random_expressions_never_panic(source in "[-a-z0-9_.()\\[\\],'\" !=<>&|]{0,80}") {
        let (variables, tasks) = scope_parts();
        let scope = Scope { variables: &variables, tasks: &tasks, run_id: "r", workflow_name: "w", item: None };
        if let Ok(parsed) = expr::parse(&source) {
            let _outcome = expr::evaluate(&parsed, &scope);
        }
        let _outcome = render(&Value::String(format!("{{{{ {source} }}}}")), &scope);
        let condition = Condition { if_: source, then: ConditionAction::Skip, else_: None };
        let _outcome = decide(&[condition], &scope);
    }

    #[test]
    fn random_cron_never_panics(fields in prop::collection::vec("[-0-9*/,LW#?A-Z]{1,5}", 5)) {
        let source = format!("name: x\ntriggers: {{schedule: {{cron: \"{}\"}}}}\ntasks: [{{id: a, name: A, agent: shell}}]\n", fields.join(" "));
        let _outcome = parse_workflow(&source, "cron.yaml", AGENTS);
    }
}
