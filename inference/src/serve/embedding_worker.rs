//! An embedding worker: one actor owning one embedding model. Requests that arrive while
//! a batch is being computed are gathered and embedded together in the next one (same
//! pattern as the generation worker: a `Flush` message queued behind them).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorMessage;

use crate::embedding::{Embedded, Embedder};
use crate::errors::InferenceError;

/// Most texts embedded in one pass (one padded batch).
const MAX_BATCH_TEXTS: usize = 64;

/// Most texts one request may bring (OpenAI's limit too); a larger request is refused
/// rather than held in memory as one padded batch.
pub const MAX_REQUEST_TEXTS: usize = 2048;

pub struct EmbedJob {
    pub texts: Vec<String>,
    pub reply: RpcReplyPort<Result<Embedded, InferenceError>>,
}

#[derive(RactorMessage)]
pub enum EmbeddingWorkerMsg {
    Embed(EmbedJob),
    Flush,
}

pub struct EmbeddingWorkerArgs {
    pub model: Arc<Embedder>,
    pub load: Arc<AtomicUsize>,
}

pub struct EmbeddingWorkerState {
    model: Arc<Embedder>,
    pending: Vec<EmbedJob>,
    flushing: bool,
    load: Arc<AtomicUsize>,
}

pub struct EmbeddingWorker;

impl Actor for EmbeddingWorker {
    type Msg = EmbeddingWorkerMsg;
    type State = EmbeddingWorkerState;
    type Arguments = EmbeddingWorkerArgs;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        args: EmbeddingWorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EmbeddingWorkerState {
            model: args.model,
            pending: Vec::new(),
            flushing: false,
            load: args.load,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EmbeddingWorkerMsg::Embed(job) => {
                if let Some(error) = refusal(&job.texts) {
                    state.load.fetch_sub(1, Ordering::AcqRel);
                    let _ = job.reply.send(Err(error));
                } else {
                    state.pending.push(job);
                }
            }
            EmbeddingWorkerMsg::Flush => {
                state.flushing = false;
                state.flush().await?;
            }
        }
        if !state.flushing && !state.pending.is_empty() {
            state.flushing = true;
            myself.cast(EmbeddingWorkerMsg::Flush)?;
        }
        Ok(())
    }
}

fn refusal(texts: &[String]) -> Option<InferenceError> {
    if texts.is_empty() {
        return Some(InferenceError::InvalidRequest(
            "`input` is empty: give at least one text".into(),
        ));
    }
    if texts.len() > MAX_REQUEST_TEXTS {
        return Some(InferenceError::InvalidRequest(format!(
            "{} texts in one request; send at most {MAX_REQUEST_TEXTS}",
            texts.len()
        )));
    }
    texts
        .iter()
        .position(|text| text.trim().is_empty())
        .map(|index| InferenceError::InvalidRequest(format!("input {index} is an empty text")))
}

impl EmbeddingWorkerState {
    /// Embeds the pending jobs, as many whole jobs as fit one batch.
    async fn flush(&mut self) -> Result<(), ActorProcessingErr> {
        let mut taken = 0;
        let mut count = 0;
        for job in &self.pending {
            if count > 0 && count + job.texts.len() > MAX_BATCH_TEXTS {
                break;
            }
            count += job.texts.len();
            taken += 1;
        }
        let jobs: Vec<EmbedJob> = self.pending.drain(..taken).collect();
        let texts: Vec<String> = jobs.iter().flat_map(|job| job.texts.clone()).collect();
        let model = self.model.clone();
        // A single large request is embedded in slices, so no pass pads more than
        // MAX_BATCH_TEXTS texts.
        let vectors = tokio::task::spawn_blocking(move || {
            let mut vectors = Vec::with_capacity(texts.len());
            for slice in texts.chunks(MAX_BATCH_TEXTS) {
                let slice: Vec<&str> = slice.iter().map(String::as_str).collect();
                vectors.extend(model.embed(&slice)?);
            }
            Ok::<_, InferenceError>(vectors)
        })
        .await
        .map_err(|error| format!("embedding pass failed: {error}"))?;
        let mut vectors = match vectors {
            Ok(vectors) => vectors.into_iter(),
            Err(error) => {
                let message = error.to_string();
                for job in jobs {
                    self.load.fetch_sub(1, Ordering::AcqRel);
                    let _ = job.reply.send(Err(InferenceError::Model(message.clone())));
                }
                return Ok(());
            }
        };
        for job in jobs {
            let mine: Vec<Vec<f32>> = vectors.by_ref().take(job.texts.len()).collect();
            // Tokens per job, counted again for its own texts (cheap: no model pass).
            let tokens = self.model.count_tokens(&job.texts);
            self.load.fetch_sub(1, Ordering::AcqRel);
            let embedded = Embedded {
                vectors: mine,
                tokens,
            };
            if job.reply.send(Ok(embedded)).is_err() {
                tracing::debug!("embeddings computed for a caller that left");
            }
        }
        Ok(())
    }
}
