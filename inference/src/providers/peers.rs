//! The local models of the other nodes of a cluster. The chain's `local` link asks this
//! node's model first; when it has none, or it is full, or its worker is restarting, the
//! link asks a peer's instead (still local: free, and the prompt never leaves the
//! cluster). What a peer is and how it is reached is the cluster's business, behind
//! [`PeerModels`].

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;
use crate::errors::InferenceError;
use crate::sampler::fresh_seed;
use crate::sequence::{FinishReason, GenerationRequest, Priority, SamplingParams};
use crate::serve::InferenceService;

use super::ProviderAnswer;

/// A completion handed to another node's local model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerAsk {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: usize,
    pub temperature: f64,
    /// The sampling seed; `None` (and from a node that sends none): a fresh one.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The asking call's span: the peer's model call goes under it.
    #[serde(default)]
    pub trace: Option<troupe_telemetry::TraceParent>,
    /// Interactive (the default, and from a node that sends none) or an agent's task.
    #[serde(default)]
    pub priority: Priority,
}

/// What a model answered, and which model it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelAnswer {
    /// The model's id (`smollm2-135m-instruct-q4_1`).
    pub model: String,
    pub answer: ProviderAnswer,
}

/// A peer's answer, and the node that gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerAnswer {
    pub node: String,
    pub answered: ModelAnswer,
}

pub type PeerCall = Pin<Box<dyn Future<Output = Result<PeerAnswer, InferenceError>> + Send>>;

/// The other nodes' generation models.
pub trait PeerModels: Send + Sync {
    /// Asks the peer best placed to answer (the emptiest queue among those that serve a
    /// generation model); `None` when no peer serves one.
    fn complete(&self, ask: PeerAsk) -> Option<PeerCall>;
}

/// Whether a local failure is one a peer's model may get past: this node has no model,
/// or its model is busy or restarting. A bad request or an overlong prompt would fail
/// there too.
pub fn a_peer_may_answer(error: &InferenceError) -> bool {
    matches!(
        error,
        InferenceError::NoWorkers { .. }
            | InferenceError::ModelMissing { .. }
            | InferenceError::Overloaded { .. }
            | InferenceError::WorkerStopped
    )
}

/// `ask` answered by `service`'s generation model at the asked temperature and seed
/// (without one, a fresh seed: a refused answer asked again must be able to come out
/// otherwise): what the chain's `local` link does here, and what a node does for a
/// peer's ask.
pub async fn answer_locally(
    service: &InferenceService,
    ask: &PeerAsk,
) -> Result<ModelAnswer, InferenceError> {
    let model = service
        .generation_model()
        .ok_or(InferenceError::NoWorkers { kind: "generation" })?;
    let prompt = model.chat_prompt(&ask.messages)?;
    let generated = service
        .generate(GenerationRequest {
            prompt,
            priority: ask.priority,
            params: SamplingParams {
                temperature: ask.temperature,
                seed: ask.seed.unwrap_or_else(fresh_seed),
                ..SamplingParams::greedy()
            },
            max_tokens: ask.max_tokens,
            stop: Vec::new(),
            stop_on_loop: true,
        })
        .await?
        .finish()
        .await?;
    Ok(ModelAnswer {
        model: model.id(),
        answer: ProviderAnswer {
            cut_at_limit: matches!(generated.finish, FinishReason::Length | FinishReason::Loop),
            stopped_in_loop: generated.finish == FinishReason::Loop,
            tokens_in: generated.prompt_tokens,
            tokens_out: generated.token_ids.len(),
            text: generated.text,
        },
    })
}
