//! External agent kinds: a process declared in settings that answers `run` over
//! JSON-RPC on stdio (the protocol is in `docs/plugins.md`). The process is started on
//! first use and kept; one call at a time goes to it.

mod result;

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::agent::{Agent, AgentContext, AgentOutput};
use crate::errors::AgentError;
use crate::schema::InputSchema;
use crate::stdio_rpc::{CancelNotice, Dialect, ProcessConfig, Supervised};

/// The protocol revision sent in `initialize`; a plugin may refuse one it does not know.
pub const PLUGIN_PROTOCOL_VERSION: u32 = 1;
/// After a `cancel` notification, how long the plugin has to answer before it is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub kind: String,
    pub description: String,
    /// Checked before the plugin sees a task's inputs.
    pub schema: InputSchema,
    pub process: ProcessConfig,
}

pub struct PluginAgent {
    kind: String,
    description: String,
    schema: InputSchema,
    process: Supervised,
}

impl PluginAgent {
    pub fn new(config: PluginConfig) -> Self {
        let dialect = Dialect {
            host: "plugin",
            initialize_params: json!({"protocol_version": PLUGIN_PROTOCOL_VERSION, "kind": config.kind}),
            initialized_notification: None,
            check_initialize: result::check_initialize,
            health_method: "health",
            cancel: CancelNotice {
                notification: |id| ("cancel", json!({"id": id})),
                grace: CANCEL_GRACE,
            },
        };
        Self {
            process: Supervised::new(config.kind.clone(), config.process, dialect),
            kind: config.kind,
            description: config.description,
            schema: config.schema,
        }
    }

    /// Sends `health` to the plugin, starting it if it is not running.
    pub async fn health(&self, cancel: &crate::CancellationToken) -> Result<Value, AgentError> {
        self.process.health(cancel).await
    }

    /// The running plugin's answer to `initialize` (its name and version).
    pub async fn info(&self) -> Option<Value> {
        self.process.info().await
    }
}

#[async_trait::async_trait]
impl Agent for PluginAgent {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn input_schema(&self) -> InputSchema {
        self.schema.clone()
    }

    fn needs_grant(
        &self,
        _: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Option<&'static str> {
        Some("runs a plugin program")
    }

    fn jailed(&self) -> bool {
        true
    }

    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        self.schema.validate(&inputs)?;
        let timeout = context
            .timeout_secs
            .map_or(self.process.default_timeout(), Duration::from_secs);
        let params = json!({
            "inputs": inputs,
            "idempotency_key": context.idempotency_key,
            "timeout_secs": timeout.as_secs(),
        });
        let span = troupe_telemetry::spans::execute_tool(&self.kind, "plugin");
        let call = self.process.call("run", &params, timeout, &context.cancel);
        let answer = tracing::Instrument::instrument(call, span.clone())
            .await
            .inspect_err(|error| {
                troupe_telemetry::spans::failed(&span, "tool", &error.to_string())
            })?;
        result::output(answer).map_err(|reason| AgentError::External {
            host: "plugin",
            name: self.kind.clone(),
            reason,
        })
    }
}
