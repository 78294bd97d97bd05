//! `human_review`: the task behind an approval gate. It runs only after a person decided,
//! and returns who decided what.

use serde_json::{Map, Value, json};

use crate::agent::{AgentContext, AgentOutput, TypedAgent};
use crate::errors::AgentError;

pub struct HumanReviewAgent;

#[async_trait::async_trait]
impl TypedAgent for HumanReviewAgent {
    const KIND: &'static str = "human_review";
    const DESCRIPTION: &'static str = "A person's decision; use with `requires_approval: true`.";
    /// Any inputs: they are shown to the approver with the task, not read here.
    type Inputs = Map<String, Value>;

    async fn attempt(
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
    use crate::agent::{Agent, Approval};

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
