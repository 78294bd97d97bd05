//! `test_runner`: runs a repository's tests in a throw-away copy of it, with no network
//! and bounded time, memory, processes and output, and reports counts, failures and
//! coverage where the toolchain measures it cheaply.
//!
//! A failing suite is a successful attempt with `all_passed: false`: workflows branch on
//! it, and retrying would fail the same way. So is a suite that runs past its
//! `timeout_secs` (`timed_out: true`): a hung suite is a result about the code, not a
//! crash of the agent. Only bad input, a missing toolchain, or an environment that cannot
//! isolate the command are errors.
//!
//! The copy leaves out `.git`, `target`, `__pycache__` and `.pytest_cache` (history and
//! build outputs the tests rebuild); it keeps `node_modules`, since without network the
//! dependencies cannot be installed again. Cargo builds into `target/` inside the copy.

mod command;
mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::{AgentError, invalid};
use crate::jail::copy::{CopyLimits, copy_tree};
use crate::jail::{Cell, Entered, Jail, Limits, Network};
use crate::process::{Bounds, Finished, environment, run_bounded_with_lines};
use crate::workspace::Workspace;

use command::{ProjectType, default_plan};
use parse::{FailureLimits, Results};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRunnerInputs {
    /// Path of the repository to test.
    repository: PathBuf,
    /// Test command (run with `sh -c`), instead of the detected one.
    command: Option<String>,
    /// cargo, pytest, npm or go; detected from the files at the root by default.
    project_type: Option<String>,
    /// Time the suite may run; past it the suite is killed and reported timed_out.
    timeout_secs: Option<u64>,
    /// Measure coverage where the toolchain can (default true).
    coverage: Option<bool>,
    /// Extra environment variables.
    env: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
pub struct TestRunnerConfig {
    /// Variables passed through from the node's environment (toolchains need PATH and
    /// HOME to find themselves); everything else is dropped.
    pub env_allow_list: Vec<String>,
    pub default_timeout_secs: u64,
    /// Tail of stdout and of stderr kept in the outputs.
    pub max_output_bytes: usize,
    pub max_failures: usize,
    pub max_failure_output_bytes: usize,
    pub max_memory_bytes: u64,
    pub max_processes: u64,
    pub max_copy_bytes: u64,
    pub max_copy_files: u64,
    /// Directory names left out of the copy wherever they appear.
    pub skip_dirs: Vec<String>,
    /// Where the suite runs: its copy writable, the network off.
    pub jail: Jail,
    /// Where `repository` may be.
    pub workspace: Workspace,
}

impl Default for TestRunnerConfig {
    fn default() -> Self {
        Self {
            env_allow_list: [
                "PATH",
                "HOME",
                "USER",
                "LANG",
                "LC_ALL",
                "TERM",
                "CARGO_HOME",
                "RUSTUP_HOME",
                "RUSTUP_TOOLCHAIN",
                "GOROOT",
                "GOPATH",
                "GOMODCACHE",
            ]
            .map(String::from)
            .to_vec(),
            default_timeout_secs: 600,
            max_output_bytes: 64 * 1024,
            max_failures: 50,
            max_failure_output_bytes: 8 * 1024,
            max_memory_bytes: 4 << 30,
            max_processes: 512,
            max_copy_bytes: 1 << 30,
            max_copy_files: 200_000,
            skip_dirs: [".git", "target", "__pycache__", ".pytest_cache"]
                .map(String::from)
                .to_vec(),
            jail: Jail::default(),
            // The node always gives its roots; a default config is for tests.
            workspace: Workspace::anywhere(),
        }
    }
}

pub struct TestRunnerAgent {
    config: TestRunnerConfig,
}

impl TestRunnerAgent {
    pub fn new(config: TestRunnerConfig) -> Self {
        Self { config }
    }
}

/// What the task asked for, checked.
struct Request {
    repository: PathBuf,
    project_type: ProjectType,
    command: Option<String>,
    timeout_secs: u64,
    coverage: bool,
}

impl TestRunnerAgent {
    fn request(
        &self,
        inputs: &TestRunnerInputs,
        context: &AgentContext,
    ) -> Result<Request, AgentError> {
        let repository = self
            .config
            .workspace
            .place("repository", &inputs.repository)?;
        if !repository.is_dir() {
            return Err(invalid(
                "repository",
                format!(
                    "`{}` is not a directory; give the path of a checked-out repository",
                    inputs.repository.display()
                ),
            ));
        }
        let command = inputs
            .command
            .as_deref()
            .map(str::trim)
            .filter(|command| !command.is_empty());
        let project_type = match inputs.project_type.as_deref() {
            Some(name) => ProjectType::parse(name).ok_or_else(|| {
                invalid(
                    "project_type",
                    format!("`{name}` is not one of {}", ProjectType::NAMES),
                )
            })?,
            None => match crate::project::detect(&repository) {
                Some(toolchain) => ProjectType::from_toolchain(toolchain),
                None if command.is_some() => ProjectType::Custom,
                None => {
                    return Err(invalid(
                        "repository",
                        format!(
                            "`{}` has no Cargo.toml, go.mod, package.json or Python project \
                             file at its root; give `project_type` ({}) or a `command`",
                            repository.display(),
                            ProjectType::NAMES
                        ),
                    ));
                }
            },
        };
        let requested = match inputs.timeout_secs {
            Some(0) => return Err(invalid("timeout_secs", "must be at least 1")),
            Some(secs) => secs,
            None => self.config.default_timeout_secs,
        };
        // The runtime enforces the task's own timeout too; never plan past it.
        let timeout_secs = context
            .timeout_secs
            .map_or(requested, |task| requested.min(task));
        Ok(Request {
            repository,
            project_type,
            command: command.map(String::from),
            timeout_secs,
            coverage: inputs.coverage.unwrap_or(true),
        })
    }
}

#[async_trait::async_trait]
impl TypedAgent for TestRunnerAgent {
    const KIND: &'static str = "test_runner";
    const JAILED: bool = true;
    const DESCRIPTION: &'static str = "Runs a repository's tests (cargo, pytest, npm, go or a command) in a throw-away \
         copy with no network; outputs all_passed, counts, failures and coverage.";
    type Inputs = TestRunnerInputs;

    /// The detected suites (cargo, pytest, npm, go) run without a grant; a command of
    /// the workflow's own is a shell command like any other.
    fn needs_grant(inputs: &BTreeMap<String, serde_json::Value>) -> Option<&'static str> {
        inputs
            .contains_key("command")
            .then_some("runs a command the workflow gives")
    }

    async fn attempt(
        &self,
        inputs: TestRunnerInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let request = self.request(&inputs, &context)?;
        let mut env = environment(&self.config.env_allow_list, inputs.env.as_ref());

        let (scratch, copy, reports) = scratch_directories()?;
        context.report("copying the repository", Some(0.0));
        self.copy_repository(&request.repository, &copy, &context)
            .await?;

        let (script, coverage_note) = script(&request, &reports).await?;
        offline_in_scratch(&mut env, scratch.path(), &copy);
        env.insert(
            "TROUPE_IDEMPOTENCY_KEY".into(),
            context.idempotency_key.clone(),
        );

        let cell = self.cell(scratch.path(), &copy).await?;
        let isolation = cell.isolation();
        context.report(format!("running `{script}`"), Some(0.1));
        let limits = FailureLimits {
            max_failures: self.config.max_failures,
            max_failure_output_bytes: self.config.max_failure_output_bytes,
        };
        let command = cell.command(["sh", "-c", script.as_str()], &env)?;
        let started = Instant::now();
        // Every line of stdout goes to the parser, so the counts are right however long
        // the output; only its tail is kept.
        let bounds = Bounds::tail(
            Duration::from_secs(request.timeout_secs),
            self.config.max_output_bytes,
        );
        let parser = request.project_type.parser(limits);
        let outcome = run_bounded_with_lines(command, &context.cancel, &bounds, parser).await;
        cell.finish().await;
        let (finished, parser) = outcome?;

        let mut results = match parser {
            Some(parser) => parser.finish(&reports),
            None => Results::default(),
        };
        let exit_code = finished.exit_code;
        if results.failures.is_empty() && !finished.timed_out && exit_code != Some(0) {
            // Nothing parsed as a failing test (a build error, a crash): say what exited.
            limits.push(
                &mut results.failures,
                exited(&script, &finished),
                finished.output(),
            );
        }
        let all_passed = !finished.timed_out && exit_code == Some(0) && results.failed == 0;
        let total = results.passed + results.failed + results.skipped;
        let coverage_percentage = results.coverage_percentage;
        let coverage_note = match (coverage_percentage, coverage_note) {
            (None, None) if request.coverage => Some("the test output reported no coverage".into()),
            (_, note) => note,
        };
        let outputs = json!({
            "project_type": request.project_type.name(),
            "command": script,
            "all_passed": all_passed,
            "passed": results.passed,
            "failed": results.failed,
            "skipped": results.skipped,
            "total": total,
            "failures": results.failures.iter().map(|failure| failure.to_json()).collect::<Vec<_>>(),
            "coverage_percentage": coverage_percentage,
            "coverage_note": coverage_note,
            "exit_code": exit_code,
            "timed_out": finished.timed_out,
            "duration_ms": started.elapsed().as_millis() as u64,
            "stdout": finished.stdout.text,
            "stderr": finished.stderr.text,
            "stdout_truncated": finished.stdout.truncated,
            "stderr_truncated": finished.stderr.truncated,
            "isolation": isolation,
        });
        let Value::Object(outputs) = outputs else {
            unreachable!("json! of an object literal is an object")
        };
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.0,
        })
    }
}

/// A scratch directory holding `repository` (the copy) and `reports` (coverage and
/// result files); all of it goes when the attempt ends.
fn scratch_directories() -> Result<(tempfile::TempDir, PathBuf, PathBuf), AgentError> {
    let scratch = tempfile::Builder::new()
        .prefix("troupe-test-run-")
        .tempdir()
        .map_err(|error| AgentError::Io(format!("creating a scratch directory: {error}")))?;
    let copy = scratch.path().join("repository");
    let reports = scratch.path().join("reports");
    for dir in [&copy, &reports] {
        std::fs::create_dir(dir)
            .map_err(|error| AgentError::Io(format!("creating {}: {error}", dir.display())))?;
    }
    Ok((scratch, copy, reports))
}

/// The script to run and why coverage will not be measured, if it will not. A given
/// command is run as is; only the default one needs its toolchain checked.
async fn script(request: &Request, reports: &Path) -> Result<(String, Option<String>), AgentError> {
    Ok(match &request.command {
        Some(command) => (
            command.clone(),
            request
                .coverage
                .then(|| "coverage is not measured for a custom command".to_string()),
        ),
        None => {
            let plan = default_plan(request.project_type, reports, request.coverage).await?;
            (plan.script, plan.coverage_note)
        }
    })
}

/// How `script` ended, for a failure no test output explains.
fn exited(script: &str, finished: &Finished) -> String {
    let status = finished
        .exit_code
        .map_or("a signal".to_string(), |code| format!("status {code}"));
    format!("`{script}` exited with {status}")
}

/// Toolchains offline, and their builds, caches and logs in the scratch directory, never
/// in shared ones.
fn offline_in_scratch(env: &mut BTreeMap<String, String>, scratch: &Path, copy: &Path) {
    let scratch_path = |name: &str| scratch.join(name).to_string_lossy().into_owned();
    env.entry("CARGO_TARGET_DIR".into())
        .or_insert(copy.join("target").to_string_lossy().into_owned());
    env.insert("CARGO_NET_OFFLINE".into(), "true".into());
    env.insert("GOPROXY".into(), "off".into());
    env.entry("GOCACHE".into())
        .or_insert(scratch_path("go-cache"));
    env.entry("npm_config_cache".into())
        .or_insert(scratch_path("npm-cache"));
    env.insert("npm_config_update_notifier".into(), "false".into());
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.insert("TMPDIR".into(), scratch.to_string_lossy().into_owned());
}

impl TestRunnerAgent {
    /// The jail cell the suite runs in: the scratch directory (the copy, its reports and
    /// caches) given to the jail's user and writable, the network off.
    async fn cell(&self, scratch: &Path, copy: &Path) -> Result<Entered, AgentError> {
        let jail = &self.config.jail;
        jail.hand_over(scratch).await?;
        jail.enter(Cell {
            readable: Vec::new(),
            writable: vec![scratch.to_path_buf()],
            cwd: copy.to_path_buf(),
            network: Network::Off,
            limits: Some(Limits {
                max_memory_bytes: self.config.max_memory_bytes,
                max_processes: self.config.max_processes,
            }),
        })
        .await
    }

    /// Copies on a blocking thread; a cancel stops the walk at the next entry.
    async fn copy_repository(
        &self,
        from: &Path,
        to: &Path,
        context: &AgentContext,
    ) -> Result<(), AgentError> {
        let limits = CopyLimits {
            max_copy_bytes: self.config.max_copy_bytes,
            max_copy_files: self.config.max_copy_files,
            skip_dirs: self.config.skip_dirs.clone(),
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let (from, to, flag) = (from.to_path_buf(), to.to_path_buf(), cancelled.clone());
        let copying = tokio::task::spawn_blocking(move || copy_tree(&from, &to, &limits, &flag));
        tokio::select! {
            copied = copying => {
                copied.map_err(|error| AgentError::Io(format!("copying the repository: {error}")))??;
                Ok(())
            }
            () = context.cancel.cancelled() => {
                cancelled.store(true, Ordering::Relaxed);
                Err(AgentError::Cancelled)
            }
        }
    }
}

#[cfg(test)]
mod tests;
