//! Linters, where the node has them: each is run over the files of its language and
//! its issues counted. A linter that is not on `PATH` is reported `available: false`.
//! Linters run in the analysis's jail cell, started in the repository.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::errors::AgentError;
use crate::jail::Entered;
use crate::process::{Bounds, find_on_path, run_bounded, tail_chars, toolchain_environment};
use troupe_scanner::rules::Lang;

/// A linter the analyzer knows how to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linter {
    /// Reported name.
    pub name: String,
    /// Looked up on `PATH`.
    pub program: String,
    /// Placed before the files; they must make the linter print one
    /// `file:line:column: message` line per issue.
    pub args: Vec<String>,
    /// It runs when the repository has files of one of these languages.
    pub languages: Vec<Lang>,
}

impl Linter {
    fn new(name: &str, args: &[&str], languages: &[Lang]) -> Self {
        Self {
            name: name.into(),
            program: name.into(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            languages: languages.to_vec(),
        }
    }

    /// shellcheck, ruff, flake8 and eslint, each kept from running the repository's
    /// code: eslint with `--no-config-lookup` (a repository's `eslint.config.js` is
    /// JavaScript), flake8 with `--isolated` (a `[flake8:local-plugins]` section in its
    /// configuration imports the repository's Python).
    pub fn defaults() -> Vec<Linter> {
        let javascript = [Lang::JavaScript, Lang::TypeScript, Lang::Tsx];
        vec![
            Linter::new("shellcheck", &["--format=gcc"], &[Lang::Shell]),
            Linter::new(
                "ruff",
                &["check", "--output-format=concise", "--no-cache", "--no-fix"],
                &[Lang::Python],
            ),
            Linter::new("flake8", &["--isolated"], &[Lang::Python]),
            Linter::new(
                "eslint",
                &["--no-config-lookup", "--format=unix", "--no-color"],
                &javascript,
            ),
        ]
    }
}

/// One linter's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintResult {
    pub linter: String,
    pub available: bool,
    /// `file:line:column:` lines it printed.
    pub issues: usize,
    /// The end of what it printed, bounded; or why it did not finish.
    pub output: String,
    pub exit_code: Option<i32>,
}

/// Bounds on running linters.
#[derive(Debug, Clone)]
pub struct LintLimits {
    pub timeout: Duration,
    /// Bytes of output read from each linter (issues past it are not counted).
    pub max_output_bytes: usize,
    /// Characters of that output kept in the result.
    pub max_reported_output_chars: usize,
    /// Files given to one linter.
    pub max_files: usize,
}

static ISSUE_LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?m)^[^:\n]+:\d+:\d+:").ok());

/// Issue lines in a linter's output.
pub fn count_issues(output: &str) -> usize {
    ISSUE_LINE
        .as_ref()
        .map_or(0, |pattern| pattern.find_iter(output).count())
}

/// Runs every linter one of whose languages has files in `files_by_lang`
/// (relative paths), in `repository`.
pub async fn run_linters(
    cell: &Entered,
    linters: &[Linter],
    files_by_lang: &[(Lang, String)],
    limits: &LintLimits,
    cancel: &CancellationToken,
) -> Result<Vec<LintResult>, AgentError> {
    let mut results = Vec::new();
    for linter in linters {
        let files: Vec<&str> = files_by_lang
            .iter()
            .filter(|(lang, _)| linter.languages.contains(lang))
            .map(|(_, file)| file.as_str())
            .take(limits.max_files)
            .collect();
        if files.is_empty() {
            continue;
        }
        let Some(program) = find_on_path(&linter.program) else {
            results.push(LintResult {
                linter: linter.name.clone(),
                available: false,
                issues: 0,
                output: format!("`{}` is not installed on this node", linter.program),
                exit_code: None,
            });
            continue;
        };
        // `./` first: a file named `-rf.sh` stays a file, never an option.
        let argv = std::iter::once(program.into_os_string())
            .chain(linter.args.iter().map(Into::into))
            .chain(files.iter().map(|file| format!("./{file}").into()));
        let mut env = toolchain_environment();
        env.insert("NO_COLOR".into(), "1".into());
        let command = cell.command(argv, &env)?;
        let bounds = Bounds::head(limits.timeout, limits.max_output_bytes);
        let finished = run_bounded(command, cancel, &bounds).await?;
        let printed = format!("{}{}", finished.stdout.text, finished.stderr.text);
        let mut output = tail_chars(&printed, limits.max_reported_output_chars);
        if finished.timed_out {
            output = format!(
                "timed out after {} s; issues counted so far\n{output}",
                limits.timeout.as_secs()
            );
        }
        results.push(LintResult {
            linter: linter.name.clone(),
            available: true,
            issues: count_issues(&finished.stdout.text),
            output,
            exit_code: finished.exit_code,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_lines_are_counted_in_each_linters_format() {
        let shellcheck = "./a.sh:3:6: warning: x is referenced but not assigned. [SC2154]\n./a.sh:4:1: note: Double quote [SC2086]\n";
        let ruff = "./m.py:1:8: F401 [*] `os` imported but unused\nFound 1 error.\n[*] 1 fixable with the `--fix` option.\n";
        let eslint = "./x.js:1:1: Parsing error [Error]\n\n1 problem\n";
        assert_eq!(count_issues(shellcheck), 2);
        assert_eq!(count_issues(ruff), 1);
        assert_eq!(count_issues(eslint), 1);
        assert_eq!(count_issues(""), 0);
    }

    /// The attack: a scanned repository declares a flake8 plugin of its own, which
    /// flake8 imports (runs) from its configuration. With `--isolated` it never loads.
    #[tokio::test]
    async fn a_repositorys_flake8_plugin_does_not_run() {
        let repository = crate::jail::testing::open_dir(0o755);
        // Outside the repository (read-only in the jail) and writable by the jailed
        // user, so a plugin that ran would leave the marker.
        let marker_dir = crate::jail::testing::open_dir(0o777);
        let marker = marker_dir.path().join("plugin-ran");
        let plugin = format!(
            "import pathlib\npathlib.Path({:?}).write_text('pwned')\nclass Plugin:\n    name = 'x'\n    version = '1'\n    def __init__(self, tree): pass\n    def run(self): return iter(())\n",
            marker.display().to_string()
        );
        std::fs::write(repository.path().join("evil_plugin.py"), plugin).unwrap();
        std::fs::write(
            repository.path().join("setup.cfg"),
            "[flake8:local-plugins]\nextension =\n    X = evil_plugin:Plugin\npaths = .\n",
        )
        .unwrap();
        std::fs::write(repository.path().join("app.py"), "import os\n").unwrap();
        let flake8: Vec<Linter> = Linter::defaults()
            .into_iter()
            .filter(|linter| linter.name == "flake8")
            .collect();
        let limits = LintLimits {
            timeout: Duration::from_secs(60),
            max_output_bytes: 65_536,
            max_reported_output_chars: 4_000,
            max_files: 10,
        };
        let files = [(Lang::Python, "app.py".to_string())];
        let cell = crate::jail::testing::cell(repository.path(), &[marker_dir.path()]).await;
        let results = run_linters(&cell, &flake8, &files, &limits, &CancellationToken::new())
            .await
            .unwrap();
        assert!(
            results[0].available,
            "flake8 is missing: run scripts/setup (pip install flake8)"
        );
        assert_eq!(results[0].issues, 1, "flake8 ran: {}", results[0].output);
        assert!(!marker.exists(), "the repository's plugin ran on the node");
    }
}
