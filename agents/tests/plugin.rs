//! Plugin kinds against real processes: the example plugin, and hostile ones written
//! here (crashing, hanging, flooding, lying about ids, crash-looping, ignoring cancel).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use troupe_agents::{
    Agent, AgentContext, AgentError, Field, FieldType, InputSchema, PluginAgent, PluginConfig,
    ProcessConfig,
};

/// The start of every hostile plugin: a handshake, then `BEHAVIOUR` for each request
/// (`message`, `method`, `params`, `inputs` and `reply(result)` are in scope).
const PRELUDE: &str = r#"
import json, os, subprocess, sys, time

def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    params = message.get("params") or {}
    inputs = params.get("inputs") or {}
    reply = lambda result: send({"jsonrpc": "2.0", "id": message["id"], "result": result})
    if method == "initialize":
        reply({"name": "hostile", "version": "0"})
        continue
"#;

fn indent(behaviour: &str) -> String {
    behaviour
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect()
}

struct Plugin {
    dir: tempfile::TempDir,
    agent: PluginAgent,
}

fn process(command: Vec<String>) -> ProcessConfig {
    ProcessConfig {
        command,
        env_allow_list: vec!["PATH".into()],
        timeout_secs: 10,
        max_output_bytes: 1024 * 1024,
        max_restarts: 3,
        restart_period_secs: 60,
    }
}

fn open_schema() -> InputSchema {
    InputSchema {
        fields: vec![],
        open: true,
    }
}

/// A plugin whose requests after the handshake run `behaviour` (Python).
fn hostile(behaviour: &str, tune: impl FnOnce(&mut ProcessConfig)) -> Plugin {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plugin.py");
    std::fs::write(&script, format!("{PRELUDE}{}", indent(behaviour))).unwrap();
    let mut config = process(vec!["python3".into(), script.display().to_string()]);
    tune(&mut config);
    let agent = PluginAgent::new(PluginConfig {
        kind: "hostile".into(),
        description: "a test plugin".into(),
        schema: open_schema(),
        process: config,
    });
    Plugin { dir, agent }
}

fn inputs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("inputs must be a map"),
    }
}

async fn run(agent: &PluginAgent, value: Value) -> Result<Map<String, Value>, AgentError> {
    agent
        .run(inputs(value), AgentContext::detached("run:task:1"))
        .await
        .map(|output| output.outputs)
}

/// Whether `pid` is gone (or a zombie waiting to be reaped, which runs nothing).
fn is_gone(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

async fn wait_gone(pid: u64) -> bool {
    for _ in 0..50 {
        if is_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn read_pids(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect()
}

fn example() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo and nextest"),
    )
    .join("../examples/plugins/word_count.py")
}

fn word_count() -> PluginAgent {
    PluginAgent::new(PluginConfig {
        kind: "word_count".into(),
        description: "Counts words".into(),
        schema: InputSchema {
            fields: vec![
                Field::new("text".to_string(), FieldType::String, false, "text"),
                Field::new("path".to_string(), FieldType::String, false, "a file"),
            ],
            open: false,
        },
        process: process(vec!["python3".into(), example().display().to_string()]),
    })
}

#[tokio::test]
async fn the_example_plugin_counts_words_in_text_and_files() {
    let agent = word_count();
    assert_eq!(agent.info().await, None, "started lazily");
    let outputs = run(&agent, json!({"text": "one two three\nfour"}))
        .await
        .unwrap();
    assert_eq!(
        Value::Object(outputs),
        json!({"words": 4, "lines": 2, "characters": 18})
    );
    assert_eq!(
        agent.info().await,
        Some(json!({"name": "word_count", "version": "1.0.0"}))
    );
    assert_eq!(
        agent.health(&Default::default()).await.unwrap(),
        json!({"ok": true})
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "a b\nc\n\nd").unwrap();
    let outputs = run(&agent, json!({"path": file.path()})).await.unwrap();
    assert_eq!(outputs["words"], json!(4));
    assert_eq!(outputs["lines"], json!(4));
}

#[tokio::test]
async fn bad_inputs_are_refused_by_the_schema_or_by_the_plugin_by_name() {
    let agent = word_count();
    let error = run(&agent, json!({"txt": "x"})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "input `txt`: is not an input of this agent; known: text, path"
    );
    assert_eq!(
        agent.info().await,
        None,
        "refused before the plugin started"
    );
    let error = run(&agent, json!({})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `word_count` answered `run` with error -32602: give exactly one of `text` or `path`"
    );
    assert!(!error.is_retryable());
    let error = run(&agent, json!({"path": "/no/such/file"}))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot read /no/such/file"),
        "{error}"
    );
    assert!(
        agent.info().await.is_some(),
        "an error answer keeps the process"
    );
}

#[tokio::test]
async fn a_crashed_plugin_is_started_again_on_next_use() {
    let plugin = hostile(
        r#"if inputs.get("crash"):
    print("dying on purpose", file=sys.stderr, flush=True)
    os._exit(3)
reply({"outputs": {"pid": os.getpid()}})"#,
        |_| {},
    );
    let first = run(&plugin.agent, json!({})).await.unwrap()["pid"].clone();
    let error = run(&plugin.agent, json!({"crash": true}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile`: exited (exit status: 3) while answering `run`; stderr: dying on purpose"
    );
    assert!(error.is_retryable());
    let second = run(&plugin.agent, json!({})).await.unwrap()["pid"].clone();
    assert_ne!(first, second, "a new process answers");

    // Killed while idle: the next call finds it dead and starts another, unharmed.
    let pid = second.as_i64().unwrap() as i32;
    // SAFETY: signals only the plugin process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_gone(pid as u64).await);
    let third = run(&plugin.agent, json!({})).await.unwrap()["pid"].clone();
    assert_ne!(third, second);
}

#[tokio::test]
async fn a_hung_plugin_is_killed_at_the_timeout_with_everything_it_started() {
    let plugin = hostile(
        r#"child = subprocess.Popen(["sleep", "300"])
with open(inputs["pids"], "w") as file:
    file.write(f"{os.getpid()} {child.pid}")
time.sleep(300)"#,
        |_| {},
    );
    let pids = plugin.dir.path().join("pids");
    let mut context = AgentContext::detached("k");
    context.timeout_secs = Some(1);
    let started = Instant::now();
    let error = plugin
        .agent
        .run(inputs(json!({"pids": pids})), context)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        error.to_string(),
        "plugin `hostile`: did not answer `run` within 1 s; killed"
    );
    let pids = read_pids(&pids);
    assert_eq!(pids.len(), 2, "the plugin and its child wrote their pids");
    for pid in pids {
        assert!(wait_gone(pid).await, "process {pid} outlived the timeout");
    }
}

#[tokio::test]
async fn a_ten_megabyte_line_is_refused() {
    let plugin = hostile(
        r#"send({"jsonrpc": "2.0", "id": message["id"], "result": {"outputs": {"x": "a" * 10_000_000}}})"#,
        |config| config.max_output_bytes = 64 * 1024,
    );
    let error = run(&plugin.agent, json!({})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile`: answered `run` with a line over max_output_bytes (65536 bytes); killed"
    );
}

#[tokio::test]
async fn non_json_and_wrong_ids_are_clear_errors() {
    let chatty = hostile(
        r#"print("hello from a stray print()", flush=True)
reply({"outputs": {}})"#,
        |_| {},
    );
    let error = run(&chatty.agent, json!({})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile`: wrote a line that is not JSON while answering `run`: `hello from a \
         stray print()` (stdout carries one JSON-RPC message per line; logs belong on stderr)"
    );
    let liar = hostile(
        r#"send({"jsonrpc": "2.0", "id": message["id"] + 100, "result": {"outputs": {}}})"#,
        |_| {},
    );
    let error = run(&liar.agent, json!({})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile`: broke the protocol during `run`: answered id 102 while request 2 was waiting"
    );
    let odd = hostile(r#"send({"id": message["id"], "outputs": {}})"#, |_| {});
    let error = run(&odd.agent, json!({})).await.unwrap_err();
    assert!(
        error.to_string().contains("is not a JSON-RPC 2.0 message"),
        "{error}"
    );
    let wrong_shape = hostile(r#"reply({"words": 3})"#, |_| {});
    let error = run(&wrong_shape.agent, json!({})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"plugin `hostile`: `run` must answer {"outputs": {...}, "cost_usd"?: number >= 0}, got {"words":3}"#
    );
}

#[tokio::test]
async fn a_crash_loop_hits_the_restart_limit_until_the_period_passes() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("crash.py");
    std::fs::write(
        &script,
        "import sys\nprint('boom', file=sys.stderr)\nsys.exit(1)\n",
    )
    .unwrap();
    let mut config = process(vec!["python3".into(), script.display().to_string()]);
    config.max_restarts = 2;
    config.restart_period_secs = 2;
    let agent = PluginAgent::new(PluginConfig {
        kind: "crashy".into(),
        description: String::new(),
        schema: open_schema(),
        process: config,
    });
    let handshake = "plugin `crashy`: failed its handshake: exited (exit status: 1) while \
                     answering `initialize`; stderr: boom";
    for _ in 0..2 {
        assert_eq!(
            run(&agent, json!({})).await.unwrap_err().to_string(),
            handshake
        );
    }
    assert_eq!(
        run(&agent, json!({})).await.unwrap_err().to_string(),
        format!("{handshake} (restart limit reached: not started again for 2 s)")
    );
    let refused = run(&agent, json!({})).await.unwrap_err();
    assert!(
        matches!(refused, AgentError::RestartLimit { .. }),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "plugin `crashy` failed 3 times within 2 s (at most 2 restarts allowed); not started \
         again for 2 s. Last failure: failed its handshake: exited (exit status: 1) while \
         answering `initialize`; stderr: boom"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        run(&agent, json!({})).await.unwrap_err().to_string(),
        handshake,
        "tried again once the period passed"
    );
}

#[tokio::test]
async fn cancellation_kills_a_plugin_that_ignores_it_and_keeps_one_that_answers() {
    let plugin = hostile(
        r#"if method == "cancel":
    continue
if inputs.get("wait"):
    with open(inputs["pid_file"], "w") as file:
        file.write(str(os.getpid()))
    if inputs.get("honour"):
        for other in sys.stdin:
            notice = json.loads(other)
            if notice.get("method") == "cancel" and notice["params"]["id"] == message["id"]:
                send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32800, "message": "cancelled"}})
                break
        continue
    time.sleep(300)
reply({"outputs": {"pid": os.getpid()}})"#,
        |_| {},
    );
    let pid_file = plugin.dir.path().join("pid");
    for honour in [false, true] {
        let context = AgentContext::detached("k");
        let cancel = context.cancel.clone();
        let inputs = inputs(json!({"wait": true, "honour": honour, "pid_file": pid_file}));
        let started = Instant::now();
        let (outcome, ()) = tokio::join!(plugin.agent.run(inputs, context), async {
            for _ in 0..100 {
                if pid_file.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            cancel.cancel();
        });
        assert_eq!(outcome.unwrap_err(), AgentError::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(8));
        let pid = read_pids(&pid_file)[0];
        std::fs::remove_file(&pid_file).unwrap();
        let next = run(&plugin.agent, json!({})).await.unwrap()["pid"].clone();
        if honour {
            assert_eq!(
                next,
                json!(pid),
                "a plugin that answered the cancel is kept"
            );
        } else {
            assert!(
                wait_gone(pid).await,
                "a plugin that ignored the cancel is killed"
            );
            assert_ne!(next, json!(pid));
        }
    }
}

#[tokio::test]
async fn the_environment_is_reduced_to_the_allow_list() {
    // SAFETY of the test: set_var is unsafe in edition 2024 because of other threads
    // reading the environment; these variables are read only by this test's child.
    unsafe {
        std::env::set_var("TROUPE_PLUGIN_TEST_SECRET", "s3cret");
        std::env::set_var("TROUPE_PLUGIN_TEST_ALLOWED", "yes");
    }
    let plugin = hostile(r#"reply({"outputs": dict(os.environ)})"#, |config| {
        config
            .env_allow_list
            .push("TROUPE_PLUGIN_TEST_ALLOWED".into());
    });
    let outputs = run(&plugin.agent, json!({})).await.unwrap();
    // `python3` may be a wrapper (pyenv) that adds its own variables; none of the node's
    // others may come through.
    assert!(
        !outputs.contains_key("TROUPE_PLUGIN_TEST_SECRET"),
        "{outputs:?}"
    );
    assert_eq!(outputs["TROUPE_PLUGIN_TEST_ALLOWED"], json!("yes"));
    assert!(outputs.contains_key("PATH"));
    assert!(!outputs.contains_key("HOME"), "{outputs:?}");
}

#[tokio::test]
async fn a_plugin_that_cannot_start_says_why() {
    let agent = PluginAgent::new(PluginConfig {
        kind: "missing".into(),
        description: String::new(),
        schema: open_schema(),
        process: process(vec!["/no/such/program".into()]),
    });
    let error = run(&agent, json!({})).await.unwrap_err().to_string();
    assert!(
        error.starts_with("plugin `missing`: cannot start `/no/such/program`: No such file"),
        "{error}"
    );
}
