//! One agent attempt invoked outside any workflow (`POST /api/v1/agents/{kind}/invoke`).
//! It is placed like a task's attempt (here, or on another node through the
//! [`Placement`](crate::placement::Placement)) and runs in that node's agent pool, so
//! the same slots, timeout, ledger and recorded outcome apply. Its id stands in for a
//! run's: its idempotency key is `ID:invoke:1`.

use serde_json::{Map, Value};
use troupe_agents::{AgentError, AgentOutput, CancellationToken, MemoryScope};
use troupe_store::{InvocationEnd, InvocationId, ProjectId, RunId, TaskId};

use crate::agent_pool::{AgentPoolMsg, AttemptJob, ReportTo};
use crate::context::EngineContext;
use crate::dispatch::local_pool;
use crate::placement::RemoteAttempt;

/// What to invoke, checked by [`ExecutionPolicy::check_invocation`](crate::policy::ExecutionPolicy::check_invocation).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: InvocationId,
    pub project: ProjectId,
    pub kind: String,
    pub inputs: Map<String, Value>,
    /// Labels the node it runs on must have (`runs_on:` of a task).
    pub runs_on: Vec<String>,
    pub timeout_secs: u64,
    pub requested_by: String,
}

/// Runs `invocation`'s attempt to its end wherever placement puts it. Cancelling
/// `cancel` cancels it, there too.
pub async fn run_invocation(
    context: &EngineContext,
    invocation: &Invocation,
    cancel: CancellationToken,
) -> InvocationEnd {
    let free_here = context.node_slots.available_permits();
    let (node, outcome) =
        match context
            .placement
            .choose(&invocation.kind, &invocation.runs_on, free_here)
        {
            Ok(node) => {
                let job = attempt_job(context, invocation, cancel);
                run_on(context, node, &invocation.kind, job).await
            }
            Err(why) => (None, Err(AgentError::Failed(why))),
        };
    // The pool recorded the outcome under the invocation's id, for a run's new owner
    // to find; an invocation has none, and keeps its end in its own record.
    let run_id = RunId::from(invocation.id.as_str());
    if let Err(error) = context.store.forget_attempt_outcomes(&run_id).await {
        tracing::warn!(%error, invocation = %invocation.id, "could not forget an invocation's recorded outcome");
    }
    let cost_usd = outcome.as_ref().map_or(0.0, |output| output.cost_usd);
    InvocationEnd {
        node,
        outcome: outcome
            .map(|output| output.outputs)
            .map_err(|error| error.to_string()),
        cost_usd,
    }
}

fn attempt_job(
    context: &EngineContext,
    invocation: &Invocation,
    cancel: CancellationToken,
) -> (
    AttemptJob,
    tokio::sync::oneshot::Receiver<Result<AgentOutput, AgentError>>,
) {
    let (report, outcome) = tokio::sync::oneshot::channel();
    let run_id = RunId::from(invocation.id.as_str());
    let job = AttemptJob {
        seed: crate::seed::of_run(&run_id),
        run_id,
        epoch: 0,
        task: TaskId::from("invoke"),
        attempt: 1,
        inputs: invocation.inputs.clone(),
        timeout_secs: Some(invocation.timeout_secs),
        cancel,
        approval: None,
        services: context.services.clone(),
        scope: MemoryScope {
            project: invocation.project.to_string(),
            user: invocation.requested_by.clone(),
            run_id: invocation.id.to_string(),
        },
        billing: None,
        report: ReportTo::Caller(report),
        trace: troupe_telemetry::TraceParent::current(),
    };
    (job, outcome)
}

/// Runs `job` on `node`: in the pool of `kind` here, or through that node's gateway.
async fn run_on(
    context: &EngineContext,
    node: String,
    kind: &str,
    (job, outcome): (
        AttemptJob,
        tokio::sync::oneshot::Receiver<Result<AgentOutput, AgentError>>,
    ),
) -> (Option<String>, Result<AgentOutput, AgentError>) {
    if node != context.node_name {
        let (attempt, cancel) = RemoteAttempt::of(&context.node_name, kind, job, false);
        let (node, outcome) = context.placement.run_on(node, attempt, cancel).await;
        return (Some(node), outcome);
    }
    let pool = match local_pool(context, kind) {
        Ok(pool) => pool,
        Err(why) => return (None, Err(AgentError::Failed(why))),
    };
    if let Err(error) = pool.cast(AgentPoolMsg::SubmitAttempt(Box::new(job))) {
        return (None, Err(AgentError::Failed(error.to_string())));
    }
    let outcome = outcome
        .await
        .unwrap_or_else(|_| Err(AgentError::Failed("the agent pool stopped".into())));
    (Some(node), outcome)
}
