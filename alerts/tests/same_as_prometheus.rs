//! The node's rules against Prometheus's own, on the same input: for each rule, series
//! that make it fire and then resolve are fed to an [`Evaluator`] minute by minute, and
//! what it says at every minute becomes the expectations of a `promtool test rules` run
//! on `deploy/prometheus/alerts.yaml`. Both must agree at every minute, labels and
//! summaries included; the node's side must fire and resolve.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use troupe_alerts::{AlertState, Evaluator, Sample, parse_exposition};
use troupe_config::AlertSettings;

const MINUTE_MS: i64 = 60_000;

struct Scenario {
    rule: &'static str,
    minutes: usize,
    series: &'static [(&'static str, &'static str)],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        rule: "TroupeComponentUnhealthy",
        minutes: 10,
        series: &[(
            r#"troupe_component_up{component="store", instance="a"}"#,
            "1 1 0 0 0 0 0 1 1 1 1",
        )],
    },
    Scenario {
        rule: "TroupeRunFailureRate",
        minutes: 60,
        series: &[
            (
                r#"troupe_runs_finished_total{status="failed", workflow="w", instance="a"}"#,
                "0+1x30 30x29",
            ),
            (
                r#"troupe_runs_finished_total{status="completed", workflow="w", instance="a"}"#,
                "0+2x60",
            ),
        ],
    },
    Scenario {
        rule: "TroupeModelErrorRate",
        minutes: 40,
        series: &[
            (
                r#"gen_ai_client_operation_duration_seconds_count{outcome="error", gen_ai_provider_name="local", gen_ai_request_model="m", instance="a"}"#,
                "0+1x20 20x19",
            ),
            (
                r#"gen_ai_client_operation_duration_seconds_count{outcome="ok", gen_ai_provider_name="local", gen_ai_request_model="m", instance="a"}"#,
                "0+4x40",
            ),
        ],
    },
    Scenario {
        rule: "TroupeModelLatencyHigh",
        minutes: 60,
        series: &[
            (
                r#"gen_ai_client_operation_duration_seconds_bucket{le="30", outcome="ok", gen_ai_provider_name="local", gen_ai_request_model="m", instance="a"}"#,
                "0x25 8+8x34",
            ),
            (
                r#"gen_ai_client_operation_duration_seconds_bucket{le="60", outcome="ok", gen_ai_provider_name="local", gen_ai_request_model="m", instance="a"}"#,
                "0+8x60",
            ),
            (
                r#"gen_ai_client_operation_duration_seconds_bucket{le="+Inf", outcome="ok", gen_ai_provider_name="local", gen_ai_request_model="m", instance="a"}"#,
                "0+8x60",
            ),
        ],
    },
    Scenario {
        rule: "TroupeActorRestartStorm",
        minutes: 30,
        series: &[(
            r#"troupe_actor_restarts_total{supervisor="run_manager", instance="a"}"#,
            "0+3x10 30x19",
        )],
    },
    Scenario {
        rule: "TroupeActorGaveUp",
        minutes: 30,
        series: &[(
            r#"troupe_actor_give_ups_total{supervisor="root", instance="a"}"#,
            "0 0 0 1x27",
        )],
    },
    Scenario {
        rule: "TroupeCostBurnOverBudget",
        minutes: 110,
        series: &[
            // Steps a float adds up exactly: 0.05 would not sum to 2, and the flat 2
            // after it would read as a counter reset.
            (
                r#"troupe_model_call_cost_usd_sum{provider="cloud", model="big", instance="a"}"#,
                "0+0.125x40 5x69",
            ),
            (r#"troupe_paid_budget_usd_per_day{instance="a"}"#, "10x110"),
        ],
    },
    Scenario {
        rule: "TroupePaidFallbackActive",
        minutes: 40,
        series: &[(
            r#"troupe_model_tokens_total{local="false", direction="input", provider="cloud", model="big", instance="a"}"#,
            "0+100x10 1000x29",
        )],
    },
    Scenario {
        rule: "TroupeTasksStuck",
        minutes: 40,
        series: &[
            (
                r#"troupe_pool_tasks{kind="shell", state="queued", instance="a"}"#,
                "3x40",
            ),
            (
                r#"troupe_task_attempts_total{kind="shell", outcome="succeeded", instance="a"}"#,
                "0x25 1+1x14",
            ),
        ],
    },
    Scenario {
        rule: "TroupeClusterMemberLost",
        minutes: 25,
        series: &[(
            r#"troupe_cluster_members{state="live", instance="a"}"#,
            "3x5 2x19",
        )],
    },
    Scenario {
        rule: "TroupeApprovalWaitingLong",
        minutes: 20,
        series: &[(
            r#"troupe_approval_oldest_wait_seconds{instance="a"}"#,
            "14000+100x10 0x9",
        )],
    },
    Scenario {
        rule: "TroupeAuditChainBroken",
        minutes: 14,
        series: &[(r#"troupe_audit_chain_intact{instance="a"}"#, "1x3 0x5 1x4")],
    },
    Scenario {
        rule: "TroupeAuditNotVerified",
        minutes: 40,
        series: &[(
            r#"troupe_audit_last_verification_timestamp_seconds{instance="a"}"#,
            "-11000x20 1200x19",
        )],
    },
];

/// promtool's series notation: `a`, `axn` (n more of a) and `a+bxn` / `a-bxn` (n more,
/// each b apart), space separated.
fn expand(notation: &str) -> Vec<f64> {
    let mut values = Vec::new();
    for term in notation.split_whitespace() {
        let Some((start, times)) = term.split_once('x') else {
            values.push(term.parse().unwrap());
            continue;
        };
        let times: usize = times.parse().unwrap();
        // The sign between start and step (past a leading minus of the start's own).
        let (start, step) = match start[1..].find(['+', '-']).map(|at| at + 1) {
            Some(sign) => {
                let step: f64 = start[sign + 1..].parse().unwrap();
                let step = if start[sign..].starts_with('-') {
                    -step
                } else {
                    step
                };
                (&start[..sign], step)
            }
            None => (start, 0.0),
        };
        let mut value: f64 = start.parse().unwrap();
        values.push(value);
        for _ in 0..times {
            value += step;
            values.push(value);
        }
    }
    values
}

fn labels_of(series: &str) -> Sample {
    parse_exposition(&format!("{series} 0")).unwrap().remove(0)
}

/// What the node says at each minute: the firing alerts of the scenario's rule.
fn node_says(scenario: &Scenario) -> Vec<Vec<Value>> {
    let series: Vec<(Sample, Vec<f64>)> = scenario
        .series
        .iter()
        .map(|(series, notation)| (labels_of(series), expand(notation)))
        .collect();
    for (sample, values) in &series {
        assert_eq!(
            values.len(),
            scenario.minutes + 1,
            "{} covers every minute",
            sample.name()
        );
    }
    let mut evaluator = Evaluator::new(&AlertSettings::default());
    (0..=scenario.minutes)
        .map(|minute| {
            let at = minute as i64 * MINUTE_MS;
            let reading = series.iter().map(|(sample, values)| Sample {
                labels: sample.labels.clone(),
                value: values[minute],
            });
            evaluator.observe(at, reading.collect());
            evaluator.evaluate(at);
            evaluator
                .alerts()
                .into_iter()
                .filter(|a| a.name == scenario.rule && a.state == AlertState::Firing)
                .map(|alert| {
                    let mut labels = alert.labels.clone();
                    labels.remove("alertname");
                    let mut annotations = json!({ "summary": alert.summary });
                    if !alert.description.is_empty() {
                        annotations["description"] = json!(alert.description);
                    }
                    json!({ "exp_labels": labels, "exp_annotations": annotations })
                })
                .collect()
        })
        .collect()
}

fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/alerts.yaml")
}

#[test]
fn every_rule_fires_and_resolves_in_the_node_as_in_prometheus() {
    let mut tests = Vec::new();
    for scenario in SCENARIOS {
        let says = node_says(scenario);
        let first = says.iter().position(|firing| !firing.is_empty());
        let first = first.unwrap_or_else(|| panic!("{} never fires in the node", scenario.rule));
        assert!(
            says[first..].iter().any(Vec::is_empty) && says.last().unwrap().is_empty(),
            "{} fires in the node from minute {first} and never resolves",
            scenario.rule
        );
        let input: Vec<Value> = scenario
            .series
            .iter()
            .map(|(series, values)| json!({ "series": series, "values": values }))
            .collect();
        let checks: Vec<Value> = says
            .into_iter()
            .enumerate()
            .map(|(minute, firing)| {
                json!({ "eval_time": format!("{minute}m"), "alertname": scenario.rule, "exp_alerts": firing })
            })
            .collect();
        tests.push(json!({
            "name": scenario.rule, "interval": "1m",
            "input_series": input, "alert_rule_test": checks,
        }));
    }
    let file = json!({
        "rule_files": [rules_file()],
        "evaluation_interval": "1m",
        "tests": tests,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("same_as_node.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let output = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("promtool runs: install Debian's prometheus package (./scripts/setup does)");
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && text.contains("SUCCESS"),
        "{text}"
    );
}

/// `yaml_for_secs` reads a rule's `for:` (absent: 0).
fn yaml_for_secs(rule: &yaml_rust2::Yaml) -> u64 {
    let Some(text) = rule["for"].as_str() else {
        return 0;
    };
    let (number, unit) = text.split_at(text.len() - 1);
    let number: u64 = number.parse().unwrap();
    number
        * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            other => panic!("unit {other} in `for: {text}`"),
        }
}

#[test]
fn the_node_s_defaults_are_the_yaml_s_severities_and_durations() {
    let text = std::fs::read_to_string(rules_file()).unwrap();
    let yaml = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    let rules = yaml["groups"][0]["rules"].as_vec().unwrap();
    let evaluator = Evaluator::new(&AlertSettings::default());
    let names = evaluator.rule_names();
    let in_yaml: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    let missing: Vec<&&str> = in_yaml.iter().filter(|n| !names.contains(n)).collect();
    assert_eq!(
        missing,
        [&"TroupeNodeDown"],
        "every rule but NodeDown runs in the node"
    );
    for (name, severity, for_secs) in evaluator.rule_defaults() {
        let rule = rules
            .iter()
            .find(|r| r["alert"].as_str() == Some(name))
            .unwrap();
        assert_eq!(
            rule["labels"]["severity"].as_str(),
            Some(severity),
            "{name}'s severity"
        );
        assert_eq!(yaml_for_secs(rule), for_secs, "{name}'s `for`");
    }
}

#[test]
fn promtool_notation_expands_as_promtool_does() {
    assert_eq!(
        expand("1 2x2 0+1.5x2 10-3x1 -5x1"),
        [1., 2., 2., 2., 0., 1.5, 3., 10., 7., -5., -5.]
    );
}
