//! `human_review`: the task behind an approval gate. It runs only after a person decided,
//! and returns who decided what.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::agent::{Agent, AgentContext, AgentOutput};
use crate::errors::AgentError;
use crate::schema::InputSchema;

static SCHEMA: LazyLock<InputSchema> = LazyLock::new(|| InputSchema {
    fields: Vec::new(),
    open: true,
});

pub struct HumanReviewAgent;

#[async_trait::async_trait]
impl Agent for HumanReviewAgent {
    fn kind(&self) -> &str {
        "human_review"
    }

    fn description(&self) -> &str {
        "A person's decision; use with `requires_approval: true`."
    }

    fn input_schema(&self) -> &InputSchema {
        &SCHEMA
    }

    async fn run(
        &self,
        _inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let approval = context.approval.ok_or_else(|| {
            AgentError::Failed(
                "human_review ran without a decision: set `requires_approval: true` on the task"
                    .into(),
            )
        })?;
        let decision = if approval.approved {
            "approved"
        } else {
            "rejected"
        };
        let mut outputs = Map::new();
        outputs.insert("approver".into(), Value::String(approval.approver));
        outputs.insert("decision".into(), Value::String(decision.into()));
        outputs.insert("comment".into(), json!(approval.comment));
        Ok(AgentOutput {
            outputs,
            cost_usd: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Approval;

    #[tokio::test]
    async fn returns_the_decision_it_ran_under() {
        let mut context = AgentContext::detached("r:t:1");
        context.approval = Some(Approval {
            approver: "ada".into(),
            approved: true,
            comment: Some("ship it".into()),
        });
        let output = HumanReviewAgent.run(Map::new(), context).await.unwrap();
        assert_eq!(
            Value::Object(output.outputs),
            json!({"approver": "ada", "decision": "approved", "comment": "ship it"})
        );
    }

    #[tokio::test]
    async fn refuses_to_run_without_a_decision() {
        let error = HumanReviewAgent
            .run(Map::new(), AgentContext::detached("r:t:1"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("requires_approval"), "{error}");
    }
}
