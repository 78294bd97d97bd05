//! One actor per unfinished run. It is the only writer of its run's event log: every
//! step is appended before it is acted on, and on (re)start the state is rebuilt from
//! the log and interrupted work is picked up again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::RactorMessage;
use serde_json::{Map, Value};
use troupe_agents::{AgentError, AgentOutput, Approval};

use crate::EngineError;
use crate::agent_pool::{AttemptJob, ReportTo, idempotency_key};
use crate::approval_gate::{ApprovalGate, GateArgs, GateMsg};
use crate::backoff::retry_delay_ms;
use crate::context::EngineContext;
use crate::dispatch::{Destination, dispatch};
use crate::in_flight::InFlight;
use crate::outcome::AttemptOutcome;
use crate::state::{Decided, RunState, Step};
use troupe_store::events::{Decision, RunEvent, StoredEvent, TaskStatus};
use troupe_store::{RunId, StoreError, TaskId, WorkflowId};
use troupe_telemetry::RunTrace;

/// A person's decision on a gate, as it arrives from the API or the CLI.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecisionRequest {
    pub task: TaskId,
    pub decision: Decision,
    /// When given, the decision only counts if the gate still guards exactly these
    /// inputs (what the reviewer saw).
    pub expected_digest: Option<String>,
}

#[derive(RactorMessage)]
pub enum RunMsg {
    /// Look again for steps to take (after a timer, a decision, a result).
    Advance,
    AttemptFinished {
        task: TaskId,
        attempt: u32,
        outcome: Result<AgentOutput, AgentError>,
        /// The node that ran it; `None`: this one.
        node: Option<String>,
    },
    CancelRun {
        by: String,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    DecideApproval {
        request: DecisionRequest,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    MigrateRun {
        to_version: u32,
        by: String,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    /// From a gate that accepted a decision.
    RecordDecision {
        request: DecisionRequest,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    /// From a gate whose time ran out.
    ExpireApproval {
        task: TaskId,
    },
    GetState(RpcReplyPort<RunState>),
}

pub struct RunActor;

pub struct RunArgs {
    pub run_id: RunId,
    pub context: Arc<EngineContext>,
    /// The epoch this node holds the run in: every append names it.
    pub epoch: u64,
}

pub struct RunActorState {
    run: RunState,
    context: Arc<EngineContext>,
    epoch: u64,
    attempts: InFlight,
    gates: HashMap<TaskId, ActorRef<GateMsg>>,
    /// Applied to `run` but not yet written; see `stage`.
    staged: Vec<StoredEvent>,
    /// An `Advance` is in the mailbox and will flush what is staged.
    advance_queued: bool,
    /// The run's trace, from its record: attempts go under its root.
    trace: Option<RunTrace>,
}

impl Actor for RunActor {
    type Msg = RunMsg;
    type State = RunActorState;
    type Arguments = RunArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RunMsg>,
        args: RunArgs,
    ) -> Result<RunActorState, ActorProcessingErr> {
        let run = load_run(&args.context, &args.run_id).await?;
        let record = args.context.store.run(&args.run_id).await?;
        let mut state = RunActorState {
            trace: crate::traces::of_record(&record),
            run,
            context: args.context,
            epoch: args.epoch,
            attempts: InFlight::new(),
            gates: HashMap::new(),
            staged: Vec::new(),
            advance_queued: false,
        };
        resume_interrupted(&myself, &mut state).await?;
        myself.cast(RunMsg::Advance)?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RunMsg>,
        message: RunMsg,
        state: &mut RunActorState,
    ) -> Result<(), ActorProcessingErr> {
        let span = tracing::info_span!("run", run_id = %state.run.run_id);
        // What the run writes (its log, its outcomes) goes under its root span.
        let root = state.trace.map(|trace| trace.root);
        let handling =
            tracing::Instrument::instrument(handle_message(myself.clone(), message, state), span);
        let handled = match root {
            Some(root) => root.scope(handling).await,
            None => handling.await,
        };
        match handled {
            Err(error) if is_fenced(&error) => {
                // Another node took the run over: stop acting for it at once. Dropping
                // the state cancels the attempts in flight; the new owner resolves them.
                tracing::warn!(run_id = %state.run.run_id, epoch = state.epoch, "fenced: another node owns the run now");
                myself.stop(Some(FENCED.into()));
                Ok(())
            }
            handled => handled,
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RunMsg>,
        event: SupervisionEvent,
        state: &mut RunActorState,
    ) -> Result<(), ActorProcessingErr> {
        // Gates are our only children. One that stops has done its job; one that failed
        // is started again from the log, which still says the task is waiting.
        if let SupervisionEvent::ActorFailed(cell, error) = event {
            tracing::warn!(run_id = %state.run.run_id, %error, "approval gate failed; restarting it");
            state.gates.retain(|_, gate| gate.get_id() != cell.get_id());
            spawn_missing_gates(&myself, state).await?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<RunMsg>,
        state: &mut RunActorState,
    ) -> Result<(), ActorProcessingErr> {
        for gate in state.gates.values() {
            gate.stop(None);
        }
        Ok(())
    }
}

/// Why a fenced run actor stopped.
pub const FENCED: &str = "fenced";

fn is_fenced(error: &ActorProcessingErr) -> bool {
    matches!(
        error.downcast_ref::<EngineError>(),
        Some(EngineError::Store(StoreError::Fenced { .. }))
    )
}

async fn handle_message(
    myself: ActorRef<RunMsg>,
    message: RunMsg,
    state: &mut RunActorState,
) -> Result<(), ActorProcessingErr> {
    match message {
        RunMsg::Advance => state.advance_queued = false,
        RunMsg::AttemptFinished {
            task,
            attempt,
            outcome,
            node,
        } => {
            record_outcome(&myself, state, &task, attempt, outcome, node).await?;
            // Outcomes already waiting in the mailbox are staged before the queued
            // Advance writes them all at once: a busy run makes one write per batch of
            // finished attempts instead of one per attempt, and an idle one loses a
            // single mailbox hop.
            if !state.advance_queued {
                state.advance_queued = true;
                myself.cast(RunMsg::Advance)?;
            }
            return Ok(());
        }
        RunMsg::CancelRun { by, reply } => {
            let result = cancel(state, by).await;
            reply_unless_fenced(reply, result)?;
        }
        RunMsg::DecideApproval { request, reply } => forward_decision(state, request, reply),
        RunMsg::MigrateRun {
            to_version,
            by,
            reply,
        } => {
            let result = migrate(state, to_version, by).await;
            reply_unless_fenced(reply, result)?;
        }
        RunMsg::RecordDecision { request, reply } => {
            let result = record_decision(state, request).await;
            reply_unless_fenced(reply, result)?;
        }
        RunMsg::ExpireApproval { task } => {
            if task_status(&state.run, &task) == Some(TaskStatus::WaitingApproval) {
                append(
                    state,
                    vec![RunEvent::ApprovalExpired { task: task.clone() }],
                )
                .await?;
            }
            state.gates.remove(&task);
        }
        RunMsg::GetState(reply) => {
            if reply.send(state.run.clone()).is_err() {
                tracing::debug!("run state asked by a caller that left");
            }
            return Ok(());
        }
    }
    advance(&myself, state).await
}

/// Moves the run to `to_version` of its workflow when the plan allows it (checked here,
/// against the state the run has now), then folds its log again against that version.
async fn migrate(
    state: &mut RunActorState,
    to_version: u32,
    by: String,
) -> Result<(), EngineError> {
    let store = &state.context.store;
    let from_version = store.run(&state.run.run_id).await?.workflow_version;
    let workflow_id = WorkflowId::from(state.run.workflow.id.as_str());
    let stored = store
        .workflow_version(&workflow_id, Some(to_version))
        .await?;
    let name = format!("{workflow_id} v{to_version}");
    let to = state.context.parse_workflow(&stored.source, &name)?;
    let plan = state.run.migration(&to, (from_version, to_version));
    if !plan.refusals.is_empty() {
        return Err(EngineError::MigrationRefused(plan.refusals.join("; ")));
    }
    let migrated = RunEvent::RunMigrated {
        by,
        from_version,
        to_version,
    };
    append(state, vec![migrated]).await?;
    state.run = load_run(&state.context, &state.run.run_id).await?;
    Ok(())
}

pub(crate) async fn load_run(
    context: &EngineContext,
    run_id: &RunId,
) -> Result<RunState, EngineError> {
    let events = context.store.run_events(run_id).await?;
    let Some(RunEvent::RunStarted {
        workflow_id,
        workflow_version,
        ..
    }) = events.first().map(|first| &first.event)
    else {
        return Err(EngineError::Store(StoreError::Corrupt(format!(
            "run {run_id} has no run_started event"
        ))));
    };
    // A migrated run is read against the version it moved to last.
    let workflow_version = events
        .iter()
        .rev()
        .find_map(|stored| match stored.event {
            RunEvent::RunMigrated { to_version, .. } => Some(to_version),
            _ => None,
        })
        .unwrap_or(*workflow_version);
    let stored = context
        .store
        .workflow_version(workflow_id, Some(workflow_version))
        .await?;
    let workflow = context.parse_workflow(
        &stored.source,
        &format!("{workflow_id} v{workflow_version}"),
    )?;
    let mut run = RunState::new(run_id, Arc::new(workflow));
    run.max_fan_out = context.settings.max_fan_out as usize;
    for event in &events {
        run.apply(event);
    }
    Ok(run)
}

/// After a restart or a take-over: an attempt that was running is resolved from the
/// outcome its node recorded, else submitted again under the same attempt number and
/// idempotency key; waiting approvals get their gates back.
async fn resume_interrupted(
    myself: &ActorRef<RunMsg>,
    state: &mut RunActorState,
) -> Result<(), ActorProcessingErr> {
    let running: Vec<(TaskId, u32, Value)> = state
        .run
        .tasks()
        .values()
        .filter(|task| task.status == TaskStatus::Running)
        .map(|task| {
            (
                task.id.clone(),
                task.attempts,
                task.inputs.clone().unwrap_or(Value::Null),
            )
        })
        .collect();
    for (task, attempt, inputs) in running {
        let key = idempotency_key(&state.run.run_id, &task, attempt);
        if let Some(outcome) = recorded_outcome(state, &key).await? {
            tracing::info!(run_id = %state.run.run_id, task_id = %task, attempt, "resolving an interrupted attempt from its recorded outcome");
            let (node, outcome) = outcome;
            record_outcome(
                myself,
                state,
                &task,
                attempt,
                outcome.into_result(),
                Some(node),
            )
            .await?;
            continue;
        }
        tracing::info!(run_id = %state.run.run_id, task_id = %task, attempt, "resuming interrupted attempt");
        submit(myself, state, (&task, attempt, true), inputs).await?;
    }
    spawn_missing_gates(myself, state).await?;
    let retry_due = state
        .run
        .tasks()
        .values()
        .filter_map(|task| task.retry_at_ms)
        .min();
    if let Some(at) = retry_due {
        schedule_advance(myself, at, state.context.clock.now_ms());
    }
    Ok(())
}

/// The outcome the node that ran attempt `key` recorded, if it did. A record that does
/// not read is ignored (and the attempt runs again) rather than failing the run.
async fn recorded_outcome(
    state: &RunActorState,
    key: &str,
) -> Result<Option<(String, AttemptOutcome)>, EngineError> {
    let Some(record) = state.context.store.attempt_outcome(key).await? else {
        return Ok(None);
    };
    match serde_json::from_value(record.outcome) {
        Ok(outcome) => Ok(Some((record.node, outcome))),
        Err(error) => {
            tracing::warn!(%error, key, node = %record.node, "an unreadable attempt outcome; running the attempt again");
            Ok(None)
        }
    }
}

/// Takes every step the state allows until none is left, then finishes the run if it
/// is done. Bounded: each round changes at least one task, and there are finitely many.
async fn advance(
    myself: &ActorRef<RunMsg>,
    state: &mut RunActorState,
) -> Result<(), ActorProcessingErr> {
    let max_rounds = state.run.tasks().len() * 4 + 4;
    for _ in 0..max_rounds {
        let running = state.run.running();
        let free_slots =
            (state.context.settings.max_concurrent_tasks as usize).saturating_sub(running);
        let mut steps = state.run.plan(state.context.clock.now_ms(), free_slots);
        if steps.is_empty() {
            break;
        }
        crate::budget::check_fan_outs(&state.context, &state.run, &mut steps).await?;
        let events: Vec<RunEvent> = steps.iter().map(|step| step_event(state, step)).collect();
        if steps.iter().any(|step| matches!(step, Step::Finish { .. })) {
            forget_outcomes(state).await;
        }
        append(state, events).await?;
        for step in steps {
            perform(myself, state, step).await?;
        }
        if state.run.finished.is_some() {
            break;
        }
    }
    Ok(flush(state).await?)
}

fn step_event(state: &RunActorState, step: &Step) -> RunEvent {
    match step.clone() {
        Step::Skip { task } => RunEvent::TaskSkipped { task },
        Step::Fail { task, reason } => RunEvent::TaskFailed { task, reason },
        Step::Cancel { task, reason } => RunEvent::TaskCancelled { task, reason },
        Step::Expand { task, items } => RunEvent::FanOutExpanded { task, items },
        Step::RequestApproval { task, inputs } => {
            let timeout_secs = state
                .run
                .definition(task.as_str())
                .and_then(|definition| definition.approval_timeout_secs)
                .unwrap_or(state.context.settings.approval_timeout_secs);
            let expires_at_ms = state.context.clock.now_ms().saturating_add(
                i64::try_from(timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            );
            RunEvent::ApprovalRequested {
                inputs_digest: digest(&inputs),
                task,
                inputs,
                expires_at_ms,
            }
        }
        Step::StartAttempt {
            task,
            attempt,
            inputs,
        } => RunEvent::AttemptStarted {
            idempotency_key: idempotency_key(&state.run.run_id, &task, attempt),
            node: choose_node(state, &task),
            task,
            attempt,
            inputs,
        },
        Step::Finish { status } => RunEvent::RunFinished {
            status,
            reason: None,
        },
    }
}

/// Drops the run's recorded attempt outcomes as it finishes: the log holds every one.
/// Before the run's last event, so that a watcher who stops the node on seeing it
/// interrupts no write.
async fn forget_outcomes(state: &RunActorState) {
    if let Err(error) = state
        .context
        .store
        .forget_attempt_outcomes(&state.run.run_id)
        .await
    {
        tracing::warn!(%error, "could not forget the run's attempt outcomes");
    }
}

/// The node a new attempt of `task` goes to; `None` when no node can take it now (the
/// attempt then fails at once, saying why, and is retried like any failure).
fn choose_node(state: &RunActorState, task: &TaskId) -> Option<String> {
    let definition = state.run.definition(task.as_str())?;
    let free = state.context.node_slots.available_permits();
    state
        .context
        .placement
        .choose(&definition.agent, &definition.runs_on, free)
        .ok()
}

async fn perform(
    myself: &ActorRef<RunMsg>,
    state: &mut RunActorState,
    step: Step,
) -> Result<(), ActorProcessingErr> {
    match step {
        Step::StartAttempt {
            task,
            attempt,
            inputs,
        } => submit(myself, state, (&task, attempt, false), inputs).await?,
        Step::RequestApproval { .. } => spawn_missing_gates(myself, state).await?,
        Step::Finish { status } => {
            tracing::info!(run_id = %state.run.run_id, status = status.as_str(), "run finished");
            myself.stop(Some(status.as_str().into()));
        }
        Step::Skip { .. } | Step::Fail { .. } | Step::Cancel { .. } | Step::Expand { .. } => {}
    }
    Ok(())
}

/// Appends events to the log, then publishes them: nothing is acted on or shown that
/// is not durable.
async fn append(state: &mut RunActorState, events: Vec<RunEvent>) -> Result<(), EngineError> {
    stage(state, events);
    flush(state).await
}

/// Folds events into the state without writing them yet, so that they can go to the
/// store in one write with the steps they lead to. Nothing may be *done* on the strength
/// of a staged event before `flush`; if the write fails the actor fails, and its
/// successor rebuilds the state from what the log really holds.
fn stage(state: &mut RunActorState, events: Vec<RunEvent>) {
    let at_ms = state.context.clock.now_ms();
    for event in events {
        let stored = StoredEvent {
            run_id: state.run.run_id.clone(),
            seq: state.run.next_seq,
            at_ms,
            event,
        };
        state.run.apply(&stored);
        state.staged.push(stored);
    }
}

async fn flush(state: &mut RunActorState) -> Result<(), EngineError> {
    if state.staged.is_empty() {
        return Ok(());
    }
    state
        .context
        .store
        .append_events(&state.staged, state.epoch)
        .await?;
    for event in state.staged.drain(..) {
        if let RunEvent::RunFinished { status, .. } = &event.event {
            crate::metrics::run_finished(*status, event.at_ms - state.run.started_at_ms);
            let ended = crate::traces::Ended {
                workflow: &state.run.workflow.name,
                run_id: &state.run.run_id,
                status: *status,
                started_ms: state.run.started_at_ms,
                ended_ms: event.at_ms,
                cost_usd: state.run.cost_usd(),
            };
            crate::traces::run_ended(state.trace.as_ref(), &ended);
        }
        // No subscriber is fine: the log is the record.
        let _no_subscribers = state.context.events.send(event);
    }
    Ok(())
}

/// Submits `attempt` of `task`; `resumed` when it was started before this actor (by
/// this run's previous owner, or before a restart) and may have run already.
async fn submit(
    myself: &ActorRef<RunMsg>,
    state: &mut RunActorState,
    (task, attempt, resumed): (&TaskId, u32, bool),
    inputs: Value,
) -> Result<(), ActorProcessingErr> {
    let Some(definition) = state.run.definition(task.as_str()) else {
        return Ok(());
    };
    let cancel = state.attempts.start(task);
    let approval = state
        .run
        .tasks()
        .get(task)
        .and_then(|task| task.approval.as_ref())
        .and_then(|approval| {
            approval
                .decision
                .as_ref()
                .map(|Decided { decision, .. }| Approval {
                    approver: decision.approver.clone(),
                    approved: decision.approved,
                    comment: decision.comment.clone(),
                })
        });
    let job = AttemptJob {
        run_id: state.run.run_id.clone(),
        epoch: state.epoch,
        task: task.clone(),
        attempt,
        seed: crate::seed::of_attempt(state.run.seed, task, attempt),
        inputs: match inputs {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        timeout_secs: definition.timeout_secs,
        cancel,
        approval,
        services: state.context.services.clone(),
        scope: state.run.memory_scope(),
        billing: Some(state.run.billing(task)),
        report: ReportTo::Run(myself.clone()),
        trace: state.trace.map(|trace| trace.root),
    };
    let destination = Destination {
        kind: &definition.agent,
        runs_on: &definition.runs_on,
        recorded: state
            .run
            .tasks()
            .get(task)
            .and_then(|task| task.node.clone()),
        resumed,
    };
    dispatch(myself, &state.context, destination, job)
}

async fn record_outcome(
    myself: &ActorRef<RunMsg>,
    state: &mut RunActorState,
    task: &TaskId,
    attempt: u32,
    outcome: Result<AgentOutput, AgentError>,
    node: Option<String>,
) -> Result<(), ActorProcessingErr> {
    let node = Some(node.unwrap_or_else(|| state.context.node_name.clone()));
    let current = state
        .run
        .tasks()
        .get(task)
        .filter(|state| state.status == TaskStatus::Running && state.attempts == attempt);
    if current.is_none() {
        tracing::debug!(run_id = %state.run.run_id, task_id = %task, attempt, "stale attempt outcome ignored");
        return Ok(());
    }
    state.attempts.finished(task);
    let event = match outcome {
        Ok(output) => RunEvent::AttemptSucceeded {
            task: task.clone(),
            attempt,
            outputs: Value::Object(output.outputs),
            cost_usd: output.cost_usd,
            node,
        },
        Err(_) if state.run.cancel_requested => RunEvent::TaskCancelled {
            task: task.clone(),
            reason: "run cancelled".into(),
        },
        Err(error) => {
            let max_retries = state
                .run
                .definition(task.as_str())
                .map_or(0, |definition| definition.max_retries);
            // A retried run counts a task's retries from its attempts before the retry.
            let base = state.run.tasks().get(task).map_or(0, |t| t.attempt_base);
            let retry_at_ms = (error.is_retryable() && attempt.saturating_sub(base) <= max_retries)
                .then(|| {
                    let settings = &state.context.settings;
                    state.context.clock.now_ms()
                        + retry_delay_ms(
                            attempt + 1,
                            settings.retry_base_delay_ms,
                            settings.retry_max_delay_ms,
                        ) as i64
                });
            if let Some(at) = retry_at_ms {
                schedule_advance(myself, at, state.context.clock.now_ms());
            }
            RunEvent::AttemptFailed {
                task: task.clone(),
                attempt,
                error: error.to_string(),
                retry_at_ms,
                node,
            }
        }
    };
    stage(state, vec![event]);
    Ok(())
}

fn schedule_advance(myself: &ActorRef<RunMsg>, at_ms: i64, now_ms: i64) {
    let delay = Duration::from_millis(u64::try_from(at_ms - now_ms).unwrap_or(0));
    myself.send_after(delay, || RunMsg::Advance);
}

async fn cancel(state: &mut RunActorState, by: String) -> Result<(), EngineError> {
    if let Some(status) = state.run.finished {
        return Err(EngineError::RunFinished {
            run: state.run.run_id.clone(),
            status: status.as_str().into(),
        });
    }
    if !state.run.cancel_requested {
        append(state, vec![RunEvent::RunCancelRequested { by }]).await?;
    }
    state.attempts.cancel_all();
    for gate in state.gates.values() {
        gate.stop(Some("run cancelled".into()));
    }
    state.gates.clear();
    Ok(())
}

fn forward_decision(
    state: &RunActorState,
    request: DecisionRequest,
    reply: RpcReplyPort<Result<(), EngineError>>,
) {
    let refusal = match (state.run.finished, task_status(&state.run, &request.task)) {
        (Some(status), _) => Some(EngineError::RunFinished {
            run: state.run.run_id.clone(),
            status: status.as_str().into(),
        }),
        (None, None) => Some(EngineError::InvalidRequest(format!(
            "run `{}` has no task `{}`",
            state.run.run_id, request.task
        ))),
        (None, Some(TaskStatus::WaitingApproval)) => None,
        (None, Some(status)) => Some(EngineError::NotWaitingForApproval {
            run: state.run.run_id.clone(),
            task: request.task.clone(),
            status: status.as_str().into(),
        }),
    };
    if let Some(error) = refusal {
        reply_with(reply, Err(error));
        return;
    }
    match state.gates.get(&request.task) {
        Some(gate) => {
            if let Err(error) = gate.cast(GateMsg::DecideApproval { request, reply }) {
                tracing::warn!(%error, "approval gate unreachable");
            }
        }
        None => reply_with(
            reply,
            Err(EngineError::Restarting {
                what: "the approval gate".into(),
            }),
        ),
    }
}

async fn record_decision(
    state: &mut RunActorState,
    request: DecisionRequest,
) -> Result<(), EngineError> {
    // The gate checked the request; the status may still have changed since (expiry or
    // cancellation raced it), and then the decision must not count.
    match task_status(&state.run, &request.task) {
        Some(TaskStatus::WaitingApproval) => {}
        status => {
            return Err(EngineError::NotWaitingForApproval {
                run: state.run.run_id.clone(),
                task: request.task,
                status: status.map_or("unknown", TaskStatus::as_str).into(),
            });
        }
    }
    state.gates.remove(&request.task);
    append(
        state,
        vec![RunEvent::ApprovalDecided {
            task: request.task,
            decision: request.decision,
        }],
    )
    .await
}

async fn spawn_missing_gates(
    myself: &ActorRef<RunMsg>,
    state: &mut RunActorState,
) -> Result<(), ActorProcessingErr> {
    let waiting: Vec<(TaskId, String, i64, i64)> = state
        .run
        .tasks()
        .values()
        .filter(|task| {
            task.status == TaskStatus::WaitingApproval && !state.gates.contains_key(&task.id)
        })
        .filter_map(|task| {
            task.approval.as_ref().map(|approval| {
                (
                    task.id.clone(),
                    approval.inputs_digest.clone(),
                    approval.requested_at_ms,
                    approval.expires_at_ms,
                )
            })
        })
        .collect();
    for (task, inputs_digest, requested_at_ms, expires_at_ms) in waiting {
        let args = GateArgs {
            run: myself.clone(),
            run_id: state.run.run_id.clone(),
            task: task.clone(),
            inputs_digest,
            requested_at_ms,
            expires_at_ms,
            started_by: state.run.starter(),
            clock: state.context.clock.clone(),
            separate_approver: state.run.workflow.separate_approver,
        };
        let (gate, _) = Actor::spawn_linked(None, ApprovalGate, args, myself.get_cell()).await?;
        state.gates.insert(task, gate);
    }
    Ok(())
}

fn task_status(run: &RunState, task: &TaskId) -> Option<TaskStatus> {
    run.tasks().get(task).map(|state| state.status)
}

/// Sends `result` to the caller; a fenced one is also the actor's error, which stops it
/// (see [`RunActor::handle`]): its state holds what it could not write.
fn reply_unless_fenced(
    reply: RpcReplyPort<Result<(), EngineError>>,
    result: Result<(), EngineError>,
) -> Result<(), EngineError> {
    let fenced = match &result {
        Err(EngineError::Store(StoreError::Fenced { run, epoch })) => Some(StoreError::Fenced {
            run: run.clone(),
            epoch: *epoch,
        }),
        _ => None,
    };
    reply_with(reply, result);
    fenced.map_or(Ok(()), |fenced| Err(fenced.into()))
}

fn reply_with(reply: RpcReplyPort<Result<(), EngineError>>, result: Result<(), EngineError>) {
    if reply.send(result).is_err() {
        tracing::debug!("caller left before the reply");
    }
}

/// SHA-256 of the inputs' canonical JSON (keys sorted at every depth), so the digest
/// does not depend on map order.
pub fn digest(inputs: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(inputs, &mut canonical);
    troupe_store::digest::sha256_hex(&canonical)
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|left, right| left.0.cmp(right.0));
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
