//! One gateway per node, in the process group `troupe.gateway.NAME`: it runs the
//! attempts other nodes' runs place here, through this node's agent pools (so the same
//! slots, limits, ledger and audit as a local task), and answers with each outcome once
//! the pool has recorded it. An attempt asked for again while it runs (its owner died
//! and the new owner resumed it) joins the running one in the pool instead of starting
//! a second; one that ran here already is answered from its record. An attempt whose
//! run moved on without it is cancelled (`running`). It also answers other nodes'
//! completions with this node's generation model (`models`).

mod running;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use troupe_agents::{AgentError, AgentOutput};
use troupe_engine::agent_pool::{AgentPoolMsg, AttemptJob, ReportTo, idempotency_key};
use troupe_engine::command::RunCommand;
use troupe_engine::context::EngineContext;
use troupe_engine::outcome::AttemptOutcome;
use troupe_engine::placement::RemoteAttempt;
use troupe_engine::run_manager::RunManagerMsg;
use troupe_inference::providers::peers::{PeerAsk, answer_locally};
use troupe_inference::serve::InferenceService;
use troupe_supervision::ChildRef;
use troupe_telemetry::spans;

use self::running::Running;
use crate::wire::{
    AttemptReply, CommandAnswer, CommandRefusal, GatewayMsg, GenerateAnswer, ModelRefusal, Ping,
    Wire, gateway_group,
};

pub struct Gateway;

pub struct GatewayArgs {
    pub context: Arc<EngineContext>,
    /// This node's local models, when it serves them.
    pub inference: Option<InferenceService>,
}

pub struct GatewayState {
    context: Arc<EngineContext>,
    inference: Option<InferenceService>,
    running: Running,
    /// Cancels the attempts running here that their run no longer wants.
    watch: tokio::task::JoinHandle<()>,
}

impl Actor for Gateway {
    type Msg = GatewayMsg;
    type State = GatewayState;
    type Arguments = GatewayArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<GatewayMsg>,
        GatewayArgs { context, inference }: GatewayArgs,
    ) -> Result<GatewayState, ActorProcessingErr> {
        ractor::pg::join(gateway_group(&context.node_name), vec![myself.get_cell()]);
        let running = Running::default();
        let watch = tokio::spawn(running::watch(running.clone(), context.store.clone()));
        Ok(GatewayState {
            context,
            inference,
            running,
            watch,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<GatewayMsg>,
        message: GatewayMsg,
        state: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GatewayMsg::RunAttempt(Wire(request), reply) => match request {
                Ok(attempt) => run_attempt(state, *attempt, reply).await,
                Err(why) => answer(reply, &state.context.node_name, refusal(why)),
            },
            GatewayMsg::CancelAttempt(Wire(Ok(key))) => state.running.cancel(&key),
            GatewayMsg::CancelAttempt(Wire(Err(why))) => {
                tracing::warn!(why, "an unreadable cancellation");
            }
            GatewayMsg::Command(Wire(command), reply) => {
                let answer = match command {
                    Ok(command) => apply(&state.context, command).await,
                    Err(why) => Err(CommandRefusal::Failed(why)),
                };
                if reply.send(Wire::new(answer)).is_err() {
                    tracing::debug!("a command whose caller left");
                }
            }
            GatewayMsg::Generate(Wire(ask), reply) => {
                // Off the mailbox: a generation takes seconds.
                tokio::spawn(generate(state.inference.clone(), ask, reply));
            }
            GatewayMsg::Ping(_, reply) => {
                let pong = Wire::new(Ping {
                    sent_by: state.context.node_name.clone(),
                });
                if reply.send(pong).is_err() {
                    tracing::debug!("a ping whose caller left");
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<GatewayMsg>,
        state: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        state.watch.abort();
        state.running.cancel_all();
        Ok(())
    }
}

/// Answers a peer's ask with this node's generation model.
async fn generate(
    inference: Option<InferenceService>,
    ask: Result<PeerAsk, String>,
    reply: RpcReplyPort<Wire<GenerateAnswer>>,
) {
    let answer = match (ask, inference) {
        (Err(why), _) => Err(ModelRefusal::InvalidRequest(why)),
        (Ok(_), None) => Err(ModelRefusal::NoModel),
        (Ok(ask), Some(service)) => {
            let model = service
                .generation_model()
                .map_or_else(|| "local".into(), |model| model.id());
            let span = spans::model_call("chat", "local", &model, true);
            if let Some(parent) = &ask.trace {
                parent.adopt(&span);
            }
            tracing::Instrument::instrument(answer_locally(&service, &ask), span)
                .await
                .map_err(ModelRefusal::from_error)
        }
    };
    if reply.send(Wire::new(answer)).is_err() {
        tracing::debug!("a completion whose caller left");
    }
}

/// Applies a command another node handed on, here, without handing it on again.
async fn apply(context: &EngineContext, command: RunCommand) -> CommandAnswer {
    let manager = context
        .run_manager
        .get()
        .ok_or_else(|| CommandRefusal::Restarting("the run manager".into()))?;
    let answered = ractor::call!(manager, |reply| RunManagerMsg::Command {
        command,
        may_forward: false,
        reply
    });
    match answered {
        Ok(result) => result.map_err(CommandRefusal::from_error),
        Err(error) => Err(CommandRefusal::Failed(error.to_string())),
    }
}

/// Answers from its record a resumed attempt that ran here already; else hands it to this
/// node's pool of its kind (which joins it to its twin if it runs already).
async fn run_attempt(
    state: &GatewayState,
    attempt: RemoteAttempt,
    reply: RpcReplyPort<Wire<AttemptReply>>,
) {
    let context = &state.context;
    let key = idempotency_key(&attempt.run_id, &attempt.task, attempt.attempt);
    if attempt.resumed
        && let Ok(Some(record)) = context.store.attempt_outcome(&key).await
        && let Ok(outcome) = serde_json::from_value::<AttemptOutcome>(record.outcome)
    {
        return answer(reply, &context.node_name, outcome);
    }
    let pool = context
        .policy
        .node_runs(&attempt.kind)
        .then(|| context.pools.get(&attempt.kind).and_then(ChildRef::get))
        .flatten();
    let Some(pool) = pool else {
        let why = format!(
            "node `{}` does not run `{}` agents now",
            context.node_name, attempt.kind
        );
        return answer(reply, &context.node_name, refusal(why));
    };
    let cancel = state.running.enter(&key, &attempt.run_id, attempt.epoch);
    let (report, outcome) = tokio::sync::oneshot::channel();
    let job = AttemptJob {
        run_id: attempt.run_id,
        epoch: attempt.epoch,
        task: attempt.task,
        attempt: attempt.attempt,
        seed: attempt.seed,
        inputs: attempt.inputs,
        timeout_secs: attempt.timeout_secs,
        cancel: cancel.clone(),
        approval: attempt.approval,
        services: context.services.clone(),
        scope: attempt.scope,
        billing: attempt.billing,
        report: ReportTo::Caller(report),
        trace: attempt.trace,
    };
    if let Err(error) = pool.cast(AgentPoolMsg::SubmitAttempt(Box::new(job))) {
        return answer(reply, &context.node_name, refusal(error.to_string()));
    }
    tracing::info!(%key, owner = %attempt.owner, "running an attempt for another node");
    tokio::spawn(answer_when_done(
        state.running.clone(),
        key,
        (context.node_name.clone(), reply),
        outcome,
    ));
}

async fn answer_when_done(
    running: Running,
    key: String,
    (node, reply): (String, RpcReplyPort<Wire<AttemptReply>>),
    outcome: tokio::sync::oneshot::Receiver<Result<AgentOutput, AgentError>>,
) {
    let outcome = outcome
        .await
        .unwrap_or_else(|_| Err(AgentError::Failed("the agent pool stopped".into())));
    running.remove(&key);
    answer(reply, &node, AttemptOutcome::from(&outcome));
}

/// A refusal another attempt may get past (elsewhere, or later).
fn refusal(why: String) -> AttemptOutcome {
    AttemptOutcome::Failed {
        error: why,
        retryable: true,
    }
}

fn answer(reply: RpcReplyPort<Wire<AttemptReply>>, node: &str, outcome: AttemptOutcome) {
    let reply_sent = reply.send(Wire::new(AttemptReply {
        node: node.into(),
        outcome,
    }));
    if reply_sent.is_err() {
        tracing::debug!("an attempt's outcome whose caller left");
    }
}
