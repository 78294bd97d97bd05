//! `echo`: returns its inputs as its outputs. The cheapest possible task, used by
//! examples, benchmarks of the engine's own overhead, and tests of data flow.

use serde_json::{Map, Value};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::AgentError;

pub struct EchoAgent;

#[async_trait::async_trait]
impl TypedAgent for EchoAgent {
    const KIND: &'static str = "echo";
    const DESCRIPTION: &'static str = "Returns its inputs as outputs.";
    /// Any inputs at all.
    type Inputs = Map<String, Value>;

    async fn attempt(
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
