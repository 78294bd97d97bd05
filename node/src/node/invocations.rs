//! Invoking one agent attempt outside any workflow: checked against the execution
//! policy, recorded and audited here, placed anywhere in the cluster by the engine. The
//! attempt runs on a task of its own, so a caller that stops waiting (a synchronous
//! request whose client left) leaves it to end and be recorded.

use troupe_agents::CancellationToken;
use troupe_engine::EngineError;
use troupe_engine::invoke::{Invocation, run_invocation};
use troupe_security::audit::AuditAction;
use troupe_store::clock::now_ms;
use troupe_store::{InvocationId, InvocationRecord, InvocationStatus};

use super::Node;
use crate::NodeError;

/// How long an invocation may run: long enough for a test suite, short enough that a
/// synchronous caller's connection is not held for hours.
pub const MAX_INVOCATION_SECS: u64 = 3600;

/// How long past its timeout the caller waits for an attempt on another node to be
/// answered: the link's round trip and the recording of the outcome.
const ANSWER_GRACE_SECS: u64 = 10;

impl Node {
    /// Checks and records `invocation`, and starts its attempt. With `wait`, answers
    /// when it ended (its record then holds the outcome); else at once, running.
    pub async fn invoke(
        &self,
        invocation: Invocation,
        wait: bool,
    ) -> Result<InvocationRecord, NodeError> {
        if !self.is_acting() {
            return Err(EngineError::NotMember.into());
        }
        check_timeout(invocation.timeout_secs)?;
        let context = &self.context;
        context
            .policy
            .check_invocation(
                &invocation,
                &context.registry,
                &context.store,
                context.alone,
            )
            .await?;
        let record = running(&invocation, &context.node_name);
        context.store.create_invocation(&record).await?;
        self.audit
            .record(
                &invocation.requested_by,
                AuditAction::AgentInvoke {
                    kind: invocation.kind.clone(),
                    project: invocation.project.clone(),
                },
                invocation.id.as_str(),
            )
            .await?;
        let timeout_secs = invocation.timeout_secs;
        let ended = tokio::spawn(run_and_record(context.clone(), invocation));
        if !wait {
            return Ok(record);
        }
        let limit = std::time::Duration::from_secs(timeout_secs + ANSWER_GRACE_SECS);
        // The attempt's own timeout ends it first; past the grace the record still
        // says running, which is the truth, and the caller polls for the rest.
        let _ = tokio::time::timeout(limit, ended).await;
        Ok(context.store.invocation(&record.id).await?)
    }

    /// Invocation `id` as it stands. One still running on a node that is no longer a
    /// live member is marked failed first: no one is left to record its end.
    pub async fn invocation(&self, id: &InvocationId) -> Result<InvocationRecord, NodeError> {
        let store = &self.context.store;
        let record = store.invocation(id).await?;
        let accepted_by = &record.accepted_by;
        if record.status != InvocationStatus::Running || *accepted_by == self.context.node_name {
            return Ok(record);
        }
        let nodes = store.nodes().await?;
        if nodes
            .iter()
            .any(|node| node.name == *accepted_by && node.live)
        {
            return Ok(record);
        }
        store
            .abandon_invocations(accepted_by, &stopped_before_the_end(accepted_by))
            .await?;
        Ok(store.invocation(id).await?)
    }
}

async fn run_and_record(
    context: std::sync::Arc<troupe_engine::context::EngineContext>,
    invocation: Invocation,
) {
    let end = run_invocation(&context, &invocation, CancellationToken::new()).await;
    if let Err(error) = context.store.finish_invocation(&invocation.id, &end).await {
        tracing::error!(%error, invocation = %invocation.id, "could not record how an invocation ended");
    }
}

/// Why an invocation accepted by `node` ended without an outcome.
pub(crate) fn stopped_before_the_end(node: &str) -> String {
    format!("node `{node}`, which accepted it, stopped before it ended")
}

fn check_timeout(timeout_secs: u64) -> Result<(), NodeError> {
    if (1..=MAX_INVOCATION_SECS).contains(&timeout_secs) {
        return Ok(());
    }
    Err(NodeError::InvalidRequest(format!(
        "timeout_secs {timeout_secs} is out of range: give 1 to {MAX_INVOCATION_SECS} seconds"
    )))
}

fn running(invocation: &Invocation, node: &str) -> InvocationRecord {
    let what = (
        invocation.project.clone(),
        invocation.kind.clone(),
        invocation.requested_by.clone(),
    );
    InvocationRecord::accepted(invocation.id.clone(), what, node.into(), now_ms())
}
