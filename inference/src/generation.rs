//! A loaded GGUF model generating for one caller at a time: prefill the prompt, then
//! decode one token at a time with the sampling the request asks for, until end of
//! sequence, a stop string, the token budget, or the caller cancels. Serving many callers
//! at once over the same weights is [`crate::batch`]'s job; both drive a
//! [`Sequence`] through [`LlamaWeights::forward`].

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};

use crate::chat::{ChatMessage, ChatTemplate};
use crate::errors::InferenceError;
use crate::gguf::{self, GgufSummary};
use crate::llama::{BatchItem, LlamaWeights};
use crate::prefix::{PrefixStats, SharedPrefixCache};
pub use crate::sequence::{FinishReason, Generated, GenerationRequest, Priority, SamplingParams};
use crate::sequence::{Sequence, model_error};
use crate::tokenizer::GgufTokenizer;

/// Prompt tokens fed in one pass: long prompts go in slices so that a batch mixing them
/// with decoding sequences keeps its passes short.
pub const PREFILL_CHUNK: usize = 256;

/// A model loaded once: weights (shared, immutable), tokenizer and metadata.
#[derive(Clone)]
pub struct LocalModel {
    weights: Arc<LlamaWeights>,
    tokenizer: Arc<GgufTokenizer>,
    summary: Arc<GgufSummary>,
    /// A deployment may hold prompts to less than the model allows (memory, latency).
    context_limit: Option<usize>,
    /// Prompt prefixes computed before, shared by every clone (every worker).
    prefixes: Option<SharedPrefixCache>,
}

impl LocalModel {
    /// Loads a llama, qwen2 or qwen3 GGUF on `device`, after checking it whole.
    pub fn load_on(path: &Path, device: &Device) -> Result<Self, InferenceError> {
        let gguf::GgufFile {
            content,
            mut reader,
            summary,
        } = gguf::open(path)?;
        let tokenizer =
            GgufTokenizer::from_content(&content).map_err(|reason| gguf::invalid(path, reason))?;
        let weights = LlamaWeights::from_gguf(&content, &mut reader, device)
            .map_err(|reason| gguf::invalid(path, reason))?;
        Ok(Self {
            weights: Arc::new(weights),
            tokenizer: Arc::new(tokenizer),
            summary: Arc::new(summary),
            context_limit: None,
            prefixes: None,
        })
    }

    /// Loads on the CPU.
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        Self::load_on(path, &Device::Cpu)
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    pub fn weights(&self) -> &LlamaWeights {
        &self.weights
    }

    pub fn summary(&self) -> &GgufSummary {
        &self.summary
    }

    /// The name APIs and the ledger use for this model: its directory for models the
    /// catalog installs (`smollm2-135m-instruct-q4_1/model.gguf`), else the file's stem.
    pub fn id(&self) -> String {
        let path = &self.summary.path;
        let stem = path.file_stem().and_then(|stem| stem.to_str());
        let directory = path
            .parent()
            .and_then(|dir| dir.file_name())
            .and_then(|name| name.to_str());
        match (stem, directory) {
            (Some("model"), Some(directory)) => directory.to_string(),
            (Some(stem), _) => stem.to_string(),
            _ => "local".into(),
        }
    }

    /// The prompt token ids for a chat, rendered with the model's own template.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, InferenceError> {
        let source = self.summary.chat_template.as_deref().ok_or_else(|| {
            InferenceError::InvalidRequest(
                "this model has no chat template; send a plain prompt instead".into(),
            )
        })?;
        let text = ChatTemplate::new(source)?.render(messages, true)?;
        self.tokenizer.encode(&text)
    }

    /// Tokens a prompt and its continuation may take together.
    pub fn context_length(&self) -> usize {
        let model = self.weights.config().context_length;
        self.context_limit.map_or(model, |limit| limit.min(model))
    }

    /// Holds prompt plus continuation to at most `tokens` (never more than the model's).
    pub fn limit_context(&mut self, tokens: usize) {
        self.context_limit = Some(tokens.max(2));
    }

    /// Keeps prompt prefixes in a cache of `megabytes` shared by this model's clones
    /// made from now on; 0 turns it off. Only our CPU path can reuse them.
    pub fn cache_prefixes(&mut self, megabytes: usize) {
        self.prefixes = (megabytes > 0).then(|| SharedPrefixCache::new(megabytes << 20));
    }

    pub fn prefix_cache(&self) -> Option<&SharedPrefixCache> {
        self.prefixes.as_ref()
    }

    pub fn prefix_stats(&self) -> Option<PrefixStats> {
        self.prefixes.as_ref().map(SharedPrefixCache::stats)
    }

    /// Starts a sequence for `request`, checked against this model's context.
    pub fn start(&self, request: GenerationRequest) -> Result<Sequence, InferenceError> {
        Sequence::start(&self.weights, request, self.context_length())
    }

    /// Continues `prompt` (token ids). `on_text` receives each new piece of text as it is
    /// decoded and returns false to cancel. `max_tokens` beyond the room left in the
    /// context is served up to that room (finish reason `Length`).
    pub fn generate(
        &self,
        prompt: &[u32],
        params: &SamplingParams,
        max_tokens: usize,
        stop: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generated, InferenceError> {
        let mut sequence = self.start(GenerationRequest {
            prompt: prompt.to_vec(),
            priority: Priority::Interactive,
            params: params.clone(),
            max_tokens,
            stop: stop.to_vec(),
            stop_on_loop: false,
        })?;
        loop {
            if let Some(prefixes) = &self.prefixes {
                sequence.reuse(&mut prefixes.lock());
            }
            let input = sequence.next_input(PREFILL_CHUNK).to_vec();
            let outputs = sequence.outputs();
            let mut logits = self
                .weights
                .forward(&mut [BatchItem {
                    tokens: &input,
                    cache: sequence.cache_mut(),
                    outputs,
                }])
                .and_then(|logits| logits.to_dtype(DType::F32)?.to_vec2::<f32>())
                .map_err(model_error)?;
            let advance = sequence.advance(input.len(), &mut logits, &self.tokenizer)?;
            if let Some(prefixes) = &self.prefixes {
                sequence.publish(&mut prefixes.lock());
            }
            if !advance.piece.is_empty() && !on_text(&advance.piece) {
                sequence.cancel();
                return Ok(sequence.result());
            }
            if advance.finished.is_some() {
                return Ok(sequence.result());
            }
        }
    }
}
