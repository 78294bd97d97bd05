//! A Model Context Protocol client for one server on stdio (revision 2025-06-18): the
//! handshake, `tools/list` (all pages, bounded) and `tools/call`, over the transport
//! plugins use.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::errors::AgentError;
use crate::stdio_rpc::{CancelNotice, Dialect, ProcessConfig, Supervised};

/// The revision this client asks for.
pub const MCP_PROTOCOL_VERSION: &str = "2025-06-18";
/// Revisions a server may answer instead: `tools/list` and `tools/call` are the same.
const ACCEPTED_VERSIONS: [&str; 3] = [MCP_PROTOCOL_VERSION, "2025-03-26", "2024-11-05"];
/// `tools/list` pages read before giving up on a server that never stops paging.
const MAX_TOOL_PAGES: usize = 50;
const MAX_TOOLS: usize = 10_000;
const CANCEL_GRACE: Duration = Duration::from_secs(1);

pub(super) struct McpServer {
    name: String,
    process: Supervised,
    /// Tool names as last listed; listed again when a call names one not in it.
    tools: std::sync::Mutex<Vec<String>>,
}

impl McpServer {
    pub(super) fn new(name: String, process: ProcessConfig) -> Self {
        let dialect = Dialect {
            host: "MCP server",
            initialize_params: json!({
                "protocolVersion": MCP_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "troupe", "version": env!("CARGO_PKG_VERSION")},
            }),
            initialized_notification: Some("notifications/initialized"),
            check_initialize,
            health_method: "ping",
            cancel: CancelNotice {
                notification: |id| {
                    (
                        "notifications/cancelled",
                        json!({"requestId": id, "reason": "the task was cancelled"}),
                    )
                },
                grace: CANCEL_GRACE,
            },
        };
        Self {
            process: Supervised::new(name.clone(), process, dialect),
            name,
            tools: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(super) fn default_timeout(&self) -> Duration {
        self.process.default_timeout()
    }

    /// Every tool the server offers, as it describes them.
    pub(super) async fn list_tools(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, AgentError> {
        let mut tools = Vec::new();
        let mut params = json!({});
        for _ in 0..MAX_TOOL_PAGES {
            let page = self
                .process
                .call("tools/list", &params, timeout, cancel)
                .await?;
            let Some(listed) = page.get("tools").and_then(Value::as_array) else {
                return Err(self.broken("its `tools/list` answer has no `tools` list"));
            };
            tools.extend(listed.iter().take(MAX_TOOLS - tools.len()).cloned());
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(cursor) if tools.len() < MAX_TOOLS => params = json!({"cursor": cursor}),
                _ => {
                    self.remember(&tools);
                    return Ok(tools);
                }
            }
        }
        Err(self.broken(&format!(
            "`tools/list` was still paging after {MAX_TOOL_PAGES} pages"
        )))
    }

    /// Refuses a tool the server does not offer, naming the ones it does.
    pub(super) async fn check_tool(
        &self,
        tool: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        if self.known_tools().iter().any(|known| known == tool) {
            return Ok(());
        }
        self.list_tools(timeout, cancel).await?;
        let known = self.known_tools();
        if known.iter().any(|known| known == tool) {
            return Ok(());
        }
        Err(AgentError::InvalidInput {
            field: "tool".into(),
            reason: format!(
                "MCP server `{}` has no tool `{tool}`; its tools: {}",
                self.name,
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            ),
        })
    }

    /// The `tools/call` result: `{content: [...], isError?, structuredContent?}`.
    pub(super) async fn call_tool(
        &self,
        tool: &str,
        arguments: Value,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Value, AgentError> {
        let params = json!({"name": tool, "arguments": arguments});
        let result = self
            .process
            .call("tools/call", &params, timeout, cancel)
            .await?;
        if !result.get("content").is_some_and(Value::is_array) {
            return Err(self.broken("its `tools/call` answer has no `content` list"));
        }
        Ok(result)
    }

    fn known_tools(&self) -> Vec<String> {
        self.tools
            .lock()
            .map(|tools| tools.clone())
            .unwrap_or_default()
    }

    fn remember(&self, tools: &[Value]) {
        let names = tools
            .iter()
            .filter_map(|tool| tool.get("name").and_then(Value::as_str))
            .map(String::from)
            .collect();
        if let Ok(mut known) = self.tools.lock() {
            *known = names;
        }
    }

    fn broken(&self, reason: &str) -> AgentError {
        AgentError::External {
            host: "MCP server",
            name: self.name.clone(),
            reason: reason.into(),
        }
    }
}

fn check_initialize(answer: &Value) -> Result<(), String> {
    match answer.get("protocolVersion").and_then(Value::as_str) {
        Some(version) if ACCEPTED_VERSIONS.contains(&version) => Ok(()),
        Some(version) => Err(format!(
            "names protocol version {version}; this client speaks {}",
            ACCEPTED_VERSIONS.join(", ")
        )),
        None => Err("has no `protocolVersion`".into()),
    }
}
