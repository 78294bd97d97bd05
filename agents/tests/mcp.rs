//! `mcp_tool` against a real MCP server: the example, built on the official Python SDK.
//! These tests fail (never skip) when the SDK is missing, saying how to install it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Map, Value, json};
use troupe_agents::{
    Agent, AgentContext, AgentError, Jail, McpServerConfig, McpToolAgent, ProcessAccess,
    ProcessConfig,
};

fn require_the_sdk() {
    let found = std::process::Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found,
        "the MCP tests need the official MCP Python SDK: run `python3 -m pip install mcp` \
         (.ci/run installs it)"
    );
}

/// A server run in the jail from `dir`.
fn server(command: Vec<String>, dir: &Path) -> McpServerConfig {
    McpServerConfig {
        name: "notes".into(),
        process: ProcessConfig {
            command,
            access: ProcessAccess {
                readable_dirs: vec![dir.to_path_buf()],
                writable_dirs: Vec::new(),
                network: false,
            },
            jail: Jail::default(),
            env_allow_list: vec!["PATH".into()],
            timeout_secs: 30,
            max_output_bytes: 1024 * 1024,
            max_restarts: 2,
            restart_period_secs: 60,
        },
    }
}

fn notes() -> McpToolAgent {
    require_the_sdk();
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo and nextest"),
    )
    .join("../examples/mcp");
    McpToolAgent::new(vec![server(
        vec!["python3".into(), "notes_server.py".into()],
        &dir,
    )])
}

async fn call(agent: &McpToolAgent, inputs: Value) -> Result<Map<String, Value>, AgentError> {
    let Value::Object(inputs) = inputs else {
        panic!("inputs must be a map")
    };
    agent
        .run(inputs, AgentContext::detached("run:task:1"))
        .await
        .map(|output| output.outputs)
}

#[tokio::test]
async fn tools_of_the_example_server_are_listed_and_called() {
    let agent = notes();
    let tools = agent
        .list_tools("notes", &Default::default())
        .await
        .unwrap();
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert_eq!(names, ["add_note", "list_notes", "read_note"]);
    assert!(tools[0]["inputSchema"]["properties"]["title"].is_object());

    let saved = call(
        &agent,
        json!({"server": "notes", "tool": "add_note", "arguments": {"title": "plan", "body": "ship it"}}),
    )
    .await
    .unwrap();
    assert_eq!(saved["text"], json!("saved plan (1 notes)"));
    assert_eq!(saved["is_error"], json!(false));
    assert_eq!(saved["content"][0]["type"], json!("text"));
    // The same server process answers the next call: the note is still there.
    let read = call(
        &agent,
        json!({"server": "notes", "tool": "read_note", "arguments": {"title": "plan"}}),
    )
    .await
    .unwrap();
    assert_eq!(read["text"], json!("ship it"));
    let listed = call(&agent, json!({"server": "notes", "tool": "list_notes"}))
        .await
        .unwrap();
    assert_eq!(listed["text"], json!("plan"));
}

#[tokio::test]
async fn a_failing_tool_completes_with_is_error() {
    let agent = notes();
    let missing = call(
        &agent,
        json!({"server": "notes", "tool": "read_note", "arguments": {"title": "nothing"}}),
    )
    .await
    .unwrap();
    assert_eq!(missing["is_error"], json!(true));
    assert!(
        missing["text"].as_str().unwrap().contains("read_note"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn unknown_servers_and_tools_are_refused_with_the_known_ones() {
    let agent = notes();
    let error = call(
        &agent,
        json!({"server": "notes", "tool": "delete_everything"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "input `tool`: MCP server `notes` has no tool `delete_everything`; its tools: \
         add_note, list_notes, read_note"
    );
    assert!(!error.is_retryable());
    let error = call(&agent, json!({"server": "nope", "tool": "x"}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "input `server`: no MCP server `nope` is configured; configured: notes"
    );
    let error = call(
        &agent,
        json!({"server": "notes", "tool": "add_note", "arguments": [1]}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "input `arguments`: invalid type: sequence, expected a map"
    );
    let none = McpToolAgent::new(vec![]);
    let error = call(&none, json!({"server": "notes", "tool": "x"}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "input `server`: no MCP server `notes`: none are configured (agents.mcp_servers)"
    );
}

#[tokio::test]
async fn a_server_that_is_not_mcp_fails_its_handshake_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("liar.py");
    // Answers `initialize` with a protocol version from the future, then nothing.
    std::fs::write(
        &script,
        r#"import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if "id" in message:
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "1999-01-01"}}), flush=True)
"#,
    )
    .unwrap();
    let agent = McpToolAgent::new(vec![server(
        vec!["python3".into(), script.display().to_string()],
        dir.path(),
    )]);
    let error = call(&agent, json!({"server": "notes", "tool": "x"}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "MCP server `notes`: failed its handshake: broke the protocol during `initialize`: \
         its `initialize` answer names protocol version 1999-01-01; this client speaks \
         2025-06-18, 2025-03-26, 2024-11-05"
    );
}
