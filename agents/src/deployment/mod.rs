//! `deployment_agent`: renders a deployment plan for a repository (Dockerfile, GitHub
//! Actions and GitLab CI pipelines, Kubernetes manifests, PLAN.md) into an output
//! directory, and runs a configured deploy command only when one is given and
//! `dry_run` is false. Dry run is the default: rendering changes nothing but the output
//! directory.
//!
//! The output directory defaults to `<repository>/deploy`. A relative `output_dir` is
//! taken from the repository and must stay inside it; writing elsewhere takes an
//! absolute path, given explicitly. Files are written only below it.
//!
//! The repository is read only to tell its toolchain (marker files) and, for Rust, the
//! binary name; everything else comes from the task's inputs, checked. Text in the
//! repository (a README telling an agent to run something) cannot change what is
//! written or run.
//!
//! The deploy command runs in the jail, in the repository, which it sees read-only with
//! the output directory, and with the network (a deploy reaches a registry or a cluster).
//! Files it needs from the host beyond the toolchain (a kubeconfig) must lie in
//! `agents.jail.toolchain_dirs`.

mod inputs;

pub use inputs::DeploymentInputs;
mod templates;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::AgentError;
use crate::jail::{Cell, Jail, Limits, Network};
use crate::process::{Bounds, environment};
use crate::workspace::Workspace;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// Variables passed from the node's environment to the deploy command.
    pub env_allow_list: Vec<String>,
    pub default_timeout_secs: u64,
    pub max_output_bytes: usize,
    pub max_replicas: u32,
    pub jail: Jail,
    /// Where `repository` and `output_dir` may be.
    pub workspace: Workspace,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            env_allow_list: ["PATH", "HOME", "USER", "LANG", "KUBECONFIG", "DOCKER_HOST"]
                .map(String::from)
                .to_vec(),
            default_timeout_secs: 900,
            max_output_bytes: 64 * 1024,
            max_replicas: 100,
            jail: Jail::default(),
            // The node always gives its roots; a default config is for tests.
            workspace: Workspace::anywhere(),
        }
    }
}

pub struct DeploymentAgent {
    config: DeploymentConfig,
}

impl DeploymentAgent {
    pub fn new(config: DeploymentConfig) -> Self {
        Self { config }
    }
}

/// The files rendered, relative to the output directory, in the order written.
const FILES: [&str; 6] = [
    "Dockerfile",
    ".github/workflows/deploy.yml",
    ".gitlab-ci.yml",
    "k8s/deployment.yaml",
    "k8s/service.yaml",
    "PLAN.md",
];

#[async_trait::async_trait]
impl TypedAgent for DeploymentAgent {
    const KIND: &'static str = "deployment_agent";
    const JAILED: bool = true;
    const DESCRIPTION: &'static str = "Renders a Dockerfile, CI pipelines and Kubernetes manifests for a repository; runs \
         a deploy command only when given one and dry_run is false.";
    type Inputs = DeploymentInputs;

    /// A dry run (the default) only renders files; a deploy command that may run (any
    /// `dry_run` but a literal `true`, a template included) needs the grant.
    fn needs_grant(inputs: &std::collections::BTreeMap<String, Value>) -> Option<&'static str> {
        let dry_run = inputs
            .get("dry_run")
            .is_none_or(|dry_run| *dry_run == Value::Bool(true));
        (inputs.contains_key("command") && !dry_run).then_some("runs a live deploy command")
    }

    async fn attempt(
        &self,
        inputs: DeploymentInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let request = inputs::Request::from_inputs(
            &inputs,
            self.config.max_replicas,
            &self.config.workspace,
        )?;
        let values = &request.values;
        let deploy_command = inputs
            .deploy_command
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let dry_run = inputs.dry_run.unwrap_or(true);
        let will_deploy = deploy_command.filter(|_| !dry_run);
        let deploy_note = match (deploy_command, dry_run) {
            (None, _) => "none given; nothing is deployed.".to_string(),
            (Some(command), true) => format!("`{command}` (not run: dry run)."),
            (Some(command), false) => format!("`{command}`, run once after rendering."),
        };

        let rendered = [
            templates::dockerfile(values),
            templates::github_workflow(values),
            templates::gitlab_ci(values),
            templates::k8s_deployment(values),
            templates::k8s_service(values),
            templates::plan(values, &FILES, &deploy_note),
        ];
        let plan = rendered[5].clone();
        let output_dir = request.output_dir.clone();
        let files: Vec<(&'static str, String)> = FILES.iter().copied().zip(rendered).collect();
        tokio::task::spawn_blocking(move || write_files(&output_dir, &files))
            .await
            .map_err(|error| AgentError::Io(format!("writing the plan: {error}")))??;
        context.report("deployment plan rendered", Some(0.5));

        let mut outputs = Map::new();
        outputs.insert(
            "project_type".into(),
            json!(inputs::toolchain_name(values.toolchain)),
        );
        outputs.insert(
            "output_dir".into(),
            json!(request.output_dir.display().to_string()),
        );
        outputs.insert("files".into(), json!(FILES));
        outputs.insert("plan".into(), Value::String(plan));
        outputs.insert("dry_run".into(), Value::Bool(dry_run));
        outputs.insert("deployed".into(), Value::Bool(false));
        if let Some(command) = will_deploy {
            let deploy_output = self.deploy(command, &request, &context).await?;
            outputs.insert("deployed".into(), Value::Bool(true));
            outputs.insert("deploy_output".into(), deploy_output);
        }
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.0,
        })
    }
}

impl DeploymentAgent {
    /// Runs the deploy command in the repository. A non-zero exit fails the attempt (a
    /// deploy may fail for passing reasons, so it is retryable); the idempotency key lets
    /// the command make a retry a no-op.
    async fn deploy(
        &self,
        script: &str,
        request: &inputs::Request,
        context: &AgentContext,
    ) -> Result<Value, AgentError> {
        let timeout_secs = context
            .timeout_secs
            .unwrap_or(self.config.default_timeout_secs);
        let mut env = environment(&self.config.env_allow_list, None);
        for (name, value) in [
            ("TROUPE_IDEMPOTENCY_KEY", context.idempotency_key.clone()),
            (
                "TROUPE_DEPLOY_DIR",
                request.output_dir.display().to_string(),
            ),
            ("TROUPE_ENVIRONMENT", request.values.environment.clone()),
            ("TROUPE_IMAGE", request.values.image.clone()),
        ] {
            env.insert(name.into(), value);
        }
        let repository = std::path::absolute(&request.repository)
            .map_err(|error| AgentError::Io(format!("repository: {error}")))?;
        let output_dir = std::path::absolute(&request.output_dir)
            .map_err(|error| AgentError::Io(format!("output_dir: {error}")))?;
        let cell = self
            .config
            .jail
            .enter(Cell {
                readable: vec![repository.clone(), output_dir],
                writable: Vec::new(),
                cwd: repository,
                network: Network::On,
                limits: Some(Limits::COMMAND),
            })
            .await?;
        context.report(format!("running `{script}`"), Some(0.6));
        let bounds = Bounds::head(
            Duration::from_secs(timeout_secs),
            self.config.max_output_bytes,
        );
        let ran = cell
            .run_once(["sh", "-c", script], &env, &bounds, &context.cancel)
            .await?;
        // A deploy may fail for passing reasons, so the failure is retryable.
        ran.finished.failure_unless_success("deploy command")?;
        Ok(Value::Object(ran.report()))
    }
}

/// Writes each file below `output_dir`, refusing to write through a symlink (which could
/// point anywhere).
fn write_files(output_dir: &Path, files: &[(&'static str, String)]) -> Result<(), AgentError> {
    let io = |path: &Path, error: std::io::Error| {
        AgentError::Io(format!("writing {}: {error}", path.display()))
    };
    std::fs::create_dir_all(output_dir).map_err(|error| io(output_dir, error))?;
    for (relative, text) in files {
        let path: PathBuf = output_dir.join(relative);
        let mut checked = output_dir.to_path_buf();
        for component in Path::new(relative).components() {
            checked.push(component);
            if std::fs::symlink_metadata(&checked).is_ok_and(|meta| meta.file_type().is_symlink()) {
                return Err(AgentError::InvalidInput {
                    field: "output_dir".into(),
                    reason: format!(
                        "{} is a symlink; refusing to write through it",
                        checked.display()
                    ),
                });
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| io(parent, error))?;
        }
        std::fs::write(&path, text).map_err(|error| io(&path, error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
