//! Agent kinds from settings: plugins become `PluginAgent`s, MCP servers the servers
//! of the `mcp_tool` kind, `agents.model` the limits of the model-backed kinds; their
//! settings are turned
//! into the agents crate's types here, since `troupe-config` and `troupe-agents` know
//! nothing of each other.

use troupe_agents::{
    AskPolicy, CrewConfig, Field, FieldType, InputSchema, McpServerConfig, PluginConfig,
    ProcessConfig,
};
use troupe_config::{InputType, McpServerSettings, ModelAgentSettings, PluginSettings};

pub(crate) fn crew_config(model: &ModelAgentSettings) -> CrewConfig {
    CrewConfig {
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

pub(crate) fn mcp_server_config(server: &McpServerSettings) -> McpServerConfig {
    McpServerConfig {
        name: server.name.clone(),
        process: ProcessConfig {
            command: server.command.clone(),
            env_allow_list: server.env_allow_list.clone(),
            timeout_secs: server.timeout_secs,
            max_output_bytes: usize::try_from(server.max_output_bytes).unwrap_or(usize::MAX),
            max_restarts: server.max_restarts,
            restart_period_secs: server.restart_period_secs,
        },
    }
}

pub(crate) fn plugin_config(plugin: &PluginSettings) -> PluginConfig {
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
    PluginConfig {
        kind: plugin.kind.clone(),
        description: plugin.description.clone(),
        schema: InputSchema {
            fields,
            open: false,
        },
        process: ProcessConfig {
            command: plugin.command.clone(),
            env_allow_list: plugin.env_allow_list.clone(),
            timeout_secs: plugin.timeout_secs,
            max_output_bytes: usize::try_from(plugin.max_output_bytes).unwrap_or(usize::MAX),
            max_restarts: plugin.max_restarts,
            restart_period_secs: plugin.restart_period_secs,
        },
    }
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
