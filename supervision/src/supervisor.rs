//! A one-for-one supervisor actor over a fixed set of children.
//!
//! A child that fails (panics or returns an error) is started again from its
//! [`ChildSpec`] unless it failed more than the policy allows within the period; then the
//! supervisor fails itself, so its own parent sees the failure (escalation). A child that
//! stops cleanly is not restarted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use ractor_cluster::RactorMessage;

use super::restart_log::{RestartLog, RestartPolicy, Verdict};

type StartFn =
    Arc<dyn Fn(ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> + Send + Sync>;

/// How to (re)start one child, linked to the given supervisor cell.
#[derive(Clone)]
pub struct ChildSpec {
    pub name: String,
    pub start: StartFn,
}

impl ChildSpec {
    pub fn new<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        Self {
            name: name.into(),
            start: Arc::new(move |supervisor| Box::pin(start(supervisor))),
        }
    }
}

pub struct Supervisor;

pub struct SupervisorArgs {
    pub policy: RestartPolicy,
    pub children: Vec<ChildSpec>,
}

pub struct SupervisorState {
    policy: RestartPolicy,
    specs: Vec<ChildSpec>,
    running: HashMap<ActorId, usize>,
    logs: Vec<RestartLog>,
    restarts_total: u64,
}

#[derive(RactorMessage)]
pub enum SupervisorMsg {
    /// How many restarts this supervisor has made since it started.
    GetRestartCount(RpcReplyPort<u64>),
}

impl Supervisor {
    pub fn args(policy: RestartPolicy, children: Vec<ChildSpec>) -> SupervisorArgs {
        SupervisorArgs { policy, children }
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            policy: args.policy,
            logs: vec![RestartLog::default(); args.children.len()],
            specs: args.children,
            running: HashMap::new(),
            restarts_total: 0,
        };
        for index in 0..state.specs.len() {
            start_child(&myself, &mut state, index).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::GetRestartCount(reply) => {
                if reply.send(state.restarts_total).is_err() {
                    tracing::debug!("restart count asked by a caller that left");
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(index) = state.running.remove(&cell.get_id()) else {
                    return Ok(());
                };
                let name = state.specs[index].name.clone();
                tracing::warn!(child = %name, %error, "supervised actor failed");
                match state.logs[index].record_failure(Instant::now(), state.policy) {
                    Verdict::Restart => {
                        state.restarts_total += 1;
                        start_child(&myself, state, index).await?;
                    }
                    Verdict::Escalate => {
                        tracing::error!(child = %name, max_restarts = state.policy.max_restarts,
                            period_secs = state.policy.period.as_secs(), "crash loop: escalating");
                        return Err(format!(
                            "child `{name}` failed more than {} times in {:?}",
                            state.policy.max_restarts, state.policy.period
                        )
                        .into());
                    }
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(index) = state.running.remove(&cell.get_id()) {
                    tracing::info!(child = %state.specs[index].name, ?reason, "supervised actor stopped");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn start_child(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    index: usize,
) -> Result<(), ActorProcessingErr> {
    let spec = &state.specs[index];
    let cell = (spec.start)(myself.get_cell())
        .await
        .map_err(|error| format!("cannot start `{}`: {error}", spec.name))?;
    state.running.insert(cell.get_id(), index);
    Ok(())
}

#[cfg(test)]
mod tests;
