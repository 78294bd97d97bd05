//! `shell`: runs a command with `sh -c` in the jail, with a timeout, an environment
//! reduced to an allow-list, and stdout/stderr captured up to a size limit. The command
//! sees its working directory (writable, as far as the jail's user may write there) and
//! the toolchain, nothing else of the host, and has no network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::{AgentError, invalid};
use crate::jail::{Cell, Jail, Limits, Network};
use crate::process::{Bounds, environment};
use crate::workspace::Workspace;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellInputs {
    /// Shell command, run with `sh -c`; each `{{ }}` value in it is quoted for where it
    /// stands.
    command: Option<String>,
    /// Instead of `command`: a program and its arguments, run without a shell; each
    /// `{{ }}` value is part of one argument.
    args: Option<Vec<String>>,
    /// Directory to run in, the only one of the host the command sees (writable); an
    /// empty scratch directory, removed afterwards, by default.
    working_dir: Option<PathBuf>,
    /// Extra environment variables.
    env: Option<BTreeMap<String, String>>,
    /// Fail the attempt on a non-zero exit (default true).
    fail_on_nonzero: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ShellAgentConfig {
    pub env_allow_list: Vec<String>,
    pub max_output_bytes: usize,
    pub default_timeout_secs: u64,
    pub jail: Jail,
    /// Where `working_dir` may be.
    pub workspace: Workspace,
}

pub struct ShellAgent {
    config: ShellAgentConfig,
}

impl ShellAgent {
    pub fn new(config: ShellAgentConfig) -> Self {
        Self { config }
    }
}

#[async_trait::async_trait]
impl TypedAgent for ShellAgent {
    const KIND: &'static str = "shell";
    const JAILED: bool = true;
    const DESCRIPTION: &'static str = "Runs a shell command; outputs exit_code, stdout and stderr.";
    type Inputs = ShellInputs;

    fn needs_grant(_: &BTreeMap<String, serde_json::Value>) -> Option<&'static str> {
        Some("runs shell commands")
    }

    async fn attempt(
        &self,
        inputs: ShellInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let timeout_secs = context
            .timeout_secs
            .unwrap_or(self.config.default_timeout_secs);
        let mut env = environment(&self.config.env_allow_list, inputs.env.as_ref());
        env.insert(
            "TROUPE_IDEMPOTENCY_KEY".into(),
            context.idempotency_key.clone(),
        );
        let scratch;
        let dir = match &inputs.working_dir {
            Some(given) => {
                let dir = self.config.workspace.place("working_dir", given)?;
                if !dir.is_dir() {
                    return Err(invalid(
                        "working_dir",
                        format!("`{}` is not a directory", given.display()),
                    ));
                }
                dir
            }
            None => {
                scratch = tempfile::Builder::new()
                    .prefix("troupe-shell-")
                    .tempdir()
                    .map_err(|error| {
                        AgentError::Io(format!("creating a scratch directory: {error}"))
                    })?;
                self.config.jail.hand_over(scratch.path()).await?;
                scratch.path().to_path_buf()
            }
        };
        let cell = self
            .config
            .jail
            .enter(Cell {
                readable: Vec::new(),
                writable: vec![dir.clone()],
                cwd: dir,
                network: Network::Off,
                limits: Some(Limits::COMMAND),
            })
            .await?;
        let bounds = Bounds::head(
            Duration::from_secs(timeout_secs),
            self.config.max_output_bytes,
        );
        let ran = cell
            .run_once(argv(&inputs)?, &env, &bounds, &context.cancel)
            .await?;
        if inputs.fail_on_nonzero.unwrap_or(true) {
            ran.finished.failure_unless_success("command")?;
        }
        Ok(AgentOutput {
            outputs: ran.report(),
            cost_usd: 0.0,
        })
    }
}

/// What runs: `sh -c command`, or `args` as they are.
fn argv(inputs: &ShellInputs) -> Result<Vec<&str>, AgentError> {
    match (&inputs.command, &inputs.args) {
        (Some(command), None) => Ok(vec!["sh", "-c", command.as_str()]),
        (None, Some(args)) if !args.is_empty() => Ok(args.iter().map(String::as_str).collect()),
        (None, Some(_)) => Err(invalid("args", "is empty; name the program to run first")),
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            "command",
            "give either `command` (run with sh -c) or `args` (a program and its arguments, \
             run without a shell)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::agent::Agent;

    fn agent(max_output_bytes: usize) -> ShellAgent {
        ShellAgent::new(ShellAgentConfig {
            env_allow_list: vec!["PATH".into()],
            max_output_bytes,
            default_timeout_secs: 30,
            jail: Jail::default(),
            workspace: Workspace::anywhere(),
        })
    }

    fn inputs(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("inputs must be a map"),
        }
    }

    #[tokio::test]
    async fn captures_exit_code_and_output() {
        let output = agent(1024)
            .run(
                inputs(json!({"command": "echo out; echo err >&2; exit 0"})),
                AgentContext::detached("r:t:1"),
            )
            .await
            .unwrap();
        assert_eq!(output.outputs["exit_code"], json!(0));
        assert_eq!(output.outputs["stdout"], json!("out\n"));
        assert_eq!(output.outputs["stderr"], json!("err\n"));
    }

    #[tokio::test]
    async fn nonzero_exit_fails_with_stderr_unless_told_not_to() {
        let error = agent(1024)
            .run(
                inputs(json!({"command": "echo boom >&2; exit 3"})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error,
            AgentError::Failed("command exited with 3: boom".into())
        );
        let output = agent(1024)
            .run(
                inputs(json!({"command": "exit 3", "fail_on_nonzero": false})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap();
        assert_eq!(output.outputs["exit_code"], json!(3));
    }

    #[tokio::test]
    async fn output_is_cut_at_the_limit() {
        let output = agent(10)
            .run(
                inputs(json!({"command": "yes | head -c 100000"})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap();
        assert_eq!(output.outputs["stdout"].as_str().unwrap().len(), 10);
        assert_eq!(output.outputs["stdout_truncated"], json!(true));
    }

    #[tokio::test]
    async fn environment_is_reduced_to_the_allow_list() {
        // SAFETY of the test: set_var is unsafe in edition 2024 because of other threads
        // reading the environment; this variable is read only by this test's child.
        unsafe { std::env::set_var("TROUPE_TEST_SECRET", "s3cret") };
        let output = agent(4096)
            .run(
                inputs(json!({"command": "env", "env": {"EXTRA": "yes"}})),
                AgentContext::detached("run-1:task:1"),
            )
            .await
            .unwrap();
        let env = output.outputs["stdout"].as_str().unwrap();
        assert!(!env.contains("s3cret"), "{env}");
        assert!(env.contains("EXTRA=yes"), "{env}");
        assert!(env.contains("TROUPE_IDEMPOTENCY_KEY=run-1:task:1"), "{env}");
        assert!(env.contains("PATH="), "{env}");
    }

    #[tokio::test]
    async fn the_command_writes_in_its_working_dir_and_sees_nothing_else() {
        let dir = crate::jail::testing::open_dir(0o777);
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("secret"), "s3cret").unwrap();
        let command = format!(
            "echo made > made; cat {0}/secret; echo planted > {0}/planted",
            elsewhere.path().display()
        );
        let inputs = inputs(json!({
            "command": command,
            "working_dir": dir.path(),
            "fail_on_nonzero": false,
        }));
        let output = agent(4096)
            .run(inputs, AgentContext::detached("k"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made")).unwrap(),
            "made\n"
        );
        assert!(
            !output.outputs["stdout"]
                .as_str()
                .unwrap()
                .contains("s3cret")
        );
        assert!(!elsewhere.path().join("planted").exists());
        let stderr = output.outputs["stderr"].as_str().unwrap();
        assert!(stderr.contains("No such file or directory"), "{stderr}");
        assert_eq!(output.outputs["isolation"]["network"], json!("off"));
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = crate::jail::testing::open_dir(0o777);
        let marker = dir.path().join("survived");
        let mut context = AgentContext::detached("k");
        context.timeout_secs = Some(1);
        let command = "(sleep 2; touch survived) & sleep 30";
        let error = agent(1024)
            .run(
                inputs(json!({"command": command, "working_dir": dir.path()})),
                context,
            )
            .await
            .unwrap_err();
        assert_eq!(error, AgentError::TimedOut { secs: 1 });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "a background child outlived the timeout");
    }

    #[tokio::test]
    async fn cancellation_stops_the_command() {
        let context = AgentContext::detached("k");
        let cancel = context.cancel.clone();
        let started = std::time::Instant::now();
        let run = tokio::spawn(async move {
            agent(1024)
                .run(inputs(json!({"command": "sleep 30"})), context)
                .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        assert_eq!(run.await.unwrap().unwrap_err(), AgentError::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// `args` runs a program without a shell: what would be shell syntax is one argument.
    #[tokio::test]
    async fn args_run_a_program_without_a_shell() {
        let output = agent(1024)
            .run(
                inputs(json!({"args": ["printf", "%s|", "a b", "; id", "$(id)"]})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap();
        assert_eq!(output.outputs["stdout"], json!("a b|; id|$(id)|"));
        for (given, field) in [
            (json!({"command": "true", "args": ["true"]}), "command"),
            (json!({}), "command"),
            (json!({"args": []}), "args"),
        ] {
            let error = agent(1024)
                .run(inputs(given), AgentContext::detached("k"))
                .await
                .unwrap_err();
            assert!(
                error.to_string().starts_with(&format!("input `{field}`: ")),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn bad_inputs_are_refused_before_anything_runs() {
        let error = agent(1024)
            .run(
                inputs(json!({"command": "true", "working_dir": "/no/such/dir"})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input `working_dir`: `/no/such/dir` is not a directory"
        );
        let error = agent(1024)
            .run(
                inputs(json!({"command": "true", "env": {"A": 1}})),
                AgentContext::detached("k"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "input `env.A`: invalid type: integer `1`, expected a string"
        );
    }
}
