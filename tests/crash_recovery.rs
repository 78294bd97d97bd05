//! The durability promise, end to end with the real binary: SIGKILL the node while a
//! task runs and again while an approval waits; each time it comes back, the run goes
//! on; no completed task runs twice and the event log has no gap. Once on the embedded
//! store (`surrealkv://` in the data directory), once on a real SurrealDB server over
//! `ws://`, where the node has no data directory at all: all it needs is in the server.

mod support;

use support::*;

#[test]
fn a_run_survives_sigkill_while_a_task_runs_and_while_an_approval_waits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let address = free_address();
    survives_two_kills(dir.path(), || Server::start(&data, &address));
}

#[test]
fn a_run_on_a_shared_surrealdb_server_survives_sigkill_of_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let flags = surreal.store_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let address = free_address();
    let restarts = std::cell::Cell::new(0);
    survives_two_kills(dir.path(), || {
        restarts.set(restarts.get() + 1);
        let log_base = dir.path().join(format!("node-{}", restarts.get()));
        Server::start_on_store(&log_base, &address, &flags)
    });
}

/// Start, kill while `slow` runs, start, kill while `sign_off` waits, start, approve:
/// `start` brings the node up each time (on the same store).
fn survives_two_kills(dir: &std::path::Path, start: impl Fn() -> Server) {
    // The one directory the jailed commands see, writable by the jail's user.
    let shared = shared_dir(dir);
    let marks_path = shared.join("marks.txt");
    let server = start();
    allow_kinds(&server, "default", &["shell"]);
    let (status, created) = post(
        &server,
        "/api/v1/workflows",
        "application/yaml",
        MARKING_WORKFLOW,
    );
    assert_eq!(status, 201, "{created}");
    let body = serde_json::json!({"variables": {"shared": shared.display().to_string()}, "started_by": "ada"}).to_string();
    let (status, started) = post(
        &server,
        "/api/v1/workflows/marking/runs",
        "application/json",
        &body,
    );
    assert_eq!(status, 201, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    wait_for_run(&server, &run_id, 30, |run| {
        task_status(run, "slow") == "running"
    });
    // `running` is written before the shell starts; kill only once the attempt has
    // begun its work, or a busy machine kills it before it wrote anything.
    wait_for_mark(&marks_path, "slow-start");
    server.kill();

    let server = start();
    let run = wait_for_run(&server, &run_id, 60, |run| {
        task_status(run, "sign_off") == "waiting_approval"
    });
    assert_eq!(task_status(&run, "first"), "completed");
    server.kill();

    let server = start();
    let decision = r#"{"decision": "approve", "approver": "bob", "comment": "after two crashes"}"#;
    let (status, answer) = post(
        &server,
        &format!("/api/v1/runs/{run_id}/tasks/sign_off/decision"),
        "application/json",
        decision,
    );
    assert_eq!(status, 200, "{answer}");
    let run = wait_for_run(&server, &run_id, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");

    let marks = std::fs::read_to_string(&marks_path).unwrap();
    assert_eq!(
        count_marks(&marks, "first"),
        1,
        "completed before the first kill: must not run again\n{marks}"
    );
    assert_eq!(count_marks(&marks, "slow"), 1, "{marks}");
    assert_eq!(
        count_marks(&marks, "slow-start"),
        2,
        "the interrupted attempt is resumed once\n{marks}"
    );
    assert_eq!(count_marks(&marks, "last"), 1, "{marks}");

    let events = get_json(&server, &format!("/api/v1/runs/{run_id}/events"));
    let events = events.as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "no event lost or duplicated"
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval_requested").count(),
        1
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval_decided").count(),
        1
    );
    assert_eq!(kinds.last(), Some(&"run_finished"));
    let (status, _) = post(
        &server,
        &format!("/api/v1/runs/{run_id}/tasks/sign_off/decision"),
        "application/json",
        decision,
    );
    assert_eq!(status, 409, "the approval was consumed");
}

const GATED: &str = r#"
name: Gated
tasks:
  - { id: sign_off, name: Sign off, agent: human_review, requires_approval: true }
  - { id: after, name: After, agent: echo, depends_on: [sign_off], inputs: { by: "{{ tasks.sign_off.outputs.approver }}" } }
"#;

/// How many gates wait on `server`.
fn waiting_gates(server: &Server) -> usize {
    get_json(server, "/api/v1/approvals")
        .as_array()
        .map_or(0, Vec::len)
}

/// Polls until `count` gates wait on `server`, for at most `seconds`.
fn wait_for_gates(server: &Server, count: usize, seconds: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let waiting = waiting_gates(server);
        if waiting == count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} gates wait after {seconds} s, not {count}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The attack, through the binary: fill a node with more than a thousand runs waiting
/// for a person and SIGKILL it. Start-up used to resume only the newest 1,000, so the
/// oldest run could never be decided. Every one comes back, and the oldest finishes.
#[test]
fn after_sigkill_more_than_a_thousand_waiting_runs_all_come_back() {
    const RUNS: usize = 1001;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let address = free_address();
    let server = Server::start(&data, &address);
    let body = serde_json::json!({"started_by": "ada"});
    let oldest = save_and_start(&server, GATED, &body);
    for _ in 1..RUNS {
        let (status, started) = post(
            &server,
            "/api/v1/workflows/gated/runs",
            "application/json",
            &body.to_string(),
        );
        assert_eq!(status, 201, "{started}");
    }
    wait_for_gates(&server, RUNS, 300);
    server.kill();

    let server = Server::start(&data, &address);
    wait_for_gates(&server, RUNS, 300);
    let decision = r#"{"decision": "approve", "approver": "bob"}"#;
    let (status, answer) = post(
        &server,
        &format!("/api/v1/runs/{oldest}/tasks/sign_off/decision"),
        "application/json",
        decision,
    );
    assert_eq!(
        status, 200,
        "the oldest run is live after the restart: {answer}"
    );
    let run = wait_for_run(&server, &oldest, 30, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(waiting_gates(&server), RUNS - 1);
}
