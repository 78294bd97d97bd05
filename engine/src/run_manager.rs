//! Starts runs, resumes unfinished ones at start-up, and supervises their actors: a run
//! actor that fails is started again from its log; one that keeps failing (beyond the
//! restart intensity) is ended `failed` with the reason in its log, never left hanging.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};
use ractor_cluster::RactorMessage;
use serde_json::Value;

use crate::EngineError;
use crate::command::RunCommand;
use crate::context::EngineContext;
use crate::run_actor::{RunActor, RunArgs, RunMsg};
use troupe_store::events::{Person, RunEvent, RunStatus, StoredEvent};
use troupe_store::{RunId, RunOwnership, RunRecord, StoreError, TaskId, WorkflowId};
use troupe_supervision::{ChildEvent, Children, RestartPolicy};
use troupe_telemetry::{RunTrace, TraceParent};

/// What the starter of a run chooses besides the workflow.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The workflow's latest version when `None`.
    pub version: Option<u32>,
    /// Overrides of the workflow's variables; each must exist and keep its type.
    pub variables: BTreeMap<String, Value>,
    /// The run's sampling seed (see [`crate::seed`]); the run's id gives one when `None`.
    pub seed: Option<u64>,
}

pub struct StartRun {
    pub workflow_id: WorkflowId,
    pub options: RunOptions,
    pub started_by: Person,
    /// The span the run starts under (the request's), for its trace.
    pub trace: Option<TraceParent>,
    /// The schedule tick the run is for: its id is then the tick's (see
    /// [`RunId::for_tick`]), so a second start of the same tick fails.
    pub tick_ms: Option<i64>,
}

#[derive(RactorMessage)]
pub enum RunManagerMsg {
    StartRun(StartRun, RpcReplyPort<Result<RunId, EngineError>>),
    /// A command for a run: applied by its actor here, or, when another node owns the
    /// run and `may_forward`, handed to that node (a forwarded command is not handed on
    /// again).
    Command {
        command: RunCommand,
        may_forward: bool,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    GetLiveRun {
        run_id: RunId,
        reply: RpcReplyPort<Option<ActorRef<RunMsg>>>,
    },
    /// From the cluster: take these runs over (each by compare-and-set on the epoch
    /// given) and resume those won.
    Adopt(Vec<RunOwnership>),
    /// From the cluster: this node fenced itself; stop acting for every run at once,
    /// without ending any (their new owners go on with them).
    LetGoAll,
    /// The runs this node holds.
    Held(RpcReplyPort<Vec<RunId>>),
    /// Continue a failed or cancelled run as a new attempt (see `state::retry`): the
    /// tasks that run again, in order.
    Retry {
        run: RunId,
        from: Option<TaskId>,
        by: String,
        reply: RpcReplyPort<Result<Vec<TaskId>, EngineError>>,
    },
}

pub struct RunManager;

pub struct RunManagerState {
    context: Arc<EngineContext>,
    runs: HashMap<RunId, ActorRef<RunMsg>>,
    /// The epoch this node holds each of its runs in, across their actors' restarts.
    epochs: HashMap<RunId, u64>,
    children: Children<RunId>,
}

impl Actor for RunManager {
    type Msg = RunManagerMsg;
    type State = RunManagerState;
    type Arguments = Arc<EngineContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<RunManagerMsg>,
        context: Arc<EngineContext>,
    ) -> Result<RunManagerState, ActorProcessingErr> {
        let mut state = RunManagerState {
            children: Children::new("run_manager", restart_policy(&context)),
            context,
            runs: HashMap::new(),
            epochs: HashMap::new(),
        };
        if state.context.alone {
            let unfinished = state.context.store.unfinished_runs().await?;
            adopt(&myself, &mut state, unfinished).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RunManagerMsg>,
        message: RunManagerMsg,
        state: &mut RunManagerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RunManagerMsg::StartRun(request, reply) => {
                // The run's first writes go under the request that started it.
                let result = match request.trace {
                    Some(parent) => parent.scope(start_run(&myself, state, request)).await,
                    None => start_run(&myself, state, request).await,
                };
                if reply.send(result).is_err() {
                    tracing::debug!("run starter left before the reply");
                }
            }
            RunManagerMsg::Command {
                command,
                may_forward,
                reply,
            } => match state.runs.get(command.run()) {
                Some(run) => run.cast(command.into_message(reply))?,
                None => reply_not_live(&state.context, command, may_forward, reply).await,
            },
            RunManagerMsg::GetLiveRun { run_id, reply } => {
                if reply.send(state.runs.get(&run_id).cloned()).is_err() {
                    tracing::debug!("caller left");
                }
            }
            RunManagerMsg::Adopt(runs) => adopt(&myself, state, runs).await?,
            RunManagerMsg::Retry {
                run,
                from,
                by,
                reply,
            } => {
                let retried = retry(&myself, state, &run, from.as_ref(), by).await;
                if reply.send(retried).is_err() {
                    tracing::debug!("retry caller left before the reply");
                }
            }
            RunManagerMsg::LetGoAll => let_go_all(state),
            RunManagerMsg::Held(reply) => {
                if reply.send(state.epochs.keys().cloned().collect()).is_err() {
                    tracing::debug!("caller left");
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RunManagerMsg>,
        event: SupervisionEvent,
        state: &mut RunManagerState,
    ) -> Result<(), ActorProcessingErr> {
        match state.children.on_event(&event) {
            ChildEvent::Stopped { key: run_id } => {
                state.runs.remove(&run_id);
                state.epochs.remove(&run_id);
                state.children.forget(&run_id);
            }
            ChildEvent::Restart { key: run_id, .. } => {
                state.runs.remove(&run_id);
                if let Err(error) = spawn_run(&myself, state, &run_id).await {
                    give_up(state, &run_id, &error.to_string()).await?;
                }
            }
            ChildEvent::GaveUp {
                key: run_id,
                reason,
            } => {
                state.runs.remove(&run_id);
                state.children.forget(&run_id);
                give_up(state, &run_id, &format!("the run's actor {reason}")).await?;
            }
            ChildEvent::Ignored => {}
        }
        Ok(())
    }
}

fn restart_policy(context: &EngineContext) -> RestartPolicy {
    RestartPolicy {
        max_restarts: context.settings.restart_intensity,
        period: Duration::from_secs(context.settings.restart_period_secs),
    }
}

async fn start_run(
    myself: &ActorRef<RunManagerMsg>,
    state: &mut RunManagerState,
    request: StartRun,
) -> Result<RunId, EngineError> {
    if !state.context.is_acting() {
        return Err(EngineError::NotMember);
    }
    let store = &state.context.store;
    let stored = store
        .version_to_start(&request.workflow_id, request.options.version)
        .await?;
    let workflow = state
        .context
        .parse_workflow(&stored.source, stored.workflow_id.as_str())?;
    state.context.check_policy(&workflow).await?;
    let variables = workflow
        .resolve_variables(&request.options.variables)
        .map_err(|errors| {
            EngineError::InvalidVariables(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    let run_id = request.tick_ms.map_or_else(RunId::generate, |tick| {
        RunId::for_tick(&stored.workflow_id, tick)
    });
    let now = state.context.clock.now_ms();
    let (trace, trace_parent) = RunTrace::begin(request.trace)
        .map(RunTrace::to_strings)
        .unwrap_or_default();
    let record = RunRecord {
        run_id: run_id.clone(),
        workflow_id: stored.workflow_id.clone(),
        workflow_version: stored.version,
        workflow_name: workflow.name.clone(),
        status: RunStatus::Running,
        started_by: request.started_by.name.clone(),
        created_at_ms: now,
        finished_at_ms: 0,
        project: troupe_store::project_of(&workflow),
        owner: state.context.node_name.clone(),
        epoch: FIRST_EPOCH,
        trace,
        trace_parent,
        tick_ms: request.tick_ms,
    };
    let first = StoredEvent {
        run_id: run_id.clone(),
        seq: 0,
        at_ms: now,
        event: RunEvent::RunStarted {
            workflow_id: stored.workflow_id,
            workflow_version: stored.version,
            variables,
            started_by: request.started_by.name,
            started_by_id: request.started_by.user_id,
            seed: request.options.seed,
        },
    };
    store.create_run(&record, &first).await?;
    crate::metrics::run_started();
    let _no_subscribers = state.context.events.send(first);
    state.epochs.insert(run_id.clone(), FIRST_EPOCH);
    spawn_run(myself, state, &run_id).await?;
    Ok(run_id)
}

/// The epoch a run starts in, on the node that started it.
const FIRST_EPOCH: u64 = 1;

/// Takes `runs` over and resumes them: each in a new epoch, so that an actor of a
/// previous owner, were one still running, can append nothing. A run another node took
/// first is left to it; one this node holds already is skipped.
async fn adopt(
    myself: &ActorRef<RunManagerMsg>,
    state: &mut RunManagerState,
    runs: Vec<RunOwnership>,
) -> Result<(), EngineError> {
    let store = state.context.store.clone();
    for run in runs {
        if state.epochs.contains_key(&run.run_id) {
            continue;
        }
        let Some(epoch) = store
            .take_over_run(&run.run_id, run.epoch, &state.context.node_name)
            .await?
        else {
            tracing::info!(run_id = %run.run_id, "another node took the run on first");
            continue;
        };
        tracing::info!(run_id = %run.run_id, epoch, previous = %run.owner, "resuming run");
        state.epochs.insert(run.run_id.clone(), epoch);
        if let Err(error) = spawn_run(myself, state, &run.run_id).await {
            tracing::error!(run_id = %run.run_id, %error, "cannot resume run; ending it failed");
            give_up(state, &run.run_id, &error.to_string()).await?;
        }
    }
    Ok(())
}

/// Appends `run_retried` to a finished run (in the epoch that finished it, so a second
/// retry racing this one is fenced) and takes the run on again here.
async fn retry(
    myself: &ActorRef<RunManagerMsg>,
    state: &mut RunManagerState,
    run_id: &RunId,
    from: Option<&TaskId>,
    by: String,
) -> Result<Vec<TaskId>, EngineError> {
    let record = state.context.store.run(run_id).await?;
    let run = crate::run_actor::load_run(&state.context, run_id).await?;
    let reset = run.retry_set(from.map(TaskId::as_str))?;
    if state.runs.contains_key(run_id) {
        // The run ended, and its actor is still stopping: a moment more.
        return Err(EngineError::Restarting {
            what: format!("run `{run_id}`'s actor"),
        });
    }
    let retried = StoredEvent {
        run_id: run_id.clone(),
        seq: run.next_seq,
        at_ms: state.context.clock.now_ms(),
        event: RunEvent::RunRetried {
            by,
            reset: reset.clone(),
        },
    };
    state
        .context
        .store
        .append_events(&[retried], record.epoch)
        .await?;
    let ownership = RunOwnership {
        run_id: run_id.clone(),
        owner: record.owner,
        epoch: record.epoch,
    };
    adopt(myself, state, vec![ownership]).await?;
    Ok(reset)
}

/// Stops every run actor without ending its run: they belong to other nodes now.
fn let_go_all(state: &mut RunManagerState) {
    for (run_id, run) in state.runs.drain() {
        tracing::warn!(%run_id, "letting the run go: this node fenced itself");
        run.stop(Some(crate::run_actor::FENCED.into()));
    }
    state.epochs.clear();
}

async fn spawn_run(
    myself: &ActorRef<RunManagerMsg>,
    state: &mut RunManagerState,
    run_id: &RunId,
) -> Result<(), EngineError> {
    // After this manager restarted, the previous run actors are being killed and may
    // still hold their names for a moment: wait for them rather than fail the run.
    let Some(&epoch) = state.epochs.get(run_id) else {
        return Err(EngineError::Actor(format!(
            "run {run_id} is not held by this node"
        )));
    };
    for _ in 0..NAME_RELEASE_TRIES {
        let args = RunArgs {
            run_id: run_id.clone(),
            context: state.context.clone(),
            epoch,
        };
        match Actor::spawn_linked(
            Some(state.context.run_name(run_id)),
            RunActor,
            args,
            myself.get_cell(),
        )
        .await
        {
            Ok((run, _)) => {
                state.children.started(run_id.clone(), &run.get_cell());
                state.runs.insert(run_id.clone(), run);
                return Ok(());
            }
            Err(SpawnErr::ActorAlreadyRegistered(_)) => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Err(error) => {
                return Err(EngineError::Actor(format!(
                    "cannot start run {run_id}: {error}"
                )));
            }
        }
    }
    Err(EngineError::Actor(format!(
        "cannot start run {run_id}: its previous actor did not stop"
    )))
}

const NAME_RELEASE_TRIES: u32 = 40;

/// Answers a command for a run that has no actor here: it is finished, it does not
/// exist, or another node runs it, which the command is handed to when it may be.
async fn reply_not_live(
    context: &EngineContext,
    command: RunCommand,
    may_forward: bool,
    reply: RpcReplyPort<Result<(), EngineError>>,
) {
    let run_id = command.run().clone();
    let error = match context.store.run(&run_id).await {
        Ok(record)
            if record.status == RunStatus::Running
                && may_forward
                && record.owner != context.node_name
                && context.placement.reachable(&record.owner) =>
        {
            let forwarding = context.placement.forward(record.owner, command);
            tokio::spawn(async move {
                if reply.send(forwarding.await).is_err() {
                    tracing::debug!("caller left before the owner answered");
                }
            });
            return;
        }
        Ok(record) if record.status == RunStatus::Running => EngineError::RunElsewhere {
            run: run_id,
            owner: record.owner,
        },
        Ok(record) => EngineError::RunFinished {
            run: run_id.clone(),
            status: record.status.as_str().into(),
        },
        Err(error) => error.into(),
    };
    if reply.send(Err(error)).is_err() {
        tracing::debug!("caller left before the reply");
    }
}

/// Ends a run this node holds `failed`, and lets it go. A run another node took over
/// is left to it.
async fn give_up(
    state: &mut RunManagerState,
    run_id: &RunId,
    reason: &str,
) -> Result<(), EngineError> {
    let Some(epoch) = state.epochs.remove(run_id) else {
        return Ok(());
    };
    match end_failed(&state.context, run_id, epoch, reason).await {
        Err(EngineError::Store(StoreError::Fenced { .. })) => {
            tracing::warn!(%run_id, "not ending the run: another node took it over");
            Ok(())
        }
        ended => ended,
    }
}

async fn end_failed(
    context: &EngineContext,
    run_id: &RunId,
    epoch: u64,
    reason: &str,
) -> Result<(), EngineError> {
    let events = context.store.run_events(run_id).await?;
    let next_seq = events.last().map_or(0, |last| last.seq + 1);
    let now = context.clock.now_ms();
    let finished = StoredEvent {
        run_id: run_id.clone(),
        seq: next_seq,
        at_ms: now,
        event: RunEvent::RunFinished {
            status: RunStatus::Failed,
            reason: Some(reason.into()),
        },
    };
    tracing::error!(%run_id, reason, "run ended failed by its supervisor");
    context.store.append_events(&[finished], epoch).await?;
    let started = events.first().map_or(now, |first| first.at_ms);
    crate::metrics::run_finished(RunStatus::Failed, now - started);
    let record = context.store.run(run_id).await?;
    let ended = crate::traces::Ended {
        workflow: &record.workflow_name,
        run_id,
        status: RunStatus::Failed,
        started_ms: started,
        ended_ms: now,
        cost_usd: 0.0,
    };
    crate::traces::run_ended(crate::traces::of_record(&record).as_ref(), &ended);
    // Only once the end is in the log: attempts may have ended since the log's last
    // outcome, and if another node took the run over (the append is fenced) their
    // records are its evidence. Left behind by a crash here, they are only litter.
    if let Err(error) = context.store.forget_attempt_outcomes(run_id).await {
        tracing::warn!(%error, %run_id, "could not forget the run's attempt outcomes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use troupe_agents::{AgentServices, Registry};
    use troupe_store::clock::SystemClock;
    use troupe_store::{AttemptRecord, Store};

    use super::*;
    use crate::context::NodeIdentity;
    use crate::placement::HereOnly;
    use crate::policy::ExecutionPolicy;

    fn alone(store: &Store) -> Arc<EngineContext> {
        let identity = NodeIdentity {
            id: EngineContext::new_node_id(),
            name: "a".into(),
            alone: true,
            placement: Arc::new(HereOnly {
                node: "a".into(),
                labels: Vec::new(),
            }),
        };
        EngineContext::new(
            identity,
            store.clone(),
            Registry::new(),
            troupe_config::EngineSettings::default(),
            AgentServices::default(),
            Arc::new(SystemClock),
            ExecutionPolicy::new(&[]),
        )
    }

    /// Run `run` in epoch 1 on node a, with one recorded attempt outcome.
    async fn running_with_an_outcome(store: &Store, run: &str) {
        let record = RunRecord {
            run_id: run.into(),
            workflow_id: "wf".into(),
            workflow_version: 1,
            workflow_name: "Workflow".into(),
            status: RunStatus::Running,
            started_by: "ada".into(),
            created_at_ms: 5,
            finished_at_ms: 0,
            project: "default".into(),
            owner: "a".into(),
            epoch: 1,
            trace: String::new(),
            trace_parent: String::new(),
            tick_ms: None,
        };
        let started = StoredEvent {
            run_id: run.into(),
            seq: 0,
            at_ms: 5,
            event: RunEvent::RunStarted {
                workflow_id: "wf".into(),
                workflow_version: 1,
                variables: Default::default(),
                started_by: "ada".into(),
                started_by_id: None,
                seed: None,
            },
        };
        store.create_run(&record, &started).await.unwrap();
        let outcome = AttemptRecord {
            run_id: run.into(),
            idempotency_key: format!("{run}:t:1"),
            epoch: 1,
            node: "a".into(),
            outcome: json!({"succeeded": {"outputs": {}, "cost_usd": 0.0}}),
        };
        store.record_attempt_outcome(&outcome).await.unwrap();
    }

    /// A run its supervisor gives up on ends failed and forgets its attempt outcomes,
    /// only once the end is in the log: if another node took it over, the end is fenced
    /// and the outcomes stay, as that node's evidence of what ran.
    #[tokio::test]
    async fn a_run_ended_failed_forgets_its_outcomes_unless_another_node_took_it_over() {
        let store = Store::memory().await.unwrap();
        let context = alone(&store);
        running_with_an_outcome(&store, "taken").await;
        running_with_an_outcome(&store, "ended").await;
        store.take_over_run(&"taken".into(), 1, "b").await.unwrap();

        match end_failed(&context, &"taken".into(), 1, "crash loop").await {
            Err(EngineError::Store(StoreError::Fenced { epoch: 1, .. })) => {}
            other => panic!("ended a run another node took over: {other:?}"),
        }
        assert!(store.attempt_outcome("taken:t:1").await.unwrap().is_some());

        end_failed(&context, &"ended".into(), 1, "crash loop")
            .await
            .unwrap();
        assert_eq!(store.attempt_outcome("ended:t:1").await.unwrap(), None);
        let events = store.run_events(&"ended".into()).await.unwrap();
        match &events.last().unwrap().event {
            RunEvent::RunFinished { status, reason } => {
                assert_eq!(
                    (status, reason.as_deref()),
                    (&RunStatus::Failed, Some("crash loop"))
                )
            }
            other => panic!("the log ends with {other:?}"),
        }
    }
}
