//! Serving models to many callers at once: a [`router::Router`] actor supervising
//! generation workers (continuous batching) and embedding workers (batched), behind
//! [`InferenceService`], the handle the rest of Troupe uses.

pub mod embedding_worker;
pub mod generation_worker;
pub mod router;
pub mod setup;
#[cfg(test)]
mod tests;
pub mod timing;

use ractor::{Actor, ActorRef};
use tokio::sync::mpsc;
use troupe_supervision::{ChildRef, ChildSpec, RestartPolicy};

use crate::embedding::Embedded;
use crate::errors::InferenceError;
use crate::generation::LocalModel;
use crate::sequence::{Generated, GenerationRequest};
use embedding_worker::EmbedJob;
use generation_worker::Admission;
pub use router::{EmbeddingPool, GenerationPool};
use router::{Router, RouterArgs, RouterMsg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
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
    /// New text, and how many tokens have been generated so far.
    Text {
        text: String,
        tokens: usize,
    },
    Done(Generated),
    Failed(InferenceError),
}

/// The output of one admitted request. Dropping it cancels the request: the worker
/// frees the sequence before its next pass.
pub struct GenerationStream {
    events: mpsc::UnboundedReceiver<StreamEvent>,
    ended: bool,
    timing: timing::Timing,
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
        match &event {
            StreamEvent::Text { .. } => self.timing.text(),
            StreamEvent::Done(generated) => self.timing.done(generated.token_ids.len()),
            StreamEvent::Failed(_) => {}
        }
        Some(event)
    }

    /// Waits for the whole result.
    pub async fn finish(mut self) -> Result<Generated, InferenceError> {
        while let Some(event) = self.next().await {
            match event {
                StreamEvent::Text { .. } => {}
                StreamEvent::Done(generated) => return Ok(generated),
                StreamEvent::Failed(error) => return Err(error),
            }
        }
        Err(InferenceError::WorkerStopped)
    }
}

#[derive(Clone)]
pub struct ServiceConfig {
    pub generation: Option<GenerationPool>,
    pub embedding: Option<EmbeddingPool>,
    pub policy: RestartPolicy,
}

/// The handle to a node's inference actors. Its `ChildRef` follows the router across
/// restarts. Cloning shares it.
#[derive(Clone)]
pub struct InferenceService {
    router: ChildRef<RouterMsg>,
    generation_model: Option<LocalModel>,
    /// The embedding model's name and width, when one is loaded.
    embedding: Option<(String, usize)>,
}

impl InferenceService {
    fn new(config: &ServiceConfig) -> Self {
        Self {
            router: ChildRef::default(),
            generation_model: config.generation.as_ref().map(|pool| pool.model.clone()),
            embedding: config
                .embedding
                .as_ref()
                .map(|pool| (pool.model.id().to_string(), pool.model.dimensions())),
        }
    }

    /// The service, and its router as a supervised child: the supervisor restarts it (and
    /// so its workers) if it fails, and it escalates a worker crash loop there.
    pub fn supervised(router_name: String, config: ServiceConfig) -> (Self, ChildSpec) {
        let service = Self::new(&config);
        let spec = ChildSpec::with_ref(
            router_name.clone(),
            service.router.clone(),
            move |supervisor| {
                let args = RouterArgs::from(config.clone());
                let name = router_name.clone();
                async move {
                    Ok(Actor::spawn_linked(Some(name), Router, args, supervisor)
                        .await?
                        .0)
                }
            },
        );
        (service, spec)
    }

    /// Starts a router of its own, unsupervised (tools and tests).
    pub async fn start(
        router_name: impl Into<String>,
        config: ServiceConfig,
    ) -> Result<Self, InferenceError> {
        let service = Self::new(&config);
        let (router, _) = Actor::spawn(Some(router_name.into()), Router, RouterArgs::from(config))
            .await
            .map_err(|error| InferenceError::Service(error.to_string()))?;
        service.router.set(router);
        Ok(service)
    }

    fn router(&self) -> Result<ActorRef<RouterMsg>, InferenceError> {
        self.router.get().ok_or(InferenceError::WorkerStopped)
    }

    /// The generation model (for its tokenizer, chat template and description).
    pub fn generation_model(&self) -> Option<&LocalModel> {
        self.generation_model.as_ref()
    }

    pub fn embedding_dimensions(&self) -> Option<usize> {
        self.embedding.as_ref().map(|(_, dimensions)| *dimensions)
    }

    pub fn embedding_model_id(&self) -> Option<&str> {
        self.embedding.as_ref().map(|(id, _)| id.as_str())
    }

    /// Admits `request` on the least-loaded generation worker. Refusals (bad request,
    /// overloaded, no model) come back here, before any text.
    pub async fn generate(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, InferenceError> {
        if self.generation_model.is_none() {
            return Err(InferenceError::NoWorkers { kind: "generation" });
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let admitted = ractor::call!(self.router()?, |admitted| {
            RouterMsg::Generate(Box::new(Admission {
                request,
                events,
                admitted,
            }))
        })
        .map_err(|_| InferenceError::WorkerStopped)?;
        admitted?;
        let model = self
            .generation_model
            .as_ref()
            .map_or_else(|| "local".to_string(), LocalModel::id);
        Ok(GenerationStream {
            events: receiver,
            ended: false,
            timing: timing::Timing::start(model),
        })
    }

    /// One unit vector per text, embedded in a batch with whatever else is waiting.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embedded, InferenceError> {
        ractor::call!(self.router()?, |reply| RouterMsg::Embed(EmbedJob {
            texts,
            reply
        }))
        .map_err(|_| InferenceError::WorkerStopped)?
    }

    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, InferenceError> {
        ractor::call!(self.router()?, RouterMsg::Status).map_err(|_| InferenceError::WorkerStopped)
    }

    /// Stops the router and its workers; requests in flight end with `WorkerStopped`.
    pub fn stop(&self) {
        if let Ok(router) = self.router() {
            router.stop(None);
        }
    }

    #[cfg(test)]
    pub(crate) fn router_ref(&self) -> ActorRef<RouterMsg> {
        self.router().unwrap()
    }
}
