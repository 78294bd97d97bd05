//! An attempt's outcome in the form that leaves the process: recorded in the store by
//! the node that ran it (`Store::record_attempt_outcome`), and sent back over the
//! cluster's links. Its variant and field names are stored: renaming one breaks records.

use serde::{Deserialize, Serialize};
use troupe_agents::{AgentError, AgentOutput};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded(AgentOutput),
    Failed { error: String, retryable: bool },
    Cancelled,
}

impl From<&Result<AgentOutput, AgentError>> for AttemptOutcome {
    fn from(outcome: &Result<AgentOutput, AgentError>) -> Self {
        match outcome {
            Ok(output) => AttemptOutcome::Succeeded(output.clone()),
            Err(AgentError::Cancelled) => AttemptOutcome::Cancelled,
            Err(error) => AttemptOutcome::Failed {
                error: error.to_string(),
                retryable: error.is_retryable(),
            },
        }
    }
}

impl AttemptOutcome {
    pub fn into_result(self) -> Result<AgentOutput, AgentError> {
        match self {
            AttemptOutcome::Succeeded(output) => Ok(output),
            AttemptOutcome::Failed { error, retryable } => Err(AgentError::Recorded {
                message: error,
                retryable,
            }),
            AttemptOutcome::Cancelled => Err(AgentError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_keeps_its_text_and_retryability_through_a_record() {
        let outcomes = [
            Ok(AgentOutput {
                outputs: serde_json::json!({"n": 1})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                cost_usd: 0.25,
            }),
            Err(AgentError::TimedOut { secs: 3 }),
            Err(AgentError::Unavailable("no model".into())),
            Err(AgentError::Cancelled),
        ];
        for outcome in outcomes {
            let recorded = serde_json::to_value(AttemptOutcome::from(&outcome)).unwrap();
            let back: AttemptOutcome = serde_json::from_value(recorded).unwrap();
            let back = back.into_result();
            match (&outcome, &back) {
                (Ok(sent), Ok(received)) => assert_eq!(sent, received),
                (Err(sent), Err(received)) => {
                    assert_eq!(sent.to_string(), received.to_string());
                    assert_eq!(sent.is_retryable(), received.is_retryable(), "{sent}");
                }
                _ => panic!("{outcome:?} came back as {back:?}"),
            }
        }
    }
}
