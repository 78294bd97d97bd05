//! The audit log end to end: the real binary records what is done over HTTP, `troupe
//! audit verify` checks the chain on the persistent store after the node is gone, a
//! forged checkpoint file is refused, and a node does not start on a log that lost its
//! entries.

mod support;

use support::{Server, free_address, get_json, post, run_troupe, troupe};

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

/// The attack: the audit entries are wiped from the store while the node is down (here
/// the whole store, as an attacker with the disk could). The next start verifies the
/// chain against the signed checkpoints before signing anything, and refuses, saying
/// what happened and how to go on; `audit.on_tampering = "warn"` starts anyway.
#[test]
fn a_node_does_not_start_on_an_audit_log_that_lost_its_entries() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let server = Server::start(&data, &free_address());
    let (status, _) = post(&server, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201);
    server.kill();
    std::fs::remove_dir_all(&data).unwrap();

    let output = troupe()
        .args(["up", "--address", &free_address()])
        .args(["--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the audit log failed verification at entry 1: the chain ends at entry 0 but a signed checkpoint records entry"),
        "{stderr}"
    );
    assert!(stderr.contains("data-audit) aside"), "{stderr}");

    let server = Server::start_with(
        &data,
        &free_address(),
        &["--set", "audit.on_tampering=warn"],
        &[],
    );
    let verified = get_json(&server, "/api/v1/audit/verify");
    assert_eq!(verified["intact"], false, "{verified:#}");
    server.kill();
}
