//! One pool per agent kind: admits attempts up to a queue capacity (backpressure beyond
//! it), runs each under the node-wide slot limit, its timeout and its cancellation
//! token, and reports the outcome to the run actor. A panic inside an agent fails only
//! that attempt. The attempts are tasks of the pool's `JoinSet`: a pool that stops
//! aborts them, and the run that submitted one cancels it when the run stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use troupe_agents::{
    Agent, AgentContext, AgentError, AgentOutput, AgentServices, Approval, Billing,
    CancellationToken, MemoryScope,
};

use crate::EngineError;
use crate::outcome::AttemptOutcome;
use crate::run_actor::RunMsg;
use troupe_store::{AttemptRecord, RunId, Store, TaskId};
use troupe_telemetry::{TraceParent, spans};

pub struct AttemptJob {
    pub run_id: RunId,
    /// The epoch of the run that started the attempt, recorded with its outcome.
    pub epoch: u64,
    pub task: TaskId,
    pub attempt: u32,
    /// The attempt's sampling seed (see [`crate::seed`]).
    pub seed: u64,
    pub inputs: Map<String, Value>,
    pub timeout_secs: Option<u64>,
    pub cancel: CancellationToken,
    pub approval: Option<Approval>,
    pub services: AgentServices,
    pub scope: MemoryScope,
    /// The run and task its model calls are billed to, with their budgets; `None` for
    /// an invocation.
    pub billing: Option<Billing>,
    pub report: ReportTo,
    /// The span the attempt's span goes under: its run's root (whatever node runs it),
    /// or the request that invoked the agent.
    pub trace: Option<TraceParent>,
}

/// Where an attempt's outcome goes: the run actor that submitted it, or a caller
/// waiting on a channel (the gateway, for an attempt another node's run placed here).
pub enum ReportTo {
    Run(ActorRef<RunMsg>),
    Caller(tokio::sync::oneshot::Sender<Result<AgentOutput, AgentError>>),
}

impl ReportTo {
    /// Hands over the outcome; `false` when no one is there to take it.
    fn send(self, task: &TaskId, attempt: u32, outcome: Result<AgentOutput, AgentError>) -> bool {
        match self {
            ReportTo::Run(run) => run
                .cast(RunMsg::AttemptFinished {
                    task: task.clone(),
                    attempt,
                    outcome,
                    node: None,
                })
                .is_ok(),
            ReportTo::Caller(caller) => caller.send(outcome).is_ok(),
        }
    }
}

/// Where the pool records each outcome before reporting it, and as which node.
#[derive(Clone)]
pub struct OutcomeBook {
    pub store: Store,
    pub node: String,
}

impl OutcomeBook {
    /// Records `outcome` under the attempt's idempotency key. A cancelled attempt is not
    /// recorded: it did not run to an outcome, and whoever takes the run over runs it.
    async fn record(&self, job: &AttemptJob, outcome: &Result<AgentOutput, AgentError>) {
        if matches!(outcome, Err(AgentError::Cancelled)) {
            return;
        }
        let record = AttemptRecord {
            run_id: job.run_id.clone(),
            idempotency_key: idempotency_key(&job.run_id, &job.task, job.attempt),
            epoch: job.epoch,
            node: self.node.clone(),
            outcome: serde_json::to_value(AttemptOutcome::from(outcome)).unwrap_or_default(),
        };
        if let Err(error) = self.store.record_attempt_outcome(&record).await {
            // The owner is told anyway and appends the outcome; only a take-over before
            // that append would run the attempt again.
            tracing::warn!(%error, key = %record.idempotency_key, "could not record an attempt's outcome");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PoolLoad {
    /// Admitted and not finished: running plus waiting for a slot.
    pub admitted: usize,
    /// Holding one of the node's slots: running now (the rest of `admitted` is queued).
    pub running: usize,
    pub capacity: usize,
}

#[derive(RactorMessage)]
pub enum AgentPoolMsg {
    /// Runs the attempt, or, beyond capacity, answers the run at once with a failed
    /// attempt saying the node is overloaded (retried with backoff like any failure).
    SubmitAttempt(Box<AttemptJob>),
    GetLoad(RpcReplyPort<PoolLoad>),
}

pub struct AgentPool;

pub struct AgentPoolArgs {
    pub agent: Arc<dyn Agent>,
    pub node_slots: Arc<Semaphore>,
    pub capacity: usize,
    /// `None` only in tests of the pool alone.
    pub outcomes: Option<OutcomeBook>,
}

pub struct AgentPoolState {
    args: AgentPoolArgs,
    /// Admitted and not yet reaped; `admitted` drops those that have ended.
    attempts: JoinSet<()>,
    /// Shared with the attempts, which count themselves in while they hold a slot.
    running: Arc<AtomicUsize>,
    /// The attempts admitted, by idempotency key, with the reports of submissions that
    /// joined them.
    joiners: Joiners,
}

/// The same attempt submitted again while it runs (a new owner resuming an attempt
/// this node runs for the old one) joins it: it gets the same outcome, and the agent
/// runs once.
#[derive(Default, Clone)]
struct Joiners(Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<ReportTo>>>>);

impl Joiners {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<String, Vec<ReportTo>>) -> R,
    ) -> R {
        // Nothing is left half-changed under the lock: a poisoned map is still whole.
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Joins `job` to its running twin: `Err(job)` when there is none (and it is now
    /// the one running).
    fn join(&self, key: &str, job: Box<AttemptJob>) -> Result<(), Box<AttemptJob>> {
        self.with(|running| match running.get_mut(key) {
            Some(joined) => {
                joined.push(job.report);
                Ok(())
            }
            None => {
                running.insert(key.to_string(), Vec::new());
                Err(job)
            }
        })
    }
}

impl AgentPoolState {
    /// The number of attempts admitted and not finished.
    fn admitted(&mut self) -> usize {
        while self.attempts.try_join_next().is_some() {}
        self.attempts.len()
    }
}

impl Actor for AgentPool {
    type Msg = AgentPoolMsg;
    type State = AgentPoolState;
    type Arguments = AgentPoolArgs;

    async fn pre_start(
        &self,
        _: ActorRef<AgentPoolMsg>,
        args: AgentPoolArgs,
    ) -> Result<AgentPoolState, ActorProcessingErr> {
        Ok(AgentPoolState {
            args,
            attempts: JoinSet::new(),
            running: Arc::new(AtomicUsize::new(0)),
            joiners: Joiners::default(),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<AgentPoolMsg>,
        message: AgentPoolMsg,
        state: &mut AgentPoolState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AgentPoolMsg::SubmitAttempt(job) => {
                let key = idempotency_key(&job.run_id, &job.task, job.attempt);
                if state.admitted() >= state.args.capacity
                    && !state.joiners.with(|running| running.contains_key(&key))
                {
                    let refusal = EngineError::Overloaded {
                        retry_after_secs: 1,
                    };
                    let outcome = Err(AgentError::Failed(refusal.to_string()));
                    let AttemptJob {
                        task,
                        attempt,
                        report,
                        ..
                    } = *job;
                    if !report.send(&task, attempt, outcome) {
                        tracing::debug!("refused an attempt whose run is gone");
                    }
                } else if let Err(job) = state.joiners.join(&key, job) {
                    let agent = state.args.agent.clone();
                    let slots = state.args.node_slots.clone();
                    let running = state.running.clone();
                    let book = state.args.outcomes.clone();
                    let joiners = state.joiners.clone();
                    state
                        .attempts
                        .spawn(run_attempt(agent, slots, running, book, joiners, *job));
                } else {
                    tracing::info!(%key, "joined the same attempt running here");
                }
            }
            AgentPoolMsg::GetLoad(reply) => {
                let load = PoolLoad {
                    admitted: state.admitted(),
                    running: state.running.load(Ordering::Relaxed),
                    capacity: state.args.capacity,
                };
                if reply.send(load).is_err() {
                    tracing::debug!("load asked by a caller that left");
                }
            }
        }
        Ok(())
    }
}

async fn run_attempt(
    agent: Arc<dyn Agent>,
    slots: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    book: Option<OutcomeBook>,
    joiners: Joiners,
    job: AttemptJob,
) {
    let kind = agent.kind().to_string();
    let span = spans::invoke_agent(&kind, job.run_id.as_str(), job.task.as_str(), job.attempt);
    if let Some(parent) = &job.trace {
        parent.adopt(&span);
    }
    let started = std::time::Instant::now();
    let outcome =
        tracing::Instrument::instrument(execute(agent, slots, running, &job), span.clone()).await;
    match &outcome {
        Ok(output) => spans::agent_ended(&span, Ok(output.cost_usd)),
        Err(error) => {
            let word = crate::metrics::outcome_word(&outcome);
            spans::agent_ended(&span, Err((word, &error.to_string())));
        }
    }
    crate::metrics::attempt_ended(&kind, &outcome, started.elapsed().as_secs_f64());
    if let Some(book) = book {
        book.record(&job, &outcome).await;
    }
    let AttemptJob {
        run_id,
        task,
        attempt,
        report,
        ..
    } = job;
    let key = idempotency_key(&run_id, &task, attempt);
    let joined = joiners
        .with(|running| running.remove(&key))
        .unwrap_or_default();
    for report in joined {
        if !report.send(&task, attempt, outcome.clone()) {
            tracing::debug!(%key, "a joined submission's run is gone");
        }
    }
    if !report.send(&task, attempt, outcome) {
        // The run actor is gone (restarting, stopped or fenced); its successor finds
        // the recorded outcome, or runs the attempt again under the same key.
        tracing::warn!(%run_id, task_id = %task, "attempt outcome had no run to go to");
    }
}

/// Counts an attempt as running while it holds a node slot.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(count: Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::Relaxed);
        Running(count)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn execute(
    agent: Arc<dyn Agent>,
    slots: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    job: &AttemptJob,
) -> Result<AgentOutput, AgentError> {
    let _slot = tokio::select! {
        slot = slots.acquire_owned() => slot.map_err(|_| AgentError::Failed("the node is shutting down".into()))?,
        () = job.cancel.cancelled() => return Err(AgentError::Cancelled),
    };
    let _running = Running::start(running);
    let context = AgentContext {
        idempotency_key: idempotency_key(&job.run_id, &job.task, job.attempt),
        attempt: job.attempt,
        seed: job.seed,
        cancel: job.cancel.clone(),
        timeout_secs: job.timeout_secs,
        progress: None,
        approval: job.approval.clone(),
        services: job.services.clone(),
        scope: job.scope.clone(),
        billing: job.billing.clone(),
    };
    // A panic in the agent is caught here and becomes a failed attempt instead of
    // unwinding through the engine; on timeout the agent's future is dropped, which
    // stops it at its next await.
    let run = std::panic::AssertUnwindSafe(agent.run(job.inputs.clone(), context)).catch_unwind();
    let caught = match job.timeout_secs {
        Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), run).await {
            Ok(caught) => caught,
            Err(_) => {
                job.cancel.cancel();
                return Err(AgentError::TimedOut { secs });
            }
        },
        None => run.await,
    };
    caught.unwrap_or_else(|payload| {
        Err(AgentError::Failed(format!(
            "the agent panicked: {}",
            panic_message(payload)
        )))
    })
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// `run:task:attempt`: the same for a resumed attempt as for the interrupted one.
pub fn idempotency_key(run_id: &RunId, task: &TaskId, attempt: u32) -> String {
    format!("{run_id}:{task}:{attempt}")
}

#[cfg(test)]
mod tests {

    use ractor::{Actor, ActorProcessingErr};
    use troupe_agents::TypedAgent;

    use super::*;

    /// Never finishes on its own: holds its admission until cancelled.
    struct Stuck;

    #[async_trait::async_trait]
    impl TypedAgent for Stuck {
        const KIND: &'static str = "stuck";
        const DESCRIPTION: &'static str = "waits for cancellation";
        type Inputs = Map<String, Value>;
        async fn attempt(
            &self,
            _: Map<String, Value>,
            context: AgentContext,
        ) -> Result<AgentOutput, AgentError> {
            context.cancel.cancelled().await;
            Err(AgentError::Cancelled)
        }
    }

    /// Stands in for a run actor: forwards outcomes to the test.
    struct Sink(tokio::sync::mpsc::UnboundedSender<Result<AgentOutput, AgentError>>);

    impl Actor for Sink {
        type Msg = RunMsg;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<RunMsg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ActorRef<RunMsg>,
            message: RunMsg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            if let RunMsg::AttemptFinished { outcome, .. } = message {
                self.0.send(outcome)?;
            }
            Ok(())
        }
    }

    /// Attempt `attempt` of task `t` of run `r`: the same number is the same attempt.
    fn job(
        reply_to: &ActorRef<RunMsg>,
        cancel: &CancellationToken,
        attempt: u32,
    ) -> Box<AttemptJob> {
        Box::new(AttemptJob {
            run_id: "r".into(),
            epoch: 1,
            task: "t".into(),
            attempt,
            seed: 1,
            inputs: Map::new(),
            timeout_secs: None,
            cancel: cancel.clone(),
            approval: None,
            services: AgentServices::default(),
            scope: MemoryScope::default(),
            billing: None,
            report: ReportTo::Run(reply_to.clone()),
            trace: None,
        })
    }

    #[tokio::test]
    async fn beyond_its_capacity_the_pool_refuses_with_retry_after_and_recovers() {
        let (outcomes, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (sink, _) = Actor::spawn(None, Sink(outcomes), ()).await.unwrap();
        let args = AgentPoolArgs {
            agent: Arc::new(Stuck),
            node_slots: Arc::new(Semaphore::new(1)),
            capacity: 2,
            outcomes: None,
        };
        let (pool, _) = Actor::spawn(None, AgentPool, args).await.unwrap();
        let first = CancellationToken::new();
        let second = CancellationToken::new();
        pool.cast(AgentPoolMsg::SubmitAttempt(job(&sink, &first, 1)))
            .unwrap();
        pool.cast(AgentPoolMsg::SubmitAttempt(job(&sink, &second, 2)))
            .unwrap();
        pool.cast(AgentPoolMsg::SubmitAttempt(job(
            &sink,
            &CancellationToken::new(),
            3,
        )))
        .unwrap();
        let refused = received.recv().await.unwrap();
        assert_eq!(
            refused,
            Err(AgentError::Failed(
                "the node is overloaded; retry after 1 s".into()
            )),
            "the third is refused at once"
        );
        // One node slot: the first attempt runs once it holds it, the second queues.
        let mut load = ractor::call!(pool, AgentPoolMsg::GetLoad).unwrap();
        for _ in 0..100 {
            if load.running == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            load = ractor::call!(pool, AgentPoolMsg::GetLoad).unwrap();
        }
        assert_eq!(
            load,
            PoolLoad {
                admitted: 2,
                running: 1,
                capacity: 2
            }
        );

        second.cancel();
        assert_eq!(
            received.recv().await.unwrap(),
            Err(AgentError::Cancelled),
            "a queued attempt can be cancelled"
        );
        first.cancel();
        assert_eq!(received.recv().await.unwrap(), Err(AgentError::Cancelled));
        for _ in 0..100 {
            if ractor::call!(pool, AgentPoolMsg::GetLoad).unwrap().admitted == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            ractor::call!(pool, AgentPoolMsg::GetLoad).unwrap().running,
            0,
            "a cancelled attempt no longer counts as running"
        );
        pool.cast(AgentPoolMsg::SubmitAttempt(job(
            &sink,
            &CancellationToken::new(),
            4,
        )))
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            ractor::call!(pool, AgentPoolMsg::GetLoad).unwrap().admitted,
            1,
            "room again"
        );
        assert!(received.try_recv().is_err(), "and no refusal");
    }

    /// Counts its runs; finishes when told.
    struct Counted(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);

    #[async_trait::async_trait]
    impl TypedAgent for Counted {
        const KIND: &'static str = "counted";
        const DESCRIPTION: &'static str = "counts its attempts";
        type Inputs = Map<String, Value>;
        async fn attempt(
            &self,
            _: Map<String, Value>,
            _: AgentContext,
        ) -> Result<AgentOutput, AgentError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1.notified().await;
            Ok(AgentOutput::default())
        }
    }

    #[tokio::test]
    async fn the_same_attempt_submitted_again_while_it_runs_joins_it() {
        let (outcomes, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (sink, _) = Actor::spawn(None, Sink(outcomes), ()).await.unwrap();
        let (runs, release) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(tokio::sync::Notify::new()),
        );
        let args = AgentPoolArgs {
            agent: Arc::new(Counted(runs.clone(), release.clone())),
            node_slots: Arc::new(Semaphore::new(4)),
            capacity: 1,
            outcomes: None,
        };
        let (pool, _) = Actor::spawn(None, AgentPool, args).await.unwrap();
        let cancel = CancellationToken::new();
        pool.cast(AgentPoolMsg::SubmitAttempt(job(&sink, &cancel, 1)))
            .unwrap();
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // At capacity, yet the twin is not refused: it joins.
        pool.cast(AgentPoolMsg::SubmitAttempt(job(&sink, &cancel, 1)))
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(received.try_recv().is_err(), "neither refused nor finished");
        release.notify_one();
        assert_eq!(received.recv().await.unwrap(), Ok(AgentOutput::default()));
        assert_eq!(received.recv().await.unwrap(), Ok(AgentOutput::default()));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the agent ran once");
    }
}
