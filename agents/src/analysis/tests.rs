//! The agent end to end, on repositories the tests create.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};

use super::*;
use crate::agent::Agent;
use crate::schema::FieldType;

fn write(root: &Path, file: &str, text: &str) {
    let path = root.join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the test directory");
    }
    std::fs::write(path, text).expect("write the test file");
}

fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

fn inputs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("inputs must be a map, got {other}"),
    }
}

/// An analyzer whose only linter is one that no node has.
fn analyzer() -> CodeAnalyzerAgent {
    CodeAnalyzerAgent::new(CodeAnalyzerConfig {
        linters: vec![Linter {
            name: "nolint".into(),
            program: "troupe-test-no-such-linter".into(),
            args: Vec::new(),
            languages: vec![Lang::Python, Lang::Shell],
        }],
        ..CodeAnalyzerConfig::default()
    })
}

async fn analyse(
    agent: &CodeAnalyzerAgent,
    value: Value,
) -> Result<Map<String, Value>, AgentError> {
    agent
        .run(inputs(value), AgentContext::detached("run:task:1"))
        .await
        .map(|output| output.outputs)
}

const PYTHON: &str = "def classify(n, items):\n    if n < 0 and n > -10:\n        return 'small'\n    elif n == 0:\n        return 'zero'\n    for item in items:\n        if item:\n            print(item)\n    return 'other'\n\n\ndef plain():\n    return 1\n";
const RUST: &str = "// A comment.\nfn main() {\n    let x = 1;\n\n    if x > 0 {\n        println!(\"{x}\");\n    }\n}\n";

#[tokio::test]
async fn languages_lines_and_functions_of_a_small_repository() {
    let dir = crate::jail::testing::open_dir(0o755);
    write(dir.path(), "app/m.py", PYTHON);
    write(dir.path(), "src/main.rs", RUST);
    write(dir.path(), "README.md", "# Title\n\ntext\n");
    let out = analyse(&analyzer(), json!({"repository": dir.path().to_str()}))
        .await
        .expect("analysis runs");
    assert_eq!(
        out["languages"],
        json!({
            "python": {"files": 1, "lines": 13, "code_lines": 11},
            "rust": {"files": 1, "lines": 8, "code_lines": 6},
        })
    );
    assert_eq!(out["files"], json!(3));
    assert_eq!(out["lines"], json!(13 + 8 + 3));
    assert_eq!(out["function_count"], json!(3));
    assert_eq!(
        out["functions"][0],
        json!({"file": "app/m.py", "name": "classify", "line": 1, "complexity": 6, "lines": 9})
    );
    assert_eq!(out["max_complexity"], json!(6));
    // (6 + 1 + 2) / 3.
    assert_eq!(out["average_complexity"], json!(3.0));
    assert_eq!(out["complex_functions"], json!(0));
    assert_eq!(out["security_score"], json!(10.0));
    assert_eq!(out["security_findings"], json!(0));
    assert_eq!(out["quality_score"], json!(10.0));
    // A temp dir is not a git work tree.
    assert_eq!(out["modified_files"], Value::Null);
    assert!(
        out["git_note"]
            .as_str()
            .is_some_and(|note| note.contains("not a git work tree")),
        "{}",
        out["git_note"]
    );
}

#[tokio::test]
async fn a_missing_linter_is_reported_unavailable_not_an_error() {
    let dir = crate::jail::testing::open_dir(0o755);
    write(dir.path(), "run.sh", "#!/bin/sh\necho $1\n");
    let out = analyse(&analyzer(), json!({"repository": dir.path().to_str()}))
        .await
        .expect("analysis runs");
    assert_eq!(
        out["lint"],
        json!([{
            "linter": "nolint",
            "available": false,
            "issues": 0,
            "output": "`troupe-test-no-such-linter` is not installed on this node",
            "exit_code": null,
        }])
    );
}

#[tokio::test]
async fn an_installed_linter_runs_and_its_issue_lines_are_counted() {
    let dir = crate::jail::testing::open_dir(0o755);
    write(dir.path(), "a.sh", "echo hi\n");
    write(dir.path(), "b.py", "x = 1\n");
    // `sh -c` as a stand-in linter: it prints one issue line per file it is given.
    let agent = CodeAnalyzerAgent::new(CodeAnalyzerConfig {
        linters: vec![Linter {
            name: "fake".into(),
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "for f in \"$@\"; do echo \"$f:1:1: issue\"; done".into(),
                "fake".into(),
            ],
            languages: vec![Lang::Shell, Lang::Python],
        }],
        ..CodeAnalyzerConfig::default()
    });
    let out = analyse(&agent, json!({"repository": dir.path().to_str()}))
        .await
        .expect("analysis runs");
    assert_eq!(out["lint"][0]["available"], json!(true));
    assert_eq!(out["lint"][0]["issues"], json!(2));
    assert_eq!(
        out["lint"][0]["output"],
        json!("./a.sh:1:1: issue\n./b.py:1:1: issue\n")
    );
    // 2 issues in 2 lines is over 10 per 1,000 lines: the full lint penalty of 2.
    assert_eq!(out["quality_score"], json!(8.0));
}

#[tokio::test]
async fn modified_files_against_head_and_against_an_older_commit() {
    let dir = crate::jail::testing::open_dir(0o755);
    let root = dir.path();
    git(root, &["init", "--quiet"]);
    write(root, "first.py", "x = 1\n");
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "first"]);
    write(root, "second.py", "y = 2\n");
    write(root, "ignored.log", "noise\n");
    write(root, ".gitignore", "*.log\n");
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "second"]);
    write(root, "first.py", "x = 3\n");
    write(root, "new file.py", "z = 4\n");

    let agent = analyzer();
    let out = analyse(&agent, json!({"repository": root.to_str()}))
        .await
        .expect("analysis runs");
    assert_eq!(out["modified_files"], json!(["first.py", "new file.py"]));
    assert_eq!(out.get("git_note"), None);

    let out = analyse(
        &agent,
        json!({"repository": root.to_str(), "base_ref": "HEAD~1"}),
    )
    .await
    .expect("analysis runs");
    assert_eq!(
        out["modified_files"],
        json!([".gitignore", "first.py", "new file.py", "second.py"])
    );

    let unknown = analyse(
        &agent,
        json!({"repository": root.to_str(), "base_ref": "no-such-branch"}),
    )
    .await;
    assert!(
        matches!(unknown, Err(AgentError::InvalidInput { ref field, .. }) if field == "base_ref"),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_hostile_base_ref_is_refused_before_git_runs() {
    let dir = crate::jail::testing::open_dir(0o755);
    let root = dir.path();
    git(root, &["init", "--quiet"]);
    let target = root.join("written-by-git");
    let hostile = format!("--output={}", target.display());
    let refused = analyse(
        &analyzer(),
        json!({"repository": root.to_str(), "base_ref": hostile}),
    )
    .await;
    assert!(
        matches!(refused, Err(AgentError::InvalidInput { ref field, .. }) if field == "base_ref"),
        "{refused:?}"
    );
    assert!(!target.exists());
}

#[tokio::test]
async fn a_planted_secret_lowers_the_security_and_quality_scores() {
    let dir = crate::jail::testing::open_dir(0o755);
    write(dir.path(), "clean.py", "def f():\n    return 1\n");
    let clean = analyse(&analyzer(), json!({"repository": dir.path().to_str()}))
        .await
        .expect("analysis runs");
    write(
        dir.path(),
        "config.py",
        "AWS_ACCESS_KEY_ID = 'AKIAZ7QWERTYUIOPASDF'\nAWS_SECRET_ACCESS_KEY = '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'\n",
    );
    let leaky = analyse(&analyzer(), json!({"repository": dir.path().to_str()}))
        .await
        .expect("analysis runs");
    let score = |out: &Map<String, Value>, key: &str| out[key].as_f64().unwrap_or(f64::NAN);
    assert_eq!(score(&clean, "security_score"), 10.0);
    assert!(score(&leaky, "security_score") < 10.0, "{leaky:?}");
    assert!(
        leaky["security_findings"]
            .as_u64()
            .is_some_and(|count| count >= 1)
    );
    assert!(score(&leaky, "quality_score") < score(&clean, "quality_score"));
}

#[tokio::test]
async fn max_functions_bounds_the_list_but_not_the_counts() {
    let dir = crate::jail::testing::open_dir(0o755);
    write(dir.path(), "m.py", PYTHON);
    let out = analyse(
        &analyzer(),
        json!({"repository": dir.path().to_str(), "max_functions": 1}),
    )
    .await
    .expect("analysis runs");
    assert_eq!(out["functions"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["function_count"], json!(2));
    let negative = analyse(
        &analyzer(),
        json!({"repository": dir.path().to_str(), "max_functions": -1}),
    )
    .await;
    assert!(
        matches!(negative, Err(AgentError::InvalidInput { ref field, .. }) if field == "max_functions")
    );
}

#[tokio::test]
async fn bad_inputs_are_refused_by_name() {
    let missing = analyse(
        &analyzer(),
        json!({"repository": "/no/such/troupe/repository"}),
    )
    .await;
    assert!(
        matches!(missing, Err(AgentError::InvalidInput { ref field, .. }) if field == "repository"),
        "{missing:?}"
    );
    let wrong_type = analyse(&analyzer(), json!({"repository": 3})).await;
    assert!(matches!(wrong_type, Err(AgentError::InvalidInput { .. })));
    let unknown = analyse(&analyzer(), json!({"repository": "/tmp", "base": "HEAD"})).await;
    assert!(matches!(unknown, Err(AgentError::InvalidInput { ref field, .. }) if field == "base"));
}

#[tokio::test]
async fn a_cancelled_attempt_stops() {
    let dir = crate::jail::testing::open_dir(0o755);
    write(dir.path(), "m.py", PYTHON);
    let context = AgentContext::detached("run:task:1");
    context.cancel.cancel();
    let result = analyzer()
        .run(inputs(json!({"repository": dir.path().to_str()})), context)
        .await;
    assert_eq!(result.map(|_| ()), Err(AgentError::Cancelled));
}

#[test]
fn the_kind_and_its_inputs_are_described() {
    let agent = CodeAnalyzerAgent::new(CodeAnalyzerConfig::default());
    assert_eq!(agent.kind(), "code_analyzer");
    let schema = agent.input_schema();
    let fields: Vec<(&str, FieldType, bool)> = schema
        .fields
        .iter()
        .map(|field| (field.name.as_ref(), field.field_type, field.required))
        .collect();
    assert_eq!(
        fields,
        [
            ("repository", FieldType::String, true),
            ("base_ref", FieldType::String, false),
            ("max_functions", FieldType::Integer, false),
        ]
    );
    assert!(!schema.open, "unknown inputs are refused");
    assert_eq!(
        schema.fields[0].description,
        "Path of the checked-out repository to analyse."
    );
}

/// The attack: a repository's own configuration names a `clean` filter (and a `process`
/// one) for its files; `git diff` against the work tree runs it. The analysis switches
/// every filter driver off.
#[tokio::test]
async fn a_repositorys_filter_driver_does_not_run() {
    let repository = crate::jail::testing::open_dir(0o755);
    let root = repository.path();
    // Outside the repository (read-only in the jail) and writable by the jailed user, so
    // a filter that ran would leave the marker.
    let marker_dir = crate::jail::testing::open_dir(0o777);
    let marker = marker_dir.path().join("filter-ran");
    git(root, &["init", "-q"]);
    std::fs::write(root.join(".gitattributes"), "*.txt filter=pwn\n").unwrap();
    std::fs::write(root.join("a.txt"), "one\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "init"]);
    let touch = format!("touch {}", marker.display());
    git(
        root,
        &["config", "filter.pwn.clean", &format!("{touch}; cat")],
    );
    git(root, &["config", "filter.pwn.process", &touch]);
    std::fs::write(root.join("a.txt"), "two\n").unwrap();
    let cell = crate::jail::testing::cell(root, &[marker_dir.path()]).await;
    let modified = super::git::modified_files(
        &cell,
        root,
        "HEAD",
        std::time::Duration::from_secs(30),
        100,
        &crate::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        modified,
        super::git::Modified::Files {
            files: vec!["a.txt".into()],
            truncated: false
        }
    );
    assert!(!marker.exists(), "the repository's filter ran on the node");
}
