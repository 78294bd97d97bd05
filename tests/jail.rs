//! Attacks of the security review on the jail, against the real binary: a developer
//! whose project is granted `shell` reads the node's token signing key through a task
//! (to forge a super admin's token), and a repository's test code writes outside its
//! throw-away copy. Both run in the jail: the key directory is covered even when the
//! task's working directory is the node's own, and only the copy is writable. A run
//! variable that would inject into a shell command someone else wrote stays data, and a
//! scanned repository's own flake8 plugin never runs.

mod support;

use serde_json::Value;
use support::*;

/// Saves `workflow` on `server`, runs it with `variables` and waits for the run to end;
/// returns the run and the outputs of its task `task`.
fn run_to_end(server: &Server, workflow: &str, variables: Value, task: &str) -> (Value, Value) {
    let run_id = save_and_start(
        server,
        workflow,
        &serde_json::json!({ "variables": variables }),
    );
    let run = wait_for_run(server, &run_id, 120, |run| run["status"] != "running");
    let outputs = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|found| found["id"] == task)
        .map(|found| found["outputs"].clone())
        .unwrap_or_default();
    (run, outputs)
}

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
    let variables = serde_json::json!({
        "node_dir": dir.path().display().to_string(),
        "key": key_file.display().to_string(),
    });
    let (run, outputs) = run_to_end(&server, WORKFLOW, variables, "steal");
    assert_eq!(task_status(&run, "steal"), "completed", "{run:#}");
    let stdout = outputs["stdout"].as_str().unwrap();
    assert!(!stdout.contains(&key_hex), "the key leaked: {outputs:#}");
    let stderr = outputs["stderr"].as_str().unwrap();
    assert!(stderr.contains("Permission denied"), "{outputs:#}");
    assert_eq!(outputs["isolation"]["jail"], "bubblewrap", "{outputs:#}");
}

const TEST_RUN: &str = r#"
name: Escape the copy
variables:
  repository: ""
tasks:
  - id: tests
    name: Tests
    agent: test_runner
    inputs:
      repository: "{{ variables.repository }}"
      coverage: false
"#;

/// The fifth attack, through the real binary: a repository's test code (a detected
/// pytest suite, which needs no grant) writes outside its throw-away copy: into the
/// original repository and into a directory anyone may write. Before the jail both
/// writes landed, as root. Now the suite's own assertion sees them refused.
#[test]
fn test_code_cannot_write_outside_its_copy() {
    let dir = tempfile::tempdir().unwrap();
    let open = shared_dir(dir.path());
    let repository = dir.path().join("repository");
    std::fs::create_dir(&repository).unwrap();
    let targets = [repository.join("planted"), open.join("planted")];
    let test = format!(
        "def test_writes_outside_are_refused():\n\
         \x20   landed = []\n\
         \x20   for target in {targets:?}:\n\
         \x20       try:\n\
         \x20           open(target, 'w').write('pwned')\n\
         \x20           landed.append(target)\n\
         \x20       except OSError:\n\
         \x20           pass\n\
         \x20   assert landed == [], landed\n"
    );
    std::fs::write(repository.join("pyproject.toml"), "[project]\nname = 'x'\n").unwrap();
    std::fs::write(repository.join("test_escape.py"), test).unwrap();

    let server = Server::start(&dir.path().join("data"), &free_address());
    let variables = serde_json::json!({"repository": repository.display().to_string()});
    let (run, outputs) = run_to_end(&server, TEST_RUN, variables, "tests");
    assert_eq!(outputs["all_passed"], true, "{run:#}");
    assert_eq!(outputs["passed"], 1, "{outputs:#}");
    for target in &targets {
        assert!(!target.exists(), "{} was written", target.display());
    }
}

/// The attack: whoever may start a run gives `examples/hello.yaml` a name that closes
/// the author's quotes and runs a command of its own. The value is quoted for where it
/// stands, so the greeting prints it as it is.
#[test]
fn a_run_variable_cannot_inject_into_a_shell_command() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &free_address());
    allow_kinds(&server, "default", &["shell"]);
    let hello = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.yaml"),
    )
    .unwrap();
    let who = "x'; echo INJECTED $(id -u); echo '";
    let variables = serde_json::json!({ "who": who });
    let (run, greet) = run_to_end(&server, &hello, variables, "greet");
    assert_eq!(task_status(&run, "greet"), "completed", "{run:#}");
    assert_eq!(
        greet["stdout"].as_str().unwrap(),
        format!("Hello, {who}!\n"),
        "{greet:#}"
    );
}

const ANALYSE: &str = r#"
name: Analyse
variables:
  repository: ""
tasks:
  - id: analyse
    name: Analyse
    agent: code_analyzer
    inputs:
      repository: "{{ variables.repository }}"
"#;

/// The attack: a repository handed to `code_analyzer` declares a flake8 plugin of its
/// own in `setup.cfg`, which flake8 would import (run) from the configuration. It
/// would report `X999` on every file; flake8 runs `--isolated`, so it never loads.
#[test]
fn a_scanned_repositorys_flake8_plugin_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let repository = shared_dir(dir.path());
    std::fs::write(
        repository.join("evil_plugin.py"),
        "class Plugin:\n    name = 'x'\n    version = '1'\n    def __init__(self, tree): pass\n    def run(self):\n        yield (1, 0, 'X999 the plugin ran', type(self))\n",
    )
    .unwrap();
    std::fs::write(
        repository.join("setup.cfg"),
        "[flake8:local-plugins]\nextension =\n    X = evil_plugin:Plugin\npaths = .\n",
    )
    .unwrap();
    std::fs::write(repository.join("app.py"), "import os\n").unwrap();
    let server = Server::start(&dir.path().join("data"), &free_address());
    let variables = serde_json::json!({ "repository": repository });
    let (run, outputs) = run_to_end(&server, ANALYSE, variables, "analyse");
    assert_eq!(task_status(&run, "analyse"), "completed", "{run:#}");
    let lint = &outputs["lint"];
    let flake8 = lint
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["linter"] == "flake8")
        .unwrap_or_else(|| panic!("flake8 did not run: {lint:#}"));
    assert_eq!(flake8["available"], true, "install flake8 (scripts/setup)");
    let output = flake8["output"].as_str().unwrap();
    assert!(output.contains("F401"), "flake8 checked the file: {output}");
    assert!(
        !output.contains("X999"),
        "the repository's plugin ran: {output}"
    );
}
