//! Sends a run's attempt where it runs: the agent pool of its kind here, or another
//! node through the [`Placement`](crate::placement::Placement). Whatever happens, the
//! run actor gets exactly one `AttemptFinished` for it.

use std::sync::Arc;

use ractor::{ActorProcessingErr, ActorRef};
use troupe_agents::AgentError;
use troupe_supervision::ChildRef;

use crate::agent_pool::{AgentPoolMsg, AttemptJob};
use crate::context::EngineContext;
use crate::placement::RemoteAttempt;
use crate::run_actor::RunMsg;

/// What the run knows of where an attempt goes: its kind, the labels it needs, and the
/// node the log says it was sent to.
pub(crate) struct Destination<'a> {
    pub kind: &'a str,
    pub runs_on: &'a [String],
    pub recorded: Option<String>,
    /// Whether the attempt may have run already (see `RemoteAttempt::resumed`).
    pub resumed: bool,
}

pub(crate) fn dispatch(
    myself: &ActorRef<RunMsg>,
    context: &Arc<EngineContext>,
    destination: Destination<'_>,
    job: AttemptJob,
) -> Result<(), ActorProcessingErr> {
    match target(context, &destination) {
        Ok(node) if node == context.node_name => {
            to_local_pool(myself, context, destination.kind, job)
        }
        Ok(node) => {
            to_node(
                myself,
                context,
                (node, destination.resumed),
                destination.kind,
                job,
            );
            Ok(())
        }
        Err(why) => finish_at_once(myself, job, why),
    }
}

/// The node the log recorded, while it can still be reached (a resumed attempt goes
/// back where it was sent, whose pool may be running it still); else a fresh choice.
fn target(context: &EngineContext, destination: &Destination<'_>) -> Result<String, String> {
    if let Some(node) = &destination.recorded
        && (*node == context.node_name || context.placement.reachable(node))
    {
        return Ok(node.clone());
    }
    context.placement.choose(
        destination.kind,
        destination.runs_on,
        context.node_slots.available_permits(),
    )
}

fn to_local_pool(
    myself: &ActorRef<RunMsg>,
    context: &EngineContext,
    kind: &str,
    job: AttemptJob,
) -> Result<(), ActorProcessingErr> {
    match local_pool(context, kind) {
        Ok(pool) => Ok(pool.cast(AgentPoolMsg::SubmitAttempt(Box::new(job)))?),
        // The pool is restarting: a failed attempt, retried with backoff like any
        // other, so a pool that never comes back ends the task instead of hanging it.
        Err(why) => finish_at_once(myself, job, why),
    }
}

/// The agent pool of `kind` on this node; `Err` says it is not running (its
/// supervisor is restarting it).
pub(crate) fn local_pool(
    context: &EngineContext,
    kind: &str,
) -> Result<ActorRef<AgentPoolMsg>, String> {
    context
        .pools
        .get(kind)
        .and_then(ChildRef::get)
        .ok_or_else(|| format!("no `{kind}` agent pool is running"))
}

/// Runs the attempt on `node`; its outcome comes back as a message like a local one.
fn to_node(
    myself: &ActorRef<RunMsg>,
    context: &EngineContext,
    (node, resumed): (String, bool),
    kind: &str,
    job: AttemptJob,
) {
    let (task, attempt) = (job.task.clone(), job.attempt);
    let (remote, cancel) = RemoteAttempt::of(&context.node_name, kind, job, resumed);
    let running = context.placement.run_on(node, remote, cancel);
    let myself = myself.clone();
    tokio::spawn(async move {
        let (node, outcome) = running.await;
        let finished = RunMsg::AttemptFinished {
            task,
            attempt,
            outcome,
            node: Some(node),
        };
        if myself.cast(finished).is_err() {
            tracing::debug!("a remote attempt ended after its run actor");
        }
    });
}

fn finish_at_once(
    myself: &ActorRef<RunMsg>,
    job: AttemptJob,
    why: String,
) -> Result<(), ActorProcessingErr> {
    myself.cast(RunMsg::AttemptFinished {
        task: job.task,
        attempt: job.attempt,
        outcome: Err(AgentError::Failed(why)),
        node: None,
    })?;
    Ok(())
}
