//! The router: parent and supervisor of the workers, and the one door to them. It sends
//! each request to the least-loaded worker of its kind, refuses with "overloaded, retry
//! after" when every worker's queue is full, and restarts a worker that fails (one for
//! one, within the restart intensity) without touching the others' requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::RactorMessage;
use troupe_supervision::{ChildEvent, Children, RestartPolicy};

use crate::batch::Drafting;
use crate::embedding::Embedder;
use crate::errors::InferenceError;
use crate::generation::LocalModel;
use crate::serve::embedding_worker::{
    EmbedJob, EmbeddingWorker, EmbeddingWorkerArgs, EmbeddingWorkerMsg,
};
use crate::serve::generation_worker::{
    Admission, GenerationWorker, GenerationWorkerArgs, GenerationWorkerMsg,
};
use crate::serve::{ServiceConfig, WorkerKind, WorkerStatus};

/// How long a refused caller should wait before trying again.
const RETRY_AFTER_MS: u64 = 1000;

#[derive(Clone)]
pub struct GenerationPool {
    pub model: LocalModel,
    pub workers: usize,
    pub max_running: usize,
    /// Requests that may wait per worker beyond those running.
    pub queue: usize,
    pub max_step_tokens: usize,
    pub drafting: Drafting,
}

#[derive(Clone)]
pub struct EmbeddingPool {
    pub model: Arc<Embedder>,
    pub workers: usize,
    /// Requests admitted per worker (running and waiting).
    pub queue: usize,
}

pub struct RouterArgs {
    pub generation: Option<GenerationPool>,
    pub embedding: Option<EmbeddingPool>,
    pub policy: RestartPolicy,
}

impl From<ServiceConfig> for RouterArgs {
    fn from(config: ServiceConfig) -> Self {
        Self {
            generation: config.generation,
            embedding: config.embedding,
            policy: config.policy,
        }
    }
}

#[derive(RactorMessage)]
pub enum RouterMsg {
    Generate(Box<Admission>),
    Embed(EmbedJob),
    Status(RpcReplyPort<Vec<WorkerStatus>>),
    #[cfg(test)]
    PanicGenerationWorker(usize),
}

enum WorkerRef {
    Generation(ActorRef<GenerationWorkerMsg>),
    Embedding(ActorRef<EmbeddingWorkerMsg>),
}

impl WorkerRef {
    fn cell(&self) -> ActorCell {
        match self {
            WorkerRef::Generation(actor) => actor.get_cell(),
            WorkerRef::Embedding(actor) => actor.get_cell(),
        }
    }
}

struct Slot {
    kind: WorkerKind,
    worker: WorkerRef,
    load: Arc<AtomicUsize>,
    capacity: usize,
    restarts: u64,
}

pub struct RouterState {
    args: RouterArgs,
    slots: Vec<Slot>,
    /// Which worker is which slot, and the restart rule.
    children: Children<usize>,
}

pub struct Router;

impl Actor for Router {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RouterArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut slots = Vec::new();
        let mut children = Children::new("inference_router", args.policy);
        let generation_workers = args.generation.as_ref().map_or(0, |pool| pool.workers);
        let embedding_workers = args.embedding.as_ref().map_or(0, |pool| pool.workers);
        for kind in std::iter::repeat_n(WorkerKind::Generation, generation_workers).chain(
            std::iter::repeat_n(WorkerKind::Embedding, embedding_workers),
        ) {
            let (worker, load, capacity) = spawn_worker(&myself, &args, kind).await?;
            children.started(slots.len(), &worker.cell());
            slots.push(Slot {
                kind,
                worker,
                load,
                capacity,
                restarts: 0,
            });
        }
        Ok(RouterState {
            args,
            slots,
            children,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMsg::Generate(admission) => match state.pick(WorkerKind::Generation) {
                Ok(slot) => {
                    if let WorkerRef::Generation(worker) = &slot.worker {
                        slot.load.fetch_add(1, Ordering::AcqRel);
                        worker.cast(GenerationWorkerMsg::Admit(admission))?;
                    }
                }
                Err(error) => {
                    let _ = admission.admitted.send(Err(error));
                }
            },
            RouterMsg::Embed(job) => match state.pick(WorkerKind::Embedding) {
                Ok(slot) => {
                    if let WorkerRef::Embedding(worker) = &slot.worker {
                        slot.load.fetch_add(1, Ordering::AcqRel);
                        worker.cast(EmbeddingWorkerMsg::Embed(job))?;
                    }
                }
                Err(error) => {
                    let _ = job.reply.send(Err(error));
                }
            },
            RouterMsg::Status(reply) => {
                let status = state
                    .slots
                    .iter()
                    .map(|slot| WorkerStatus {
                        kind: slot.kind,
                        load: slot.load.load(Ordering::Acquire),
                        capacity: slot.capacity,
                        restarts: slot.restarts,
                    })
                    .collect();
                let _ = reply.send(status);
            }
            #[cfg(test)]
            RouterMsg::PanicGenerationWorker(index) => {
                if let Some(WorkerRef::Generation(worker)) =
                    state.slots.get(index).map(|slot| &slot.worker)
                {
                    worker.cast(GenerationWorkerMsg::PanicOnNextStep)?;
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match state.children.on_event(&event) {
            ChildEvent::Restart { key: index, .. } => {
                let kind = state.slots[index].kind;
                let (worker, load, _) = spawn_worker(&myself, &state.args, kind).await?;
                state.children.started(index, &worker.cell());
                let slot = &mut state.slots[index];
                slot.worker = worker;
                slot.load = load;
                slot.restarts += 1;
            }
            ChildEvent::GaveUp { key: index, reason } => {
                let kind = state.slots[index].kind;
                return Err(format!("inference worker {index} ({kind:?}) {reason}").into());
            }
            ChildEvent::Stopped { .. } | ChildEvent::Ignored => {}
        }
        Ok(())
    }
}

impl RouterState {
    /// The least-loaded worker of `kind` with room, or why there is none.
    fn pick(&mut self, kind: WorkerKind) -> Result<&mut Slot, InferenceError> {
        let slot = self
            .slots
            .iter_mut()
            .filter(|slot| slot.kind == kind)
            .min_by_key(|slot| slot.load.load(Ordering::Acquire))
            .ok_or(InferenceError::NoWorkers { kind: kind.name() })?;
        if slot.load.load(Ordering::Acquire) >= slot.capacity {
            return Err(InferenceError::Overloaded {
                retry_after_ms: RETRY_AFTER_MS,
            });
        }
        Ok(slot)
    }
}

async fn spawn_worker(
    router: &ActorRef<RouterMsg>,
    args: &RouterArgs,
    kind: WorkerKind,
) -> Result<(WorkerRef, Arc<AtomicUsize>, usize), ActorProcessingErr> {
    let load = Arc::new(AtomicUsize::new(0));
    match kind {
        WorkerKind::Generation => {
            let pool = args
                .generation
                .as_ref()
                .ok_or("no generation model is configured")?;
            let (worker, _) = Actor::spawn_linked(
                None,
                GenerationWorker,
                GenerationWorkerArgs {
                    model: pool.model.clone(),
                    max_running: pool.max_running,
                    max_step_tokens: pool.max_step_tokens,
                    drafting: pool.drafting,
                    load: load.clone(),
                },
                router.get_cell(),
            )
            .await?;
            let capacity = pool.max_running + pool.queue;
            Ok((WorkerRef::Generation(worker), load, capacity))
        }
        WorkerKind::Embedding => {
            let pool = args
                .embedding
                .as_ref()
                .ok_or("no embedding model is configured")?;
            let (worker, _) = Actor::spawn_linked(
                None,
                EmbeddingWorker,
                EmbeddingWorkerArgs {
                    model: pool.model.clone(),
                    load: load.clone(),
                },
                router.get_cell(),
            )
            .await?;
            Ok((WorkerRef::Embedding(worker), load, pool.queue.max(1)))
        }
    }
}
