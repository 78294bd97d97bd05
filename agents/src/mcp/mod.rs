//! `mcp_tool`: calls a tool of a configured Model Context Protocol server. Each server
//! is a supervised child process (see `stdio_rpc`), started on first use.

mod client;

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::AgentError;
use crate::stdio_rpc::ProcessConfig;
use client::McpServer;

pub use client::MCP_PROTOCOL_VERSION;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpToolInputs {
    /// A server named in agents.mcp_servers.
    server: String,
    /// The tool to call.
    tool: String,
    /// The tool's arguments (default none).
    arguments: Option<Map<String, Value>>,
}

#[derive(Debug, Clone)]
pub struct McpServerConfig {
    pub name: String,
    pub process: ProcessConfig,
}

pub struct McpToolAgent {
    servers: BTreeMap<String, McpServer>,
}

impl McpToolAgent {
    pub fn new(servers: Vec<McpServerConfig>) -> Self {
        let servers = servers
            .into_iter()
            .map(|server| {
                let client = McpServer::new(server.name.clone(), server.process);
                (server.name, client)
            })
            .collect();
        Self { servers }
    }

    /// The tools `server` offers, as it describes them (name, description, inputSchema).
    pub async fn list_tools(
        &self,
        server: &str,
        cancel: &crate::CancellationToken,
    ) -> Result<Vec<Value>, AgentError> {
        let server = self.server(server)?;
        server.list_tools(server.default_timeout(), cancel).await
    }

    fn server(&self, name: &str) -> Result<&McpServer, AgentError> {
        self.servers.get(name).ok_or_else(|| {
            let reason = if self.servers.is_empty() {
                format!("no MCP server `{name}`: none are configured (agents.mcp_servers)")
            } else {
                let known: Vec<&str> = self.servers.keys().map(String::as_str).collect();
                format!(
                    "no MCP server `{name}` is configured; configured: {}",
                    known.join(", ")
                )
            };
            AgentError::InvalidInput {
                field: "server".into(),
                reason,
            }
        })
    }
}

#[async_trait::async_trait]
impl TypedAgent for McpToolAgent {
    const KIND: &'static str = "mcp_tool";
    const JAILED: bool = true;
    const DESCRIPTION: &'static str =
        "Calls a tool of a configured MCP server; outputs content, is_error and text.";
    type Inputs = McpToolInputs;

    async fn attempt(
        &self,
        inputs: McpToolInputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let server = self.server(&inputs.server)?;
        let tool = inputs.tool.as_str();
        let arguments = Value::Object(inputs.arguments.unwrap_or_default());
        let timeout = context
            .timeout_secs
            .map_or(server.default_timeout(), Duration::from_secs);
        let span = troupe_telemetry::spans::execute_tool(tool, "mcp");
        let call = async {
            server.check_tool(tool, timeout, &context.cancel).await?;
            server
                .call_tool(tool, arguments, timeout, &context.cancel)
                .await
        };
        let result = tracing::Instrument::instrument(call, span.clone())
            .await
            .inspect_err(|error| {
                troupe_telemetry::spans::failed(&span, "tool", &error.to_string())
            })?;
        Ok(AgentOutput {
            outputs: outputs(result),
            cost_usd: 0.0,
        })
    }
}

/// `{content, is_error, text}` (and `structured_content` when the tool sent one).
fn outputs(mut result: Value) -> Map<String, Value> {
    let content = result
        .get_mut("content")
        .map(Value::take)
        .unwrap_or(Value::Array(Vec::new()));
    let text: Vec<&str> = content
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|item| item.get("text").and_then(Value::as_str))
        .collect();
    let mut outputs = Map::new();
    outputs.insert("text".into(), Value::String(text.join("\n")));
    outputs.insert(
        "is_error".into(),
        Value::Bool(result.get("isError").and_then(Value::as_bool) == Some(true)),
    );
    outputs.insert("content".into(), content);
    if let Some(structured) = result.get_mut("structuredContent") {
        outputs.insert("structured_content".into(), structured.take());
    }
    outputs
}
