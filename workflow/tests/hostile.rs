//! Hostile and oversized input: every case ends in a value or a diagnostic, never a panic.

use std::time::Instant;

use troupe_workflow::{expr, parse_workflow};

const AGENTS: &[&str] = &["shell"];

fn first_message(source: &str) -> String {
    match parse_workflow(source, "wf.yaml", AGENTS) {
        Ok(_) => panic!("hostile input was accepted"),
        Err(diagnostics) => diagnostics
            .0
            .first()
            .map(|d| d.message.clone())
            .unwrap_or_default(),
    }
}

fn chain(count: usize) -> String {
    let mut source = String::from("name: chain\ntasks:\n");
    for i in 0..count {
        source.push_str(&format!("  - id: t{i}\n    name: T\n    agent: shell\n"));
        if i > 0 {
            source.push_str(&format!(
                "    depends_on: [t{}]\n    inputs: {{ x: \"{{{{ tasks.t{}.outputs.v }}}}\", root: \"{{{{ tasks.t0.status }}}}\" }}\n",
                i - 1,
                i - 1
            ));
        }
    }
    source
}

#[test]
fn ten_megabyte_source_is_refused_by_size() {
    let source = "#".repeat(10 * 1024 * 1024);
    assert_eq!(
        first_message(&source),
        "the source is 10485760 bytes; the limit is 4194304 bytes (4 MiB)"
    );
}

#[test]
fn ten_thousand_task_chain_parses_quickly() {
    let started = Instant::now();
    let parsed = parse_workflow(&chain(10_000), "wf.yaml", AGENTS);
    assert_eq!(
        parsed.map(|w| w.tasks.len()).map_err(|d| d.to_string()),
        Ok(10_000)
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn ten_thousand_wide_fan_parses() {
    let mut source = String::from("name: fan\ntasks:\n  - {id: root, name: R, agent: shell}\n");
    for i in 0..9_998 {
        source.push_str(&format!(
            "  - {{id: l{i}, name: L, agent: shell, depends_on: [root], inputs: {{x: \"{{{{ tasks.root.outputs.a }}}}\"}}}}\n"
        ));
    }
    source.push_str("  - id: sink\n    name: S\n    agent: shell\n    depends_on: [");
    source.push_str(
        &(0..9_998)
            .map(|i| format!("l{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    source
        .push_str("]\n    inputs: {x: \"{{ tasks.root.status }} {{ tasks.l9997.outputs.b }}\"}\n");
    let parsed = parse_workflow(&source, "wf.yaml", AGENTS);
    assert_eq!(
        parsed.map(|w| w.tasks.len()).map_err(|d| d.to_string()),
        Ok(10_000)
    );
}

#[test]
fn ten_thousand_and_one_tasks_are_refused() {
    let mut source = String::from("name: many\ntasks:\n");
    for i in 0..10_001 {
        source.push_str(&format!("  - {{id: t{i}, name: T, agent: shell}}\n"));
    }
    assert_eq!(
        first_message(&source),
        "10001 tasks is more than the limit of 10000"
    );
}

#[test]
fn five_hundred_task_cycle_is_reported() {
    let mut source = String::from("name: ring\ntasks:\n");
    for i in 0..500 {
        source.push_str(&format!(
            "  - {{id: t{i}, name: T, agent: shell, depends_on: [t{}]}}\n",
            (i + 1) % 500
        ));
    }
    let message = first_message(&source);
    let expected: Vec<String> = (0..=500).map(|i| format!("t{}", i % 500)).collect();
    assert_eq!(
        message,
        format!("dependency cycle: {}", expected.join(" -> "))
    );
}

#[test]
fn deep_parentheses_in_a_template_are_refused() {
    let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
    let source = format!(
        "name: t\ntasks:\n  - {{id: a, name: A, agent: shell, inputs: {{x: \"{{{{ {deep} }}}}\"}}}}\n"
    );
    assert!(first_message(&source).ends_with("expression nests deeper than 64 levels"));
    assert_eq!(
        expr::parse(&deep),
        Err(troupe_workflow::ExprError::TooDeep { limit: 64 })
    );
}

#[test]
fn thousand_deep_yaml_is_refused() {
    let block: String = (0..1000)
        .map(|level| format!("{:level$}k:\n", ""))
        .collect();
    assert_eq!(first_message(&block), "YAML nests deeper than 64 levels");
    let flow = format!("name: {}{}", "[".repeat(1000), "]".repeat(1000));
    assert!(first_message(&flow).contains("invalid YAML"));
}

#[test]
fn alias_bomb_is_refused_at_the_first_anchor() {
    let mut source = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for level in 1..10 {
        let previous = (b'a' + level - 1) as char;
        let name = (b'a' + level) as char;
        source.push_str(&format!("{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"));
    }
    assert_eq!(
        first_message(&source),
        "YAML anchors (`&name`) are not supported"
    );
}
