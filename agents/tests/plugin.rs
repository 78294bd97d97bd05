//! Plugin kinds against real processes, in the jail: the example plugin, and hostile
//! ones written here (crashing, hanging, flooding, lying about ids, crash-looping,
//! ignoring cancel, reaching outside their jail).
//!
//! A jailed plugin has its own PID namespace, so it names itself by a random `instance`
//! and the tests find its processes on the host by their command line.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use troupe_agents::{
    Agent, AgentContext, AgentError, Field, FieldType, InputSchema, Jail, PluginAgent,
    PluginConfig, ProcessAccess, ProcessConfig,
};

/// The start of every hostile plugin: a handshake, then `BEHAVIOUR` for each request
/// (`message`, `method`, `params`, `inputs` and `reply(result)` are in scope).
const PRELUDE: &str = r#"
import json, os, subprocess, sys, time

INSTANCE = os.urandom(8).hex()

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
    /// Where its script lives; the plugin may write here.
    dir: tempfile::TempDir,
    script: PathBuf,
    agent: PluginAgent,
}

/// A directory the jail's user may write, as a node running as root needs it to be.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Runs `command` in the jail, reading `readable` and writing `writable`.
fn process(command: Vec<String>, readable: &[&Path], writable: &[&Path]) -> ProcessConfig {
    ProcessConfig {
        command,
        access: ProcessAccess {
            readable_dirs: readable.iter().map(|dir| dir.to_path_buf()).collect(),
            writable_dirs: writable.iter().map(|dir| dir.to_path_buf()).collect(),
            network: false,
        },
        jail: Jail::default(),
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
    let dir = shared_dir();
    let script = dir.path().join("plugin.py");
    std::fs::write(&script, format!("{PRELUDE}{}", indent(behaviour))).unwrap();
    let mut config = process(
        vec!["python3".into(), script.display().to_string()],
        &[],
        &[dir.path()],
    );
    tune(&mut config);
    let agent = PluginAgent::new(PluginConfig {
        kind: "hostile".into(),
        description: "a test plugin".into(),
        schema: open_schema(),
        process: config,
    });
    Plugin { dir, script, agent }
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

/// A live process (not a zombie) seen on the host.
struct Running {
    pid: i32,
    /// bubblewrap itself, rather than what runs in its jail.
    is_bwrap: bool,
}

/// The live processes whose command line names `marker`: the jail's and what it runs.
fn processes_naming(marker: &Path) -> Vec<Running> {
    let marker = marker.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let (Ok(cmdline), Ok(stat)) = (
            std::fs::read(entry.path().join("cmdline")),
            std::fs::read_to_string(entry.path().join("stat")),
        ) else {
            continue;
        };
        let mut args = cmdline.split(|byte| *byte == 0);
        let is_bwrap = args
            .next()
            .is_some_and(|program| program.ends_with(b"bwrap"));
        let names_it = args.any(|arg| arg == marker);
        let alive = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']));
        if names_it && alive {
            found.push(Running { pid, is_bwrap });
        }
    }
    found
}

/// Waits until no process names `marker`, the jail's own included; false if some still
/// do after 5 s.
async fn wait_none_naming(marker: &Path) -> bool {
    for _ in 0..50 {
        if processes_naming(marker).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether process `pid` has exited (a zombie, or reaped) within five seconds.
async fn wait_exited(pid: i32) -> bool {
    for _ in 0..50 {
        let exited = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        });
        if exited {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The example plugin's directory, as `examples/plugins/troupe.toml` declares it.
fn example_dir() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo and nextest"),
    )
    .join("../examples/plugins")
}

/// The example plugin, which may also read `data`.
fn word_count(data: &[&Path]) -> PluginAgent {
    let mut readable = vec![example_dir()];
    readable.extend(data.iter().map(|dir| dir.to_path_buf()));
    let readable: Vec<&Path> = readable.iter().map(PathBuf::as_path).collect();
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
        process: process(
            vec!["python3".into(), "word_count.py".into()],
            &readable,
            &[],
        ),
    })
}

#[tokio::test]
async fn the_example_plugin_counts_words_in_text_and_files_it_may_read() {
    let data = shared_dir();
    let agent = word_count(&[data.path()]);
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
    let file = data.path().join("text");
    std::fs::write(&file, "a b\nc\n\nd").unwrap();
    let outputs = run(&agent, json!({"path": file})).await.unwrap();
    assert_eq!(outputs["words"], json!(4));
    assert_eq!(outputs["lines"], json!(4));
}

/// The attack: a plugin asked to read a file the node can read, outside the directories
/// it was given. In its jail the file does not exist.
#[tokio::test]
async fn a_plugin_cannot_read_what_it_was_not_given() {
    let elsewhere = shared_dir();
    let secret = elsewhere.path().join("secret");
    std::fs::write(&secret, "the node's secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let agent = word_count(&[]);
    let error = run(&agent, json!({"path": secret})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "plugin `word_count` answered `run` with error -32001: cannot read {}: No such \
             file or directory",
            secret.display()
        )
    );
}

#[tokio::test]
async fn bad_inputs_are_refused_by_the_schema_or_by_the_plugin_by_name() {
    let agent = word_count(&[]);
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
reply({"outputs": {"instance": INSTANCE}})"#,
        |_| {},
    );
    let first = run(&plugin.agent, json!({})).await.unwrap()["instance"].clone();
    let error = run(&plugin.agent, json!({"crash": true}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile`: exited (exit status: 3) while answering `run`; stderr: dying on purpose"
    );
    assert!(error.is_retryable());
    let second = run(&plugin.agent, json!({})).await.unwrap()["instance"].clone();
    assert_ne!(first, second, "a new process answers");

    // Killed while idle: the next call finds it dead and starts another, unharmed.
    let running = processes_naming(&plugin.script);
    let jailed: Vec<i32> = running
        .iter()
        .filter_map(|process| (!process.is_bwrap).then_some(process.pid))
        .collect();
    assert_eq!(jailed.len(), 1, "one plugin process: {jailed:?}");
    // SAFETY: signals only the plugin process this test started.
    unsafe { libc::kill(jailed[0], libc::SIGKILL) };
    // Until bwrap is a zombie the node cannot know: a process on its way out has lost
    // its command line (so it names nothing) before it can be waited for.
    for process in &running {
        assert!(
            wait_exited(process.pid).await,
            "{} still running",
            process.pid
        );
    }
    let third = run(&plugin.agent, json!({})).await.unwrap()["instance"].clone();
    assert_ne!(third, second);
}

#[tokio::test]
async fn a_hung_plugin_is_killed_at_the_timeout_with_everything_it_started() {
    let plugin = hostile(
        r#"subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", __file__])
open(inputs["started"], "w").close()
time.sleep(300)"#,
        |_| {},
    );
    let started_file = plugin.dir.path().join("started");
    let mut context = AgentContext::detached("k");
    context.timeout_secs = Some(1);
    let started = Instant::now();
    let error = plugin
        .agent
        .run(inputs(json!({"started": started_file})), context)
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
    assert!(started_file.exists(), "the plugin started its child");
    assert!(
        wait_none_naming(&plugin.script).await,
        "the plugin or its child outlived the timeout"
    );
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
    let dir = shared_dir();
    let script = dir.path().join("crash.py");
    std::fs::write(
        &script,
        "import sys\nprint('boom', file=sys.stderr)\nsys.exit(1)\n",
    )
    .unwrap();
    let mut config = process(
        vec!["python3".into(), script.display().to_string()],
        &[dir.path()],
        &[],
    );
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
    with open(inputs["instance_file"], "w") as file:
        file.write(INSTANCE)
    if inputs.get("honour"):
        for other in sys.stdin:
            notice = json.loads(other)
            if notice.get("method") == "cancel" and notice["params"]["id"] == message["id"]:
                send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32800, "message": "cancelled"}})
                break
        continue
    time.sleep(300)
reply({"outputs": {"instance": INSTANCE}})"#,
        |_| {},
    );
    let instance_file = plugin.dir.path().join("instance");
    for honour in [false, true] {
        let context = AgentContext::detached("k");
        let cancel = context.cancel.clone();
        let inputs =
            inputs(json!({"wait": true, "honour": honour, "instance_file": instance_file}));
        let started = Instant::now();
        let (outcome, ()) = tokio::join!(plugin.agent.run(inputs, context), async {
            for _ in 0..100 {
                if instance_file.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            cancel.cancel();
        });
        assert_eq!(outcome.unwrap_err(), AgentError::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(8));
        let instance = std::fs::read_to_string(&instance_file).unwrap();
        std::fs::remove_file(&instance_file).unwrap();
        if !honour {
            assert!(
                wait_none_naming(&plugin.script).await,
                "a plugin that ignored the cancel is killed"
            );
        }
        let next = run(&plugin.agent, json!({})).await.unwrap()["instance"].clone();
        if honour {
            assert_eq!(
                next,
                json!(instance),
                "a plugin that answered the cancel is kept"
            );
        } else {
            assert_ne!(next, json!(instance));
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
    assert_eq!(outputs["HOME"], json!("/home/jail"), "the jail's own");
}

/// A plugin reaches a service on the node's loopback only when its settings allow the
/// network: off, it has a network namespace of its own.
#[tokio::test]
async fn a_plugin_reaches_the_network_only_when_allowed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = r#"import socket
try:
    socket.create_connection(("127.0.0.1", inputs["port"]), timeout=5).close()
    reply({"outputs": {"reached": True}})
except OSError as error:
    reply({"outputs": {"reached": False, "error": str(error)}})"#;
    let closed = hostile(probe, |_| {});
    let outputs = run(&closed.agent, json!({"port": port})).await.unwrap();
    assert_eq!(outputs["reached"], json!(false), "{outputs:?}");
    assert_eq!(outputs["error"], json!("[Errno 111] Connection refused"));
    let open = hostile(probe, |config| config.access.network = true);
    let outputs = run(&open.agent, json!({"port": port})).await.unwrap();
    assert_eq!(outputs["reached"], json!(true), "{outputs:?}");
}

#[tokio::test]
async fn a_plugin_that_cannot_start_says_why() {
    let agent = PluginAgent::new(PluginConfig {
        kind: "missing".into(),
        description: String::new(),
        schema: open_schema(),
        process: process(vec!["/no/such/program".into()], &[], &[]),
    });
    let error = run(&agent, json!({})).await.unwrap_err().to_string();
    // The jail starts, then cannot run the program; it says so on stderr (as `setpriv` on
    // a root node, as `bwrap` on others).
    assert!(
        error.starts_with(
            "plugin `missing`: failed its handshake: exited (exit status: 127) while answering \
             `initialize`; stderr: "
        ),
        "{error}"
    );
    assert!(
        error.ends_with("/no/such/program: No such file or directory"),
        "{error}"
    );
}
