//! Request and response bodies of the API that are not engine types themselves. The CLI
//! uses these same types as a client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_store::WorkflowId;
use troupe_store::events::{Decision, Person};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateWorkflow {
    /// The workflow's YAML text.
    pub source: String,
    /// Shown in validation errors; `request` when absent.
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowCreated {
    pub workflow_id: WorkflowId,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowWithVersions {
    pub workflow_id: WorkflowId,
    pub versions: Vec<troupe_store::WorkflowVersion>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRunRequest {
    /// Overrides of the workflow's variables; each must exist and keep its type.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, Value>,
    /// The latest version when absent.
    pub version: Option<u32>,
    pub started_by: Option<String>,
    /// The run's sampling seed: a run started again with the same seed draws the same
    /// answers from the local model. The run's id gives one when absent; the run's
    /// detail shows it either way.
    pub seed: Option<u64>,
}

/// One agent attempt outside any workflow (`POST /api/v1/agents/{kind}/invoke`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// The kind's inputs, as a task of the kind takes them (`GET /api/v1/agents` has each
    /// kind's schema).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: serde_json::Map<String, Value>,
    /// The project it runs for: its grants apply, and its model calls are billed to
    /// it. `default` when absent.
    pub project: Option<String>,
    /// Labels the node it runs on must have, like a task's `runs_on:`.
    #[serde(default)]
    pub runs_on: Vec<String>,
    /// How long the attempt may run (1 to 3600 s); 60 when absent.
    pub timeout_secs: Option<u64>,
    /// Answer when the attempt has ended (the default), or at once with its id to poll
    /// (`GET /api/v1/invocations/{id}`).
    pub wait: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunStarted {
    pub run_id: troupe_store::RunId,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub by: Option<String>,
}

/// `from`: a task to run again with everything downstream of it, besides the failed
/// and cancelled ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetryRequest {
    #[serde(default)]
    pub from: Option<String>,
    /// Who asks, on a node without accounts (an account's name wins).
    #[serde(default)]
    pub by: Option<String>,
}

/// Move an unfinished run to version `to_version` of its workflow; with `dry_run`, only
/// say what that would do.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MigrateRequest {
    pub to_version: u32,
    #[serde(default)]
    pub dry_run: bool,
    /// Who asks, on a node without accounts (an account's name wins).
    #[serde(default)]
    pub by: Option<String>,
}

/// The tasks a retry runs again, in order.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retried {
    pub run_id: String,
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: Verdict,
    pub approver: String,
    pub comment: Option<String>,
    /// The `inputs_digest` the reviewer saw; the decision is refused if the gate now
    /// guards different inputs.
    pub expected_digest: Option<String>,
}

impl DecisionBody {
    /// The decision `approver` made (the body's own `approver` is only a name, and only
    /// counts on a node without accounts), and the digest it was made on.
    pub fn into_decision(self, approver: Person) -> (Decision, Option<String>) {
        let decision = Decision {
            approved: self.decision == Verdict::Approve,
            approver: approver.name,
            approver_id: approver.user_id,
            comment: self.comment,
        };
        (decision, self.expected_digest)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentKind {
    pub kind: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub input_schema: Value,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct RunQuery {
    /// running, completed, failed or cancelled.
    pub status: Option<String>,
    pub workflow_id: Option<String>,
    /// At most 1000; 100 when absent.
    pub limit: Option<usize>,
}
