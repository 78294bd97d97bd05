//! The audit log end to end: the real binary records what is done over HTTP, `troupe
//! audit verify` checks the chain on the persistent store after the node is gone, and a
//! forged checkpoint file is refused.

mod support;

use support::{Server, free_address, get_json, post, run_troupe};

const WORKFLOW: &str =
    "name: Audited\ntasks:\n  - { id: greet, name: Greet, agent: echo, inputs: { text: hi } }\n";

#[test]
fn actions_are_chained_verified_offline_and_exported() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let server = Server::start(&data, &free_address());
    let (status, _) = post(&server, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201);
    let (status, started) = post(
        &server,
        "/api/v1/workflows/audited/runs",
        "application/json",
        r#"{"started_by": "ada"}"#,
    );
    assert_eq!(status, 201, "{started}");
    let entries = get_json(&server, "/api/v1/audit");
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["node.start", "user.create", "workflow.create", "run.start"],
        "{entries:#}"
    );
    assert_eq!(entries[3]["actor"], "ada");
    let verified = get_json(&server, "/api/v1/audit/verify");
    assert_eq!(verified["intact"], true, "{verified:#}");
    let csv =
        support::http1::blocking_get(&server.url("/api/v1/audit?format=csv&actor=ada")).unwrap();
    assert!(csv.body.starts_with("seq,at_ms,actor"), "{}", csv.body);
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    server.kill();

    let store = format!("store.url=surrealkv://{}", data.display());
    let output = run_troupe(scratch.path(), &["--set", &store, "audit", "verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("intact") && stdout.contains("4 entries"),
        "{stdout}"
    );

    // The checkpoints live beside the store; a forged one is refused, not skipped.
    let checkpoints = scratch.path().join("data-audit").join("checkpoints.jsonl");
    let text = std::fs::read_to_string(&checkpoints).unwrap();
    std::fs::write(&checkpoints, text.replacen("\"seq\":", "\"seq\":9", 1)).unwrap();
    let output = run_troupe(scratch.path(), &["--set", &store, "audit", "verify"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("signature does not match"), "{stderr}");
}
