//! Agent kinds from settings: plugins become `PluginAgent`s, MCP servers the servers
//! of the `mcp_tool` kind, `agents.model` the limits of the model-backed kinds; their
//! settings are turned
//! into the agents crate's types here, since `troupe-config` and `troupe-agents` know
//! nothing of each other.

use std::sync::Arc;

use std::path::PathBuf;

use troupe_agents::{
    Egress, HttpAgentConfig, Jail, JailConfig, Registry, ShellAgentConfig, Workspace,
};
use troupe_config::Settings;
use troupe_scanner::ScannerConfig;
use troupe_store::key_file::dir_beside_store;

use crate::NodeError;
use troupe_agents::{
    AskPolicy, CrewConfig, Field, FieldType, InputSchema, McpServerConfig, PluginConfig,
    ProcessAccess, ProcessConfig, TestRunnerConfig,
};
use troupe_config::{
    InputType, McpServerSettings, ModelAgentSettings, PluginSettings, ScannerLimits,
    TestRunnerLimits,
};

/// The built-in agent kinds, configured from settings (`mcp_tool` with the configured MCP
/// servers, present even with none so that no plugin takes its name), and the plugin
/// kinds settings declare. A plugin may not take a built-in kind's name: workflows written for the
/// built-in would silently run something else.
pub fn builtin_registry(settings: &Settings) -> Result<Registry, NodeError> {
    let shell = &settings.agents.shell;
    let jail = Jail::new(jail_config(settings));
    let workspace = workspace(settings);
    let egress =
        Egress::new(&settings.agents.egress.allowed_networks).map_err(NodeError::AgentKinds)?;
    let mut registry = troupe_agents::builtin(
        ShellAgentConfig {
            env_allow_list: shell.env_allow_list.clone(),
            max_output_bytes: usize::try_from(shell.max_output_bytes).unwrap_or(usize::MAX),
            default_timeout_secs: shell.default_timeout_secs,
            jail: jail.clone(),
            workspace: workspace.clone(),
        },
        HttpAgentConfig {
            max_response_bytes: 4 * 1024 * 1024,
            default_timeout_secs: 60,
            egress: egress.clone(),
        },
    );
    let limits = &settings.agents;
    registry
        .register(Arc::new(troupe_agents::SecurityScannerAgent::new(
            scanner_config(&limits.scanner),
            workspace.clone(),
            egress,
        )))
        .register(Arc::new(troupe_agents::TestRunnerAgent::new(
            TestRunnerConfig {
                workspace: workspace.clone(),
                ..test_runner_config(&limits.test_runner, jail.clone())
            },
        )));
    for agent in troupe_agents::crew(crew_config(&limits.model, workspace, jail.clone())) {
        registry.register(agent);
    }
    let mcp_servers = settings
        .agents
        .mcp_servers
        .iter()
        .map(|server| mcp_server_config(server, &jail))
        .collect::<Result<_, _>>()?;
    registry.register(Arc::new(troupe_agents::McpToolAgent::new(mcp_servers)));
    let builtin: Vec<String> = registry
        .kind_names()
        .into_iter()
        .map(String::from)
        .collect();
    for plugin in &settings.agents.plugins {
        if builtin.contains(&plugin.kind) {
            return Err(NodeError::AgentKinds(format!(
                "plugin kind `{}` is the name of a built-in kind; built-in kinds are {}",
                plugin.kind,
                builtin.join(", ")
            )));
        }
        if registry.contains(&plugin.kind) {
            return Err(NodeError::AgentKinds(format!(
                "plugin kind `{}` is declared twice",
                plugin.kind
            )));
        }
        let config = plugin_config(plugin, &jail)?;
        registry.register(Arc::new(troupe_agents::PluginAgent::new(config)));
    }
    Ok(registry)
}

fn size(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The scanner's limits: the settings given, the kind's defaults for the rest.
pub(crate) fn scanner_config(limits: &ScannerLimits) -> ScannerConfig {
    let mut config = ScannerConfig::default();
    if let Some(value) = limits.max_files {
        config.max_files = size(value);
    }
    if let Some(value) = limits.max_file_bytes {
        config.max_file_bytes = value;
    }
    if let Some(value) = limits.max_total_bytes {
        config.max_total_bytes = value;
    }
    if let Some(value) = limits.max_findings {
        config.max_findings = size(value);
    }
    if let Some(value) = limits.threads {
        config.threads = size(value);
    }
    config
}

/// The jail from settings: the toolchain the node's environment shows plus the
/// configured directories, and the node's own secrets hidden wherever a task's
/// directory contains them (the embedded store, the token key, the keyring, the audit
/// key).
pub(crate) fn jail_config(settings: &Settings) -> JailConfig {
    let hidden = node_data_dirs(settings);
    let extra = settings
        .agents
        .jail
        .toolchain_dirs
        .iter()
        .map(PathBuf::from)
        .collect();
    JailConfig {
        user: settings.agents.jail.user,
        group: settings.agents.jail.group,
        ..JailConfig::from_environment(extra, hidden)
    }
}

/// The node's own data, which no task may name and no jail may show: the embedded
/// store, the token key, the keyring, the audit key.
fn node_data_dirs(settings: &Settings) -> Vec<PathBuf> {
    let store = &settings.store.url;
    [
        store.strip_prefix("surrealkv://").map(PathBuf::from),
        dir_beside_store(&settings.auth.dir, store, "auth"),
        dir_beside_store(&settings.secrets.dir, store, "secrets"),
        dir_beside_store(&settings.audit.dir, store, "audit"),
    ]
    .into_iter()
    .flatten()
    .filter_map(|dir| std::path::absolute(dir).ok())
    .collect()
}

/// Where the paths tasks name may lie (`agents.workspace_roots`), the node's data
/// excepted.
fn workspace(settings: &Settings) -> Workspace {
    let roots: Vec<PathBuf> = settings
        .agents
        .workspace_roots
        .iter()
        .map(PathBuf::from)
        .collect();
    Workspace::new(&roots, &node_data_dirs(settings))
}

/// The test runner's limits: the settings given, the kind's defaults for the rest.
pub(crate) fn test_runner_config(limits: &TestRunnerLimits, jail: Jail) -> TestRunnerConfig {
    let mut config = TestRunnerConfig {
        jail,
        ..TestRunnerConfig::default()
    };
    if let Some(value) = &limits.env_allow_list {
        config.env_allow_list = value.clone();
    }
    if let Some(value) = limits.default_timeout_secs {
        config.default_timeout_secs = value;
    }
    if let Some(value) = limits.max_output_bytes {
        config.max_output_bytes = size(value);
    }
    if let Some(value) = limits.max_memory_bytes {
        config.max_memory_bytes = value;
    }
    if let Some(value) = limits.max_processes {
        config.max_processes = value;
    }
    if let Some(value) = limits.max_copy_bytes {
        config.max_copy_bytes = value;
    }
    if let Some(value) = limits.max_copy_files {
        config.max_copy_files = value;
    }
    config
}

pub(crate) fn crew_config(
    model: &ModelAgentSettings,
    workspace: Workspace,
    jail: Jail,
) -> CrewConfig {
    CrewConfig {
        workspace,
        jail,
        policy: AskPolicy {
            max_calls: model.max_calls.max(1),
            ..AskPolicy::default()
        },
        recall_k: usize::try_from(model.recall_k).unwrap_or(usize::MAX),
        min_recall_score: model.min_recall_score,
        max_tokens: usize::try_from(model.max_tokens).unwrap_or(usize::MAX),
        max_file_bytes: model.max_file_bytes,
        max_quoted_chars: usize::try_from(model.max_quoted_chars).unwrap_or(usize::MAX),
    }
}

pub(crate) fn mcp_server_config(
    server: &McpServerSettings,
    jail: &Jail,
) -> Result<McpServerConfig, NodeError> {
    let label = format!("MCP server `{}`", server.name);
    Ok(McpServerConfig {
        name: server.name.clone(),
        process: ProcessConfig {
            command: server.command.clone(),
            access: process_access(
                &label,
                &server.readable_dirs,
                &server.writable_dirs,
                server.network,
            )?,
            jail: jail.clone(),
            env_allow_list: server.env_allow_list.clone(),
            timeout_secs: server.timeout_secs,
            max_output_bytes: size(server.max_output_bytes),
            max_restarts: server.max_restarts,
            restart_period_secs: server.restart_period_secs,
        },
    })
}

pub(crate) fn plugin_config(
    plugin: &PluginSettings,
    jail: &Jail,
) -> Result<PluginConfig, NodeError> {
    let fields = plugin
        .inputs
        .iter()
        .map(|(name, input)| {
            Field::new(
                name.clone(),
                field_type(input.input_type),
                input.required,
                input.description.clone(),
            )
        })
        .collect();
    let label = format!("plugin `{}`", plugin.kind);
    Ok(PluginConfig {
        kind: plugin.kind.clone(),
        description: plugin.description.clone(),
        schema: InputSchema {
            fields,
            open: false,
        },
        process: ProcessConfig {
            command: plugin.command.clone(),
            access: process_access(
                &label,
                &plugin.readable_dirs,
                &plugin.writable_dirs,
                plugin.network,
            )?,
            jail: jail.clone(),
            env_allow_list: plugin.env_allow_list.clone(),
            timeout_secs: plugin.timeout_secs,
            max_output_bytes: size(plugin.max_output_bytes),
            max_restarts: plugin.max_restarts,
            restart_period_secs: plugin.restart_period_secs,
        },
    })
}

/// The directories an external process may use, made absolute from the node's
/// directory: jailed, it starts elsewhere, and a relative path would name nothing.
fn process_access(
    label: &str,
    readable: &[PathBuf],
    writable: &[PathBuf],
    network: bool,
) -> Result<ProcessAccess, NodeError> {
    let absolute = |dirs: &[PathBuf], key: &str| {
        dirs.iter()
            .map(|dir| {
                std::path::absolute(dir)
                    .ok()
                    .filter(|dir| dir.is_dir())
                    .ok_or_else(|| {
                        NodeError::AgentKinds(format!(
                            "{label}: `{key}` entry `{}` is not a directory (relative entries \
                             are from the node's directory)",
                            dir.display()
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(ProcessAccess {
        readable_dirs: absolute(readable, "readable_dirs")?,
        writable_dirs: absolute(writable, "writable_dirs")?,
        network,
    })
}

fn field_type(input_type: InputType) -> FieldType {
    match input_type {
        InputType::String => FieldType::String,
        InputType::Integer => FieldType::Integer,
        InputType::Number => FieldType::Number,
        InputType::Boolean => FieldType::Boolean,
        InputType::List => FieldType::List,
        InputType::Map => FieldType::Map,
        InputType::Any => FieldType::Any,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use troupe_agents::{Agent, AgentContext};

    #[tokio::test]
    async fn limits_in_the_settings_reach_the_agents() {
        let settings = troupe_config::Layers::new()
            .assignment("agents.scanner.max_files=2")
            .unwrap()
            .assignment("agents.test_runner.max_processes=64")
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(
            super::test_runner_config(&settings.agents.test_runner, troupe_agents::Jail::default())
                .max_processes,
            64
        );
        let repo = tempfile::tempdir().unwrap();
        for name in ["a.py", "b.py", "c.py", "d.py"] {
            std::fs::write(repo.path().join(name), "x = 1\n").unwrap();
        }
        let settings = troupe_config::Settings {
            agents: troupe_config::AgentSettings {
                workspace_roots: vec![repo.path().display().to_string()],
                ..settings.agents
            },
            ..settings
        };
        let registry = crate::builtin_registry(&settings).unwrap();
        let scanner = registry.get("security_scanner").unwrap();
        let inputs = json!({"repository": repo.path().display().to_string()});
        let scanned = scanner
            .run(
                inputs.as_object().unwrap().clone(),
                AgentContext::detached("r:t:1"),
            )
            .await
            .unwrap();
        assert_eq!(
            scanned.outputs["truncated"],
            json!(true),
            "{:?}",
            scanned.outputs
        );
        assert!(scanned.outputs["files_scanned"].as_u64().unwrap() <= 2);
    }

    /// The example plugin, declared as `examples/plugins/troupe.toml` declares it, runs
    /// in its jail from the repository root.
    #[tokio::test]
    async fn the_example_plugin_settings_give_a_working_jailed_kind() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let settings = troupe_config::Layers::new()
            .file(root.join("examples/plugins/troupe.toml"))
            .load()
            .unwrap();
        let mut plugin = settings.agents.plugins[0].clone();
        plugin.readable_dirs = vec![root];
        let config = super::plugin_config(&plugin, &troupe_agents::Jail::default()).unwrap();
        let agent = troupe_agents::PluginAgent::new(config);
        let counted = agent
            .run(
                json!({"text": "three small words"})
                    .as_object()
                    .unwrap()
                    .clone(),
                AgentContext::detached("r:t:1"),
            )
            .await
            .unwrap();
        assert_eq!(counted.outputs["words"], json!(3));
    }

    /// `agents.workspace_roots` reaches every kind that takes a path, and the node's key
    /// directory is refused even under a root.
    #[tokio::test]
    async fn paths_outside_the_workspace_roots_are_refused_by_every_kind() {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("data");
        let settings = troupe_config::Layers::new()
            .assignment(&format!(
                "agents.workspace_roots=[{:?}]",
                root.path().display().to_string()
            ))
            .unwrap()
            .assignment(&format!("store.url=\"surrealkv://{}\"", store.display()))
            .unwrap()
            .load()
            .unwrap();
        let registry = crate::builtin_registry(&settings).unwrap();
        let keys = root.path().join("data-auth");
        std::fs::create_dir_all(&keys).unwrap();
        for (kind, field, path) in [
            ("security_scanner", "repository", "/etc".to_string()),
            ("code_analyzer", "repository", "/etc".into()),
            ("test_runner", "repository", "/usr".into()),
            ("deployment_agent", "repository", "/usr".into()),
            ("shell", "working_dir", "/etc".into()),
            ("code_generator", "work_dir", "/tmp/troupe-escape".into()),
            ("security_scanner", "repository", keys.display().to_string()),
        ] {
            let mut inputs = json!({ field: path });
            if kind == "shell" {
                inputs["command"] = json!("true");
            }
            if kind == "code_generator" {
                inputs["specification"] = json!("a function");
                inputs["module"] = json!("a.py");
            }
            let error = registry
                .get(kind)
                .unwrap()
                .run(
                    inputs.as_object().unwrap().clone(),
                    AgentContext::detached("r:t:1"),
                )
                .await
                .unwrap_err();
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("input `{field}`: `{path}` is "))
                    && (text.contains("outside the workspace roots")
                        || text.contains("inside the node's own data")),
                "{kind}: {text}"
            );
        }
        assert!(!std::path::Path::new("/tmp/troupe-escape").exists());
    }

    #[test]
    fn a_plugin_directory_that_does_not_exist_is_refused_by_name() {
        let settings = troupe_config::Layers::new()
            .assignment(r#"agents.plugins=[{kind="counter", command=["true"], readable_dirs=["no/such/dir"]}]"#)
            .unwrap()
            .load()
            .unwrap();
        let error = crate::builtin_registry(&settings).unwrap_err();
        assert_eq!(
            error.to_string(),
            "agent kinds in settings: plugin `counter`: `readable_dirs` entry `no/such/dir` \
             is not a directory (relative entries are from the node's directory)"
        );
    }
}
