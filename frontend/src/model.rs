//! What the pages read from the API. Each type names only the fields a page shows and
//! ignores the rest, so the UI keeps working when the API grows a field; the API's own
//! types stay in the server crates (troupe-api, troupe-node), which the browser build cannot compile (SurrealDB).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: String,
    #[serde(default)]
    pub must_change_password: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SignInAnswer {
    pub signed_in: bool,
    pub mfa_required: bool,
    pub mfa_token: Option<String>,
    pub password_change_required: bool,
    /// The role needs a second factor the account does not have yet.
    #[serde(default)]
    pub mfa_enrolment_required: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_version: u32,
    pub workflow_name: String,
    pub status: String,
    pub started_by: String,
    pub created_at_ms: i64,
    #[serde(default)]
    pub finished_at_ms: i64,
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    #[serde(default)]
    pub cost_usd: f64,
    /// The run's budget and what it spent, when its workflow has one.
    #[serde(default)]
    pub budget: Option<RunBudget>,
    pub failure_reason: Option<String>,
    pub tasks: Vec<TaskState>,
    /// The run's trace, when the node exported spans as it started.
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub trace_url: Option<String>,
}

/// What `POST /api/v1/runs/{id}/retry` answers: the tasks that run again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Retried {
    pub tasks: Vec<String>,
}

/// One workflow's triggers, as `GET /api/v1/triggers` lists them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TriggerView {
    pub workflow_id: String,
    pub name: String,
    pub project: String,
    pub paused: bool,
    pub schedule: Option<ScheduleView>,
    pub on_push: Option<PushView>,
    pub last_runs: Vec<RunSummary>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScheduleView {
    pub cron: String,
    pub timezone: Option<String>,
    pub catch_up: String,
    pub next_tick_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PushView {
    pub branches: Vec<String>,
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunBudget {
    pub budget_usd: f64,
    pub spent_usd: f64,
    pub on_budget: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskState {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub attempts: u32,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    #[serde(default)]
    pub cost_usd: f64,
    /// The node its latest attempt went to, then the one that ran it (a cluster).
    #[serde(default)]
    pub node: Option<String>,
    /// For a fan-out's child (`code[2]`), its fan-out (`code`).
    #[serde(default)]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowVersions {
    pub workflow_id: String,
    pub versions: Vec<WorkflowVersion>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowVersion {
    pub version: u32,
    pub name: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkflowSummary {
    pub workflow_id: String,
    pub name: String,
    pub latest_version: u32,
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingApproval {
    pub run_id: String,
    pub workflow_id: String,
    pub project: String,
    pub task: String,
    pub task_name: String,
    pub inputs: Value,
    pub inputs_digest: String,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionBody {
    pub decision: &'static str,
    pub approver: String,
    pub comment: Option<String>,
    pub expected_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Costs {
    pub total: CostLine,
    #[serde(default)]
    pub by_day: Vec<CostLine>,
    #[serde(default)]
    pub by_agent: Vec<CostLine>,
    #[serde(default)]
    pub by_provider: Vec<CostLine>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CostLine {
    pub key: String,
    #[serde(default)]
    pub calls: u64,
    /// Answers served and then refused by the agent that asked (malformed, or a loop).
    #[serde(default)]
    pub refusals: u64,
    #[serde(default)]
    pub tokens_in: u64,
    #[serde(default)]
    pub tokens_out: u64,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default)]
    pub savings_usd: f64,
    #[serde(default)]
    pub local_share: f64,
    #[serde(default)]
    pub mean_latency_ms: f64,
}

impl CostLine {
    /// Output tokens per second of call time: what the provider (a local model's workers,
    /// for `local`) generated while answering.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let seconds = self.calls as f64 * self.mean_latency_ms / 1000.0;
        (seconds > 0.0).then(|| self.tokens_out as f64 / seconds)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub details: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditVerification {
    pub entries: u64,
    pub intact: bool,
    pub first_bad: Option<AuditBreach>,
}

/// The first entry that is wrong, and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditBreach {
    pub seq: u64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentKind {
    pub kind: String,
    pub description: String,
    /// `{"fields": [{"name", "required", ...}]}`: the builder starts a new task of this
    /// kind with its required inputs.
    #[serde(default)]
    pub input_schema: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Models {
    #[serde(default)]
    pub models: Vec<ModelInfo>,
    #[serde(default)]
    pub serving: bool,
    #[serde(default)]
    pub workers: Vec<Worker>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub role: String,
    pub device: String,
    #[serde(default)]
    pub quantization: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Worker {
    pub kind: String,
    pub capacity: u64,
    pub load: u64,
    #[serde(default)]
    pub restarts: u64,
}

/// The cluster as the answering node sees it (`GET /api/v1/cluster`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterView {
    pub node: String,
    pub linked: Vec<String>,
    pub members: Vec<Member>,
}

/// One node of the cluster, with its lease and the load it last reported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Member {
    pub name: String,
    pub live: bool,
    pub lease_age_ms: i64,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub load: serde_json::Value,
}

impl Member {
    /// The task slots it reported free, if it did.
    pub fn free_slots(&self) -> Option<u64> {
        self.load
            .get("free_slots")
            .and_then(serde_json::Value::as_u64)
    }

    /// The memory it reported free, in bytes.
    pub fn free_memory_bytes(&self) -> Option<u64> {
        self.load
            .get("free_memory_bytes")
            .and_then(serde_json::Value::as_u64)
    }

    /// The local models it serves.
    pub fn models(&self) -> Vec<String> {
        self.load
            .get("models")
            .and_then(serde_json::Value::as_array)
            .map(|models| {
                models
                    .iter()
                    .filter_map(|model| model.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One agent pool's load (`GET /api/v1/pools`, by kind).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PoolLoad {
    pub admitted: u64,
    pub running: u64,
    pub capacity: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    pub store: String,
    pub supervision: String,
}

/// `GET /api/v1/alerts`: what the node's own alert rules say now.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alerts {
    pub evaluating: bool,
    pub evaluated_at_ms: Option<i64>,
    pub rules: Vec<String>,
    pub alerts: Vec<AlertLine>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AlertLine {
    pub name: String,
    pub severity: String,
    /// pending or firing.
    pub state: String,
    pub summary: String,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub device: Option<String>,
    pub client_ip: Option<String>,
    #[serde(default)]
    pub created_at_ms: i64,
    #[serde(default)]
    pub last_used_ms: i64,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiKey {
    pub key_id: String,
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiKeyCreated {
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Created {
    pub workflow_id: String,
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunStarted {
    pub run_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_providers_rate_is_its_output_over_its_call_time() {
        let line: CostLine = serde_json::from_value(serde_json::json!({
            "key": "local", "calls": 2, "tokens_out": 100, "mean_latency_ms": 500.0, "unknown": 1
        }))
        .unwrap();
        assert_eq!(line.tokens_per_second(), Some(100.0));
        let idle: CostLine =
            serde_json::from_value(serde_json::json!({ "key": "openai" })).unwrap();
        assert_eq!(idle.tokens_per_second(), None);
    }
}
