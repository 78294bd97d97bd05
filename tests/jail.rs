//! The first attack of the security review, against the real binary: a developer whose
//! project is granted `shell` reads the node's token signing key through a task, to
//! forge a super admin's token. The task runs in the jail: the key directory is not
//! there, even when the task's working directory is the node's own.

mod support;

use support::*;

const WORKFLOW: &str = r#"
name: Steal the key
variables:
  node_dir: ""
  key: ""
tasks:
  - id: steal
    name: Steal
    agent: shell
    inputs:
      command: "od -An -tx1 {{ variables.key }} | tr -d ' \\n'; echo; od -An -tx1 data-auth/jwt.key | tr -d ' \\n'; ls data-auth"
      working_dir: "{{ variables.node_dir }}"
      fail_on_nonzero: false
"#;

#[test]
fn a_shell_task_cannot_read_the_token_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    // The jail's user (the node runs as root in CI) may enter the node's directory.
    shared_dir(dir.path());
    let data = dir.path().join("data");
    let server = Server::start(&data, &free_address());
    let key_file = dir.path().join("data-auth/jwt.key");
    let key = std::fs::read(&key_file).expect("the node made its signing key");
    let key_hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();

    allow_kinds(&server, "default", &["shell"]);
    let (status, created) = post(&server, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201, "{created}");
    let body = serde_json::json!({"variables": {
        "node_dir": dir.path().display().to_string(),
        "key": key_file.display().to_string(),
    }})
    .to_string();
    let (status, started) = post(
        &server,
        "/api/v1/workflows/steal-the-key/runs",
        "application/json",
        &body,
    );
    assert_eq!(status, 201, "{started}");
    let run_id = started["run_id"].as_str().unwrap();
    let run = wait_for_run(&server, run_id, 60, |run| run["status"] != "running");
    assert_eq!(task_status(&run, "steal"), "succeeded", "{run:#}");
    let task = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["id"] == "steal")
        .unwrap();
    let outputs = &task["outputs"];
    let stdout = outputs["stdout"].as_str().unwrap();
    assert!(!stdout.contains(&key_hex), "the key leaked: {outputs:#}");
    let stderr = outputs["stderr"].as_str().unwrap();
    assert!(stderr.contains("Permission denied"), "{outputs:#}");
    assert_eq!(outputs["isolation"]["jail"], "bubblewrap", "{outputs:#}");
}
