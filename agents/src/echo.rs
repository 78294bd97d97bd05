//! `echo`: returns its inputs as its outputs. The cheapest possible task, used by
//! examples, benchmarks of the engine's own overhead, and tests of data flow.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::agent::{Agent, AgentContext, AgentOutput};
use crate::errors::AgentError;
use crate::schema::InputSchema;

static SCHEMA: LazyLock<InputSchema> = LazyLock::new(|| InputSchema {
    fields: Vec::new(),
    open: true,
});

pub struct EchoAgent;

#[async_trait::async_trait]
impl Agent for EchoAgent {
    fn kind(&self) -> &str {
        "echo"
    }

    fn description(&self) -> &str {
        "Returns its inputs as outputs."
    }

    fn input_schema(&self) -> &InputSchema {
        &SCHEMA
    }

    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        if context.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        Ok(AgentOutput {
            outputs: inputs,
            cost_usd: 0.0,
        })
    }
}
