//! The agent against real projects the tests write into temp dirs. Each needs its
//! toolchain installed (cargo, python3 with pytest and pytest-cov, node with npm, go);
//! a missing one fails the test with the agent's message saying what to install.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::agent::Agent;
use serde_json::Map;

fn config() -> TestRunnerConfig {
    TestRunnerConfig {
        max_processes: 64,
        max_memory_bytes: 2 << 30,
        ..TestRunnerConfig::default()
    }
}

fn inputs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("inputs must be a map"),
    }
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

async fn run_with(config: TestRunnerConfig, value: Value) -> Map<String, Value> {
    TestRunnerAgent::new(config)
        .run(inputs(value), AgentContext::detached("run:task:1"))
        .await
        .unwrap_or_else(|error| panic!("test_runner failed: {error}"))
        .outputs
}

async fn run(value: Value) -> Map<String, Value> {
    run_with(config(), value).await
}

fn counts(outputs: &Map<String, Value>) -> (u64, u64, u64) {
    let count = |name: &str| outputs[name].as_u64().unwrap();
    (count("passed"), count("failed"), count("skipped"))
}

/// Every file below `root` with its contents, to compare before and after a run.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let name = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits up to five seconds for processes with `marker` to be gone.
async fn assert_none_left(marker: &str) {
    for _ in 0..50 {
        if processes_with(marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("processes survived the run: {:?}", processes_with(marker));
}

#[tokio::test]
async fn cargo_crate_with_a_passing_and_a_failing_test() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "src/lib.rs",
                "#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(1 + 1, 2); }\n    \
                 #[test]\n    fn fails() { assert_eq!(1 + 1, 3, \"arithmetic broke\"); }\n}\n",
            ),
        ],
    );
    let before = snapshot(repo.path());
    let outputs = run(json!({"repository": repo.path()})).await;
    assert_eq!(outputs["project_type"], json!("cargo"), "{outputs:?}");
    assert_eq!(counts(&outputs), (1, 1, 0), "{outputs:?}");
    assert_eq!(outputs["all_passed"], json!(false));
    assert_eq!(outputs["failures"][0]["name"], json!("tests::fails"));
    assert!(
        outputs["failures"][0]["output"]
            .as_str()
            .unwrap()
            .contains("arithmetic broke")
    );
    assert_eq!(outputs["coverage_percentage"], Value::Null);
    assert!(
        outputs["coverage_note"]
            .as_str()
            .unwrap()
            .contains("cargo-llvm-cov")
    );
    // The build happened in the copy: no target/ (or anything else) appeared here.
    assert_eq!(snapshot(repo.path()), before);
}

#[tokio::test]
async fn pytest_project_with_pass_fail_skip_and_coverage() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        &[
            (
                "calc.py",
                "def add(a, b):\n    return a + b\n\ndef unused():\n    return 0\n",
            ),
            (
                "tests/test_calc.py",
                "import pytest\nfrom calc import add\n\ndef test_adds():\n    assert add(1, 1) == 2\n\n\
                 def test_fails():\n    assert add(1, 1) == 3\n\n@pytest.mark.skip(reason='later')\n\
                 def test_later():\n    pass\n",
            ),
            ("pytest.ini", "[pytest]\npythonpath = .\n"),
        ],
    );
    let outputs = run(json!({"repository": repo.path()})).await;
    assert_eq!(outputs["project_type"], json!("pytest"), "{outputs:?}");
    assert_eq!(counts(&outputs), (1, 1, 1), "{outputs:?}");
    assert_eq!(outputs["total"], json!(3));
    assert_eq!(outputs["all_passed"], json!(false));
    let failure = &outputs["failures"][0];
    assert_eq!(
        failure["name"],
        json!("tests.test_calc::test_fails"),
        "{outputs:?}"
    );
    assert!(
        failure["output"]
            .as_str()
            .unwrap()
            .contains("assert 2 == 3"),
        "{failure}"
    );
    let coverage = outputs["coverage_percentage"].as_f64();
    assert!(
        coverage.is_some_and(|percent| percent > 0.0 && percent < 100.0),
        "{outputs:?}"
    );
}

#[tokio::test]
async fn npm_project_with_node_test_runner() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        &[
            (
                "package.json",
                r#"{"name": "tiny", "version": "1.0.0", "scripts": {"test": "node --test"}}"#,
            ),
            (
                "test/math.test.js",
                "const test = require('node:test');\nconst assert = require('node:assert');\n\
                 test('adds', () => assert.strictEqual(1 + 1, 2));\n\
                 test('fails', () => assert.strictEqual(1 + 1, 3));\n\
                 test('later', { skip: true }, () => {});\n",
            ),
        ],
    );
    let outputs = run(json!({"repository": repo.path()})).await;
    assert_eq!(outputs["project_type"], json!("npm"), "{outputs:?}");
    assert_eq!(counts(&outputs), (1, 1, 1), "{outputs:?}");
    assert_eq!(outputs["all_passed"], json!(false));
    assert_eq!(
        outputs["failures"][0]["name"],
        json!("fails"),
        "{outputs:?}"
    );
    assert!(
        outputs["failures"][0]["output"]
            .as_str()
            .unwrap()
            .contains("3")
    );
}

#[tokio::test]
async fn go_module_with_a_passing_and_a_failing_test_and_coverage() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        &[
            ("go.mod", "module example.com/tiny\n\ngo 1.19\n"),
            (
                "calc.go",
                "package tiny\n\nfunc Add(a, b int) int { return a + b }\n\nfunc Unused() int { return 0 }\n",
            ),
            (
                "calc_test.go",
                "package tiny\n\nimport \"testing\"\n\nfunc TestAdds(t *testing.T) { if Add(1, 1) != 2 { t.Fatal(\"no\") } }\n\n\
                 func TestFails(t *testing.T) { t.Fatalf(\"wanted %d\", 3) }\n\n\
                 func TestLater(t *testing.T) { t.Skip(\"later\") }\n",
            ),
        ],
    );
    let outputs = run(json!({"repository": repo.path()})).await;
    assert_eq!(outputs["project_type"], json!("go"), "{outputs:?}");
    assert_eq!(counts(&outputs), (1, 1, 1), "{outputs:?}");
    assert_eq!(
        outputs["failures"][0]["name"],
        json!("example.com/tiny.TestFails")
    );
    assert!(
        outputs["failures"][0]["output"]
            .as_str()
            .unwrap()
            .contains("wanted 3")
    );
    assert_eq!(outputs["coverage_percentage"], json!(50.0), "{outputs:?}");
}

#[tokio::test]
async fn a_custom_command_runs_in_a_copy_and_leaves_the_original_untouched() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), &[("data.txt", "original\n")]);
    let before = snapshot(repo.path());
    let command = "echo changed > data.txt && echo new > created.txt && cat data.txt";
    let outputs = run(json!({"repository": repo.path(), "command": command})).await;
    assert_eq!(outputs["project_type"], json!("custom"));
    assert_eq!(outputs["all_passed"], json!(true), "{outputs:?}");
    assert_eq!(outputs["stdout"], json!("changed\n"));
    assert_eq!(snapshot(repo.path()), before);

    let outputs =
        run(json!({"repository": repo.path(), "command": "echo broken >&2; exit 3"})).await;
    assert_eq!(outputs["all_passed"], json!(false));
    assert_eq!(outputs["exit_code"], json!(3));
    assert!(
        outputs["failures"][0]["output"]
            .as_str()
            .unwrap()
            .contains("broken")
    );
}

#[tokio::test]
async fn a_suite_that_never_ends_is_killed_and_reported_timed_out() {
    let repo = tempfile::tempdir().unwrap();
    let marker = "troupe-never-ends-marker";
    let command = format!("sh -c 'sleep 600; : {marker}' & sleep 600");
    let started = Instant::now();
    let outputs =
        run(json!({"repository": repo.path(), "command": command, "timeout_secs": 2})).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outputs["timed_out"], json!(true));
    assert_eq!(outputs["all_passed"], json!(false));
    assert_none_left(marker).await;
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_leaves_nothing_behind() {
    let repo = tempfile::tempdir().unwrap();
    let marker = "troupe-fork-bomb-marker";
    // Bounded so a broken sandbox cannot take the machine down: at most 10,000 sleepers.
    let command = format!(
        "i=0; while [ $i -lt 10000 ]; do sh -c 'sleep 300; : {marker}' & i=$((i+1)); done; wait"
    );
    let started = Instant::now();
    let outputs =
        run(json!({"repository": repo.path(), "command": command, "timeout_secs": 5})).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outputs["all_passed"], json!(false));
    let processes = outputs["isolation"]["processes"].as_str().unwrap();
    assert_ne!(processes, "none", "{outputs:?}");
    if processes == "cgroup" {
        // pids.max stopped the forks: the shell said so.
        assert!(
            outputs["stderr"].as_str().unwrap().contains("fork"),
            "{outputs:?}"
        );
    }
    assert_none_left(marker).await;
}

#[tokio::test]
async fn the_network_is_cut_off() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The server is reachable from here...
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let repo = tempfile::tempdir().unwrap();
    let command = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')\""
    );
    let outputs = run(json!({"repository": repo.path(), "command": command})).await;
    // ...but not from inside.
    assert_eq!(outputs["all_passed"], json!(false), "{outputs:?}");
    assert!(!outputs["stdout"].as_str().unwrap().contains("connected"));
    assert!(
        outputs["stderr"].as_str().unwrap().contains("Error"),
        "{outputs:?}"
    );
    assert_eq!(outputs["isolation"]["network"], json!("off"));
}

/// The attack: a repository's test code writes outside its throw-away copy, into the
/// original repository, into a directory anyone may write, and into the system. Run as
/// root before the jail, every write landed. Now the suite's own assertions see each
/// write refused, and the host shows none of them.
#[tokio::test]
async fn test_code_cannot_write_outside_its_copy() {
    let repo = crate::jail::testing::open_dir(0o755);
    let open = crate::jail::testing::open_dir(0o777);
    let targets = [
        repo.path().join("planted"),
        open.path().join("planted"),
        "/usr/troupe-planted".into(),
    ];
    let test = format!(
        "import os\n\
         def test_writes_outside_are_refused():\n\
         \x20   landed = []\n\
         \x20   for target in {targets:?}:\n\
         \x20       try:\n\
         \x20           open(target, 'w').write('pwned')\n\
         \x20           landed.append(target)\n\
         \x20       except OSError:\n\
         \x20           pass\n\
         \x20   assert landed == [], landed\n\
         \x20   assert os.getuid() != 0\n"
    );
    write(
        repo.path(),
        &[
            ("pyproject.toml", "[project]\nname = 'x'\n"),
            ("test_escape.py", &test),
        ],
    );
    let outputs = run(json!({"repository": repo.path(), "coverage": false})).await;
    assert_eq!(outputs["all_passed"], json!(true), "{outputs:?}");
    assert_eq!(counts(&outputs), (1, 0, 0), "{outputs:?}");
    for target in &targets {
        assert!(!target.exists(), "{} was written", target.display());
    }
}

#[tokio::test]
async fn memory_beyond_the_limit_fails_the_suite() {
    let repo = tempfile::tempdir().unwrap();
    let small = TestRunnerConfig {
        max_memory_bytes: 200 << 20,
        ..config()
    };
    let command = "python3 -c \"b = bytearray(600 * 1024 * 1024); print('allocated')\"";
    let outputs = run_with(
        small,
        json!({"repository": repo.path(), "command": command}),
    )
    .await;
    assert_eq!(outputs["all_passed"], json!(false), "{outputs:?}");
    assert!(!outputs["stdout"].as_str().unwrap().contains("allocated"));
}

#[tokio::test]
async fn cancellation_stops_the_suite() {
    let repo = tempfile::tempdir().unwrap();
    let marker = "troupe-cancel-marker";
    let context = AgentContext::detached("k");
    let cancel = context.cancel.clone();
    let command = format!("sh -c 'sleep 600; : {marker}'");
    let agent = TestRunnerAgent::new(config());
    let path = repo.path().to_path_buf();
    let started = Instant::now();
    let run = tokio::spawn(async move {
        agent
            .run(
                inputs(json!({"repository": path, "command": command})),
                context,
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    cancel.cancel();
    assert_eq!(run.await.unwrap().unwrap_err(), AgentError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_none_left(marker).await;
}

#[tokio::test]
async fn bad_inputs_are_refused_with_the_reason() {
    let agent = TestRunnerAgent::new(config());
    let refuse = |value: Value| {
        let agent = &agent;
        async move {
            agent
                .run(inputs(value), AgentContext::detached("k"))
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let message = refuse(json!({"repository": "/no/such/repo"})).await;
    assert!(
        message.starts_with("input `repository`: `/no/such/repo` is not a directory"),
        "{message}"
    );
    let empty = tempfile::tempdir().unwrap();
    let message = refuse(json!({"repository": empty.path()})).await;
    assert!(message.contains("give `project_type`"), "{message}");
    let message = refuse(json!({"repository": empty.path(), "project_type": "maven"})).await;
    assert_eq!(
        message,
        "input `project_type`: `maven` is not one of cargo, pytest, npm, go"
    );
    let message =
        refuse(json!({"repository": empty.path(), "command": "true", "timeout_secs": 0})).await;
    assert_eq!(message, "input `timeout_secs`: must be at least 1");
}
