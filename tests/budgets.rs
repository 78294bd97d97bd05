//! Run budgets end to end: node A's chain sends the planner's calls to node B, a
//! second `troupe up` process that A reaches over real HTTP as a paid OpenAI-compatible
//! provider, priced in A's settings. A run with `budget_usd` never lets a call reach B
//! that could take it past the budget: B's own ledger counts exactly the calls A's
//! counts, and what they cost fits.

mod support;

use serde_json::{Value, json};
use support::{Server, free_address, get_json, run_troupe, save_and_start, wait_for_run};

/// Output priced so that a call's worst case (384 tokens out, and the prompt's bytes)
/// is about $0.19: two calls held at once never fit in the $0.30 budget.
fn settings(b: &str) -> String {
    format!(
        r#"
[[providers.chain]]
name = "local"
kind = "local"

[[providers.chain]]
name = "node-b"
kind = "openai"
base_url = "http://{b}/v1"
model = "smollm2-on-b"
input_usd_per_mtok = 10.0
output_usd_per_mtok = 500.0

[providers.routes]
chat = ["node-b", "local"]
"#
    )
}

/// Four planners at once under a $0.30 budget.
fn workflow(on_budget: &str) -> String {
    let mut yaml =
        format!("name: Plans {on_budget}\nbudget_usd: 0.30\non_budget: {on_budget}\ntasks:\n");
    for (id, goal) in [
        ("prices", "store prices"),
        ("users", "list users"),
        ("orders", "track orders"),
        ("stock", "count stock"),
    ] {
        yaml.push_str(&format!(
            "  - {{ id: {id}, name: {id}, agent: planner, max_retries: 0, inputs: {{ goal: \"{goal}\" }} }}\n"
        ));
    }
    yaml
}

/// Calls and cost of `provider` in a node's cost report.
fn provider_line(report: &Value, provider: &str) -> (u64, f64) {
    report["by_provider"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["key"] == provider)
        .map_or((0, 0.0), |line| {
            (
                line["calls"].as_u64().unwrap(),
                line["cost_usd"].as_f64().unwrap(),
            )
        })
}

/// B's ledger holds the `/v1` requests it served: every one of them is a call A made
/// and wrote down, so none went past A's budget unseen.
fn b_served_exactly_what_a_recorded(a: &Server, b: &Server) -> (u64, f64) {
    let (a_calls, a_cost) = provider_line(&get_json(a, "/api/v1/costs?days=1"), "node-b");
    let b_calls = get_json(b, "/api/v1/costs?days=1")["total"]["calls"]
        .as_u64()
        .unwrap();
    assert_eq!(a_calls, b_calls, "calls that reached B vs calls A recorded");
    (a_calls, a_cost)
}

fn tasks(run: &Value) -> &Vec<Value> {
    run["tasks"].as_array().unwrap()
}

#[test]
fn no_call_past_a_run_budget_reaches_the_paid_provider() {
    let scratch = tempfile::tempdir().unwrap();
    let node_b = Server::start(&scratch.path().join("b"), &free_address());
    let config = scratch.path().join("a.toml");
    std::fs::write(&config, settings(&node_b.address)).unwrap();
    let node_a = Server::start_with(
        &scratch.path().join("a"),
        &free_address(),
        &["--config", config.to_str().unwrap()],
        &[],
    );

    // `fail`: a call that could go over is not made, and its task fails saying so.
    let run_id = save_and_start(&node_a, &workflow("fail"), &json!({}));
    let run = wait_for_run(&node_a, &run_id, 600, |run| run["status"] != "running");
    assert_eq!(run["status"], "failed", "{run:#}");
    let refused: Vec<&str> = tasks(&run)
        .iter()
        .filter_map(|task| task["error"].as_str())
        .filter(|error| error.starts_with("budget_exceeded: the budget of the run is $0.3000"))
        .collect();
    assert!(!refused.is_empty(), "{run:#}");
    assert!(
        refused[0].contains("a call to `node-b` could cost up to $0.1"),
        "{}",
        refused[0]
    );
    let (calls, cost) = b_served_exactly_what_a_recorded(&node_a, &node_b);
    assert!(calls >= 1, "the first call fits and is made");
    let spent = run["budget"]["spent_usd"].as_f64().unwrap();
    assert!((spent - cost).abs() < 1e-9 && spent <= 0.30, "{run:#}");
    let shown = run_troupe(
        scratch.path(),
        &["runs", "show", &run_id, "--server", &node_a.url("")],
    );
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        stdout.contains(&format!(
            "budget: ${spent:.4} of $0.3000 spent (on_budget: fail)"
        )),
        "{stdout}"
    );

    // `local_only`: past the budget, the calls go to A's own model, and the run ends.
    let run_id = save_and_start(&node_a, &workflow("local_only"), &json!({}));
    let run = wait_for_run(&node_a, &run_id, 900, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    let providers: Vec<&str> = tasks(&run)
        .iter()
        .filter_map(|task| task["outputs"]["model"]["provider"].as_str())
        .collect();
    assert!(providers.contains(&"local"), "{providers:?}");
    let spent = run["budget"]["spent_usd"].as_f64().unwrap();
    assert!(spent <= 0.30, "{run:#}");
    let (_, total) = b_served_exactly_what_a_recorded(&node_a, &node_b);
    assert!(
        (total - cost - spent).abs() < 1e-9,
        "B's cost is the two runs' spend"
    );
}
