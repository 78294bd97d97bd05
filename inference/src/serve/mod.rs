//! Serving models to many callers at once: a [`router::Router`] actor supervising
//! generation workers (continuous batching) and embedding workers (batched), behind
//! [`InferenceService`], the handle the rest of Troupe uses.

pub mod embedding_worker;
pub mod generation_worker;
pub mod router;
#[cfg(test)]
mod tests;

use ractor::{Actor, ActorRef};
use tokio::sync::mpsc;
use troupe_supervision::RestartPolicy;

use crate::errors::InferenceError;
use crate::generation::LocalModel;
use crate::sequence::{Generated, GenerationRequest};
use embedding_worker::EmbedJob;
use generation_worker::Admission;
pub use router::{EmbeddingPool, GenerationPool};
use router::{Router, RouterArgs, RouterMsg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    Generation,
    Embedding,
}

impl WorkerKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkerKind::Generation => "generation",
            WorkerKind::Embedding => "embedding",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerStatus {
    pub kind: WorkerKind,
    /// Requests admitted and not finished.
    pub load: usize,
    pub capacity: usize,
    pub restarts: u64,
}

/// What a generation stream delivers: text as it is produced, then exactly one of
/// `Done` or `Failed`.
#[derive(Debug)]
pub enum StreamEvent {
    Text(String),
    Done(Generated),
    Failed(InferenceError),
}

/// The output of one admitted request. Dropping it cancels the request: the worker
/// frees the sequence before its next pass.
pub struct GenerationStream {
    events: mpsc::UnboundedReceiver<StreamEvent>,
    ended: bool,
}

impl GenerationStream {
    /// The next event; after `Done` or `Failed`, `None`. A worker that stopped without
    /// finishing (it crashed and was restarted) shows as `Failed`.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        if self.ended {
            return None;
        }
        let event = self
            .events
            .recv()
            .await
            .unwrap_or(StreamEvent::Failed(InferenceError::WorkerStopped));
        self.ended = matches!(event, StreamEvent::Done(_) | StreamEvent::Failed(_));
        Some(event)
    }

    /// Waits for the whole result.
    pub async fn finish(mut self) -> Result<Generated, InferenceError> {
        while let Some(event) = self.next().await {
            match event {
                StreamEvent::Text(_) => {}
                StreamEvent::Done(generated) => return Ok(generated),
                StreamEvent::Failed(error) => return Err(error),
            }
        }
        Err(InferenceError::WorkerStopped)
    }
}

pub struct ServiceConfig {
    pub generation: Option<GenerationPool>,
    pub embedding: Option<EmbeddingPool>,
    pub policy: RestartPolicy,
}

/// The handle to a node's inference actors. Cloning shares them.
#[derive(Clone)]
pub struct InferenceService {
    router: ActorRef<RouterMsg>,
    generation_model: Option<LocalModel>,
    embedding_dimensions: Option<usize>,
}

impl InferenceService {
    /// Spawns the router and its workers under `supervisor` (when given; the router
    /// escalates a worker crash loop to it).
    pub async fn start(
        config: ServiceConfig,
        supervisor: Option<ractor::ActorCell>,
    ) -> Result<Self, InferenceError> {
        let generation_model = config.generation.as_ref().map(|pool| pool.model.clone());
        let embedding_dimensions = config
            .embedding
            .as_ref()
            .map(|pool| pool.model.dimensions());
        let args = RouterArgs {
            generation: config.generation,
            embedding: config.embedding,
            policy: config.policy,
        };
        let spawned = match supervisor {
            Some(parent) => Actor::spawn_linked(None, Router, args, parent).await,
            None => Actor::spawn(None, Router, args).await,
        };
        let (router, _) = spawned.map_err(|error| InferenceError::Service(error.to_string()))?;
        Ok(Self {
            router,
            generation_model,
            embedding_dimensions,
        })
    }

    /// The generation model (for its tokenizer, chat template and description).
    pub fn generation_model(&self) -> Option<&LocalModel> {
        self.generation_model.as_ref()
    }

    pub fn embedding_dimensions(&self) -> Option<usize> {
        self.embedding_dimensions
    }

    /// Admits `request` on the least-loaded generation worker. Refusals (bad request,
    /// overloaded, no model) come back here, before any text.
    pub async fn generate(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, InferenceError> {
        let (events, receiver) = mpsc::unbounded_channel();
        let admitted = ractor::call!(self.router, |admitted| {
            RouterMsg::Generate(Box::new(Admission {
                request,
                events,
                admitted,
            }))
        })
        .map_err(|_| InferenceError::WorkerStopped)?;
        admitted?;
        Ok(GenerationStream {
            events: receiver,
            ended: false,
        })
    }

    /// One unit vector per text, embedded in a batch with whatever else is waiting.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, InferenceError> {
        ractor::call!(self.router, |reply| RouterMsg::Embed(EmbedJob {
            texts,
            reply
        }))
        .map_err(|_| InferenceError::WorkerStopped)?
    }

    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, InferenceError> {
        ractor::call!(self.router, RouterMsg::Status).map_err(|_| InferenceError::WorkerStopped)
    }

    /// Stops the router and its workers; requests in flight end with `WorkerStopped`.
    pub fn stop(&self) {
        self.router.stop(None);
    }

    #[cfg(test)]
    pub(crate) fn router(&self) -> &ActorRef<RouterMsg> {
        &self.router
    }
}
