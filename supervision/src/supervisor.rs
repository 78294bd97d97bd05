//! A one-for-one supervisor actor over a fixed set of children.
//!
//! A child that fails (panics or returns an error) is started again from its
//! [`ChildSpec`] unless it failed more than the policy allows within the period; then the
//! supervisor fails itself, so its own parent sees the failure (escalation). A child that
//! stops cleanly is not restarted.

use std::sync::Arc;

use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, Message, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use ractor_cluster::RactorMessage;

use crate::child_ref::ChildRef;
use crate::children::{ChildEvent, Children};
use crate::restart_log::RestartPolicy;

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

    /// A child whose every incarnation is put in `handle`, for the rest of the node to
    /// reach it by.
    pub fn with_ref<M, F, Fut>(name: impl Into<String>, handle: ChildRef<M>, start: F) -> Self
    where
        M: Message,
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ActorRef<M>, SpawnErr>> + Send + 'static,
    {
        let start = Arc::new(start);
        Self::new(name, move |supervisor| {
            let (start, handle) = (start.clone(), handle.clone());
            async move {
                let actor = start(supervisor).await?;
                handle.set(actor.clone());
                Ok(actor.get_cell())
            }
        })
    }
}

pub struct Supervisor;

pub struct SupervisorArgs {
    pub policy: RestartPolicy,
    pub children: Vec<ChildSpec>,
}

pub struct SupervisorState {
    specs: Vec<ChildSpec>,
    children: Children<usize>,
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
            specs: args.children,
            children: Children::new("root", args.policy),
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
                if reply.send(state.children.restarts()).is_err() {
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
        match state.children.on_event(&event) {
            ChildEvent::Restart { key, .. } => start_child(&myself, state, key).await?,
            ChildEvent::GaveUp { key, reason } => {
                let name = &state.specs[key].name;
                tracing::error!(child = %name, %reason, "crash loop: escalating");
                return Err(format!("child `{name}` {reason}").into());
            }
            ChildEvent::Stopped { key } => {
                tracing::info!(child = %state.specs[key].name, "supervised actor stopped");
            }
            ChildEvent::Ignored => {}
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
    state.children.started(index, &cell);
    Ok(())
}

#[cfg(test)]
mod tests;
