//! The provider chain end to end: node A answers locally, and when its answer does not
//! reach the request's quality it falls back to node B, a second `troupe up` process
//! reached over real HTTP through the OpenAI-compatible and the Anthropic protocols. Every
//! call lands in A's cost ledger, the `/v1` calls B served land in B's.

mod support;

use serde_json::{Value, json};
use support::{
    Server, chat_provider, free_address, get_json, post, run_troupe, save_and_start, wait_for_run,
};

fn provider<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["by_provider"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["key"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {report:#}"))
}

/// Node A's chain: itself, an address nobody answers, and node B over both protocols,
/// priced; chat stays local, and the project `frugal` may spend nothing on paid calls.
fn chain_settings(b: &str) -> String {
    format!(
        r#"
[providers]
baseline_input_usd_per_mtok = 2.5
baseline_output_usd_per_mtok = 10.0

[[providers.chain]]
name = "local"
kind = "local"

[[providers.chain]]
name = "unreachable"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "nothing"

[[providers.chain]]
name = "node-b"
kind = "openai"
base_url = "http://{b}/v1"
model = "smollm2-on-b"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.6

[[providers.chain]]
name = "claude-on-b"
kind = "anthropic"
base_url = "http://{b}"
model = "messages-on-b"
api_key_env = "TEST_ANTHROPIC_KEY"
input_usd_per_mtok = 3.0
output_usd_per_mtok = 15.0

[providers.routes]
chat = ["local"]

[providers.project_budgets_usd_per_day]
frugal = 0.0
"#,
    )
}

#[test]
fn a_node_falls_back_to_another_node_and_its_ledger_counts_every_call() {
    let scratch = tempfile::tempdir().unwrap();
    let node_b = Server::start(&scratch.path().join("b"), &free_address());
    let config = scratch.path().join("a.toml");
    std::fs::write(&config, chain_settings(&node_b.address)).unwrap();
    let node_a = Server::start_with(
        &scratch.path().join("a"),
        &free_address(),
        &["--config", config.to_str().unwrap()],
        &[("TEST_ANTHROPIC_KEY", "sk-test-not-a-real-key")],
    );

    // A chat request is served locally and costs nothing.
    let (status, answer) = post(
        &node_a,
        "/api/v1/complete",
        "application/json",
        &json!({"messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 16, "agent": "planner"})
        .to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["provider"], "local");
    assert_eq!(answer["met_threshold"], true);

    // A diff that must score 1.0 is beyond every provider: each is tried in order, the
    // unreachable one fails, and the best answer comes back marked as below threshold.
    let (status, answer) = post(
        &node_a,
        "/api/v1/complete",
        "application/json",
        &json!({"messages": [{"role": "user", "content": "Write a unified diff that renames foo to bar in main.rs."}],
                "max_tokens": 24, "task_type": "diff", "min_quality": 1.0, "agent": "debugging"})
        .to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["met_threshold"], false, "{answer}");
    assert!(answer["quality"]["score"].as_f64().unwrap() < 1.0);

    let report = get_json(&node_a, "/api/v1/costs?days=1");
    let total = &report["total"];
    assert_eq!(total["requests"], 2, "{report:#}");
    assert_eq!(total["calls"], 5, "{report:#}");
    assert_eq!(total["failures"], 1, "{report:#}");
    assert!(provider(&report, "unreachable")["failures"] == 1);
    for (name, input_price, output_price) in [("node-b", 0.15, 0.6), ("claude-on-b", 3.0, 15.0)] {
        let line = provider(&report, name);
        let (tokens_in, tokens_out) = (
            line["tokens_in"].as_f64().unwrap(),
            line["tokens_out"].as_f64().unwrap(),
        );
        assert!(tokens_in > 10.0 && tokens_out >= 1.0, "{line}");
        let expected = (tokens_in * input_price + tokens_out * output_price) / 1e6;
        let cost = line["cost_usd"].as_f64().unwrap();
        assert!(
            (cost - expected).abs() < 1e-9,
            "{name}: {cost} != {expected}"
        );
    }
    let agents: Vec<&str> = report["by_agent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["key"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["debugging", "planner"]);
    // Node B served its two calls locally (one per protocol) and says so.
    let served_by_b = get_json(&node_b, "/api/v1/costs");
    assert_eq!(served_by_b["total"]["requests"], 2, "{served_by_b:#}");
    assert_eq!(served_by_b["total"]["local_share"], 1.0);
    assert_eq!(served_by_b["total"]["cost_usd"], 0.0);
    assert!(served_by_b["total"]["savings_usd"].as_f64().unwrap() > 0.0);

    let output = run_troupe(
        scratch.path(),
        &[
            "costs",
            "--days",
            "1",
            "--server",
            &format!("http://{}", node_a.address),
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("Per provider") && text.contains("claude-on-b"),
        "{text}"
    );
    paid_calls_are_the_callers_and_local_failures_stay_local(&node_a);
    a_project_over_its_own_cap_gets_no_paid_answer(&node_a);
}

/// `providers.project_budgets_usd_per_day`: a project whose cap is spent (here 0) is
/// answered by the local model only, while the node's own budget is far from spent;
/// the report bills each call to its project.
fn a_project_over_its_own_cap_gets_no_paid_answer(node: &Server) {
    let report = || get_json(node, "/api/v1/costs?days=1");
    let paid_before = provider(&report(), "node-b")["calls"].as_u64().unwrap();
    let (status, answer) = post(
        node,
        "/api/v1/complete",
        "application/json",
        &json!({"messages": [{"role": "user", "content": "Write a unified diff that renames foo to bar in main.rs."}],
                "max_tokens": 24, "task_type": "diff", "min_quality": 1.0, "project": "frugal"})
        .to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["provider"], "local", "{answer}");
    let report = report();
    assert_eq!(
        provider(&report, "node-b")["calls"].as_u64().unwrap(),
        paid_before,
        "a paid provider was asked past the project's cap"
    );
    let frugal = report["by_project"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["key"] == "frugal")
        .unwrap_or_else(|| panic!("no line for the project: {report:#}"));
    assert_eq!(
        (frugal["calls"].as_u64(), frugal["cost_usd"].as_f64()),
        (Some(1), Some(0.0))
    );
}

/// Paid calls are audited under the caller, not the `agent` name the body gave; a
/// prompt that overflows the local model's context fails there, and goes on to the paid
/// providers only when the request opts in.
fn paid_calls_are_the_callers_and_local_failures_stay_local(node: &Server) {
    let paid = get_json(node, "/api/v1/audit?action=model.paid_call");
    let actors: Vec<&str> = paid
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["actor"].as_str().unwrap())
        .collect();
    assert!(
        !actors.is_empty() && actors.iter().all(|actor| *actor == "anonymous"),
        "{paid:#}"
    );
    let calls_to_b = || {
        let report = get_json(node, "/api/v1/costs?days=1");
        provider(&report, "node-b")["calls"].as_u64().unwrap()
    };
    let before = calls_to_b();
    let huge = "word ".repeat(30_000);
    let ask = |opt_in: bool| {
        post(
            node,
            "/api/v1/complete",
            "application/json",
            &json!({"messages": [{"role": "user", "content": huge}], "max_tokens": 8,
                    "task_type": "diff", "escalate_local_failures": opt_in})
            .to_string(),
        )
    };
    let (status, refused) = ask(false);
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context"),
        "{refused}"
    );
    assert_eq!(
        calls_to_b(),
        before,
        "an overflowing prompt went to a paid provider"
    );
    let _ = ask(true);
    assert_eq!(calls_to_b(), before + 1, "the opt-in did not escalate");
}

#[test]
fn bad_chain_settings_are_refused_at_start_with_the_key_named() {
    let scratch = tempfile::tempdir().unwrap();
    let refusal = |toml: &str| {
        let config = scratch.path().join("bad.toml");
        std::fs::write(&config, toml).unwrap();
        let output = run_troupe(
            scratch.path(),
            &["--config", config.to_str().unwrap(), "config", "show"],
        );
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refusal("[[providers.chain]]\nname = \"x\"\nkind = \"gemini\"\n");
    assert!(
        stderr.contains("`providers.chain[0].kind` from config file")
            && stderr.contains(
                "unknown variant `gemini`, expected one of `local`, `openai`, `anthropic`"
            ),
        "{stderr}"
    );
    let stderr = refusal("[[providers.chain]]\nname = \"x\"\n");
    assert!(stderr.contains("missing field `kind`"), "{stderr}");
    let stderr = refusal(
        "[[providers.chain]]\nname = \"x\"\nkind = \"local\"\n\n[providers.routes]\ncode = [\"nobody\"]\n",
    );
    assert!(
        stderr.contains("providers.routes") && stderr.contains("nobody"),
        "{stderr}"
    );
}

/// What a small model falls into at greedy decoding: one phrase until the token limit.
fn looping_review(_: &str) -> String {
    format!(
        "The change looks fine. {}",
        "Consider adding more tests. ".repeat(40)
    )
}

/// A node without a local model whose chain is `providers`, each (name, address) a chat
/// provider.
fn node_asking(scratch: &std::path::Path, providers: &[(&str, &str)]) -> Server {
    let mut toml = String::from("[models]\nserve = false\n");
    for (name, address) in providers {
        toml.push_str(&format!(
            "\n[[providers.chain]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"http://{address}/v1\"\nmodel = \"{name}-model\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\n"
        ));
    }
    let config = scratch.join("chain.toml");
    std::fs::write(&config, toml).unwrap();
    Server::start_with(
        &scratch.join("node"),
        &free_address(),
        &["--config", config.to_str().unwrap()],
        &[],
    )
}

#[test]
fn a_looping_answer_is_refused_by_the_gate_and_the_next_provider_answers() {
    let scratch = tempfile::tempdir().unwrap();
    let (looper, _) = chat_provider::start(looping_review);
    let (sound, _) = chat_provider::start(|_| {
        "Check that the divisor is not zero before dividing, and raise a ValueError that says so."
            .into()
    });
    let node = node_asking(scratch.path(), &[("looper", &looper), ("sound", &sound)]);
    let question = r#"{"messages": [{"role": "user", "content": "How should divide handle a zero divisor?"}], "max_tokens": 64}"#;
    let (status, answer) = post(&node, "/api/v1/complete", "application/json", question);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["provider"], "sound", "{answer:#}");
    assert_eq!(answer["met_threshold"], true, "{answer:#}");
    let costs = get_json(&node, "/api/v1/costs?days=1");
    let looped = provider(&costs, "looper");
    assert_eq!(looped["calls"], 1, "{costs:#}");
    assert_eq!(looped["escalations"], 1, "{costs:#}");
    assert_eq!(looped["requests"], 0, "its answer was served: {costs:#}");
}

#[test]
fn an_agent_never_builds_on_an_answer_the_gate_scored_zero() {
    let scratch = tempfile::tempdir().unwrap();
    let (looper, _) = chat_provider::start(looping_review);
    let node = node_asking(scratch.path(), &[("looper", &looper)]);
    let workflow = "name: Design\ntasks:\n  - id: design\n    name: Design\n    agent: architect\n    max_retries: 0\n    inputs:\n      goal: \"a todo list saved to a file\"\n";
    let run_id = save_and_start(&node, workflow, &json!({}));
    let run = wait_for_run(&node, &run_id, 120, |run| run["status"] != "running");
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["tasks"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("unusable after 3 call(s): the quality gate refused it: the answer loops: \"Consider adding more tests.\" repeats 40 times"),
        "{run:#}"
    );
    // Each refusal is in the ledger, against the answer it refused.
    let costs = get_json(&node, "/api/v1/costs?days=1");
    let looped = provider(&costs, "looper");
    assert_eq!(looped["requests"], 3, "{costs:#}");
    assert_eq!(looped["refusals"], 3, "{costs:#}");
}

/// What the gate was first beaten by: a module cut off by the token limit of which one
/// line in 42 parses, "salvaged" to that line and accepted. The answer is refused, saying
/// how little came before the break, and no file is written.
#[test]
fn a_module_cut_to_almost_nothing_is_refused_not_salvaged() {
    let scratch = tempfile::tempdir().unwrap();
    let (cutter, _) = chat_provider::start(|_| {
        let body: String = (0..40)
            .map(|n| format!("    tasks.insert({n}, title + \"{}\")\n", n * n))
            .collect();
        format!("```python\nimport json\ndef add(tasks, title:\n{body}")
    });
    let node = node_asking(scratch.path(), &[("cutter", &cutter)]);
    let work = scratch.path().join("feature");
    std::fs::create_dir_all(&work).unwrap();
    let workflow = format!(
        "name: Code\ntasks:\n  - id: code\n    name: Code\n    agent: code_generator\n    max_retries: 0\n    inputs:\n      specification: \"a todo list saved to a file\"\n      module: todo\n      work_dir: \"{}\"\n",
        work.display()
    );
    let run_id = save_and_start(&node, &workflow, &json!({}));
    let run = wait_for_run(&node, &run_id, 120, |run| run["status"] != "running");
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["tasks"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("unusable after 3 call(s)")
            && error.contains("only 1 of its 42 lines come before the break"),
        "{run:#}"
    );
    assert!(!work.join("todo.py").exists(), "the fragment was written");
}
