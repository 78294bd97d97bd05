//! One actor per approval a run waits for. It holds the gate's terms (which task, the
//! digest of the exact inputs to approve, who may decide, until when), checks a
//! decision against them, and hands an accepted decision to its run to record. A
//! decision is consumed once: the gate stops after passing one on.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use crate::EngineError;
use crate::metrics::Waiting;
use crate::run_actor::{DecisionRequest, RunMsg};
use troupe_store::TaskId;
use troupe_store::clock::Clock;
use troupe_store::events::Person;

#[derive(RactorMessage)]
pub enum GateMsg {
    DecideApproval {
        request: DecisionRequest,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    /// The gate's time is up.
    ExpireApproval,
}

pub struct ApprovalGate;

pub struct GateArgs {
    pub run: ActorRef<RunMsg>,
    pub run_id: troupe_store::RunId,
    pub task: TaskId,
    pub inputs_digest: String,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    pub started_by: Person,
    pub clock: Arc<dyn Clock>,
    pub separate_approver: bool,
}

/// A gate's terms, and its place in `/metrics` for as long as it waits (however the
/// actor ends: its state is dropped then).
pub struct Gate {
    terms: GateArgs,
    _waiting: Waiting,
}

impl Actor for ApprovalGate {
    type Msg = GateMsg;
    type State = Gate;
    type Arguments = GateArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<GateMsg>,
        args: GateArgs,
    ) -> Result<Gate, ActorProcessingErr> {
        let remaining_ms = u64::try_from(args.expires_at_ms - args.clock.now_ms()).unwrap_or(0);
        myself.send_after(Duration::from_millis(remaining_ms), || {
            GateMsg::ExpireApproval
        });
        Ok(Gate {
            _waiting: Waiting::open(args.requested_at_ms),
            terms: args,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<GateMsg>,
        message: GateMsg,
        Gate { terms: gate, .. }: &mut Gate,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GateMsg::DecideApproval { request, reply } => match check(gate, &request) {
                Ok(()) => {
                    gate.run.cast(RunMsg::RecordDecision { request, reply })?;
                    myself.stop(Some("decided".into()));
                }
                Err(error) => {
                    if reply.send(Err(error)).is_err() {
                        tracing::debug!("decider left before the refusal");
                    }
                }
            },
            GateMsg::ExpireApproval => {
                tracing::info!(run_id = %gate.run_id, task_id = %gate.task, "approval expired; failing closed");
                gate.run.cast(RunMsg::ExpireApproval {
                    task: gate.task.clone(),
                })?;
                myself.stop(Some("expired".into()));
            }
        }
        Ok(())
    }
}

fn check(gate: &GateArgs, request: &DecisionRequest) -> Result<(), EngineError> {
    let approver = request.decision.approver();
    if approver.name.trim().is_empty() {
        return Err(EngineError::ApprovalRefused(
            "the approver must be named".into(),
        ));
    }
    if gate.separate_approver && approver.same_as(&gate.started_by) {
        return Err(EngineError::ApprovalRefused(format!(
            "`{}` started this run and the workflow requires a different approver",
            approver.name
        )));
    }
    if let Some(expected) = &request.expected_digest
        && *expected != gate.inputs_digest
    {
        return Err(EngineError::ApprovalRefused(
            "the task's inputs differ from the ones you reviewed; reload and review again".into(),
        ));
    }
    if gate.clock.now_ms() >= gate.expires_at_ms {
        return Err(EngineError::ApprovalRefused(
            "the approval has expired".into(),
        ));
    }
    Ok(())
}
