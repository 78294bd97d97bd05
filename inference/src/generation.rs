//! A loaded GGUF model generating tokens: prefill the prompt, then decode one token at a
//! time with the sampling the request asks for, until end of sequence, a stop string,
//! the token budget, or the caller cancels. One sequence at a time: batching many
//! sequences over shared weights is the serving layer's job (issue 3, next).

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};

use crate::chat::{ChatMessage, ChatTemplate};
use crate::errors::InferenceError;
use crate::gguf::{self, GgufSummary};
use crate::tokenizer::GgufTokenizer;

/// How the next token is chosen. A temperature of 0 is greedy (always the most likely
/// token), which makes the output a pure function of the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    /// 1.0 is none; above 1 makes recently generated tokens less likely.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: None,
            top_k: None,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }

    pub fn validate(&self) -> Result<(), InferenceError> {
        let invalid = |message: String| Err(InferenceError::InvalidRequest(message));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return invalid(format!(
                "temperature must be 0 (greedy) or more, got {}",
                self.temperature
            ));
        }
        if let Some(top_p) = self.top_p.filter(|top_p| !(*top_p > 0.0 && *top_p <= 1.0)) {
            return invalid(format!("top_p must be in (0, 1], got {top_p}"));
        }
        if self.top_k == Some(0) {
            return invalid("top_k must be at least 1".into());
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return invalid(format!(
                "repeat_penalty must be above 0, got {}",
                self.repeat_penalty
            ));
        }
        Ok(())
    }

    fn sampling(&self) -> Sampling {
        let temperature = self.temperature;
        match (self.top_k, self.top_p) {
            _ if temperature == 0.0 => Sampling::ArgMax,
            (None, None) => Sampling::All { temperature },
            (Some(k), None) => Sampling::TopK { k, temperature },
            (None, Some(p)) => Sampling::TopP { p, temperature },
            (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    EndOfSequence,
    /// The token budget (or the rest of the context) ran out.
    Length,
    StopString,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub prompt_tokens: usize,
    pub finish: FinishReason,
}

pub struct LocalModel {
    weights: ModelWeights,
    tokenizer: GgufTokenizer,
    summary: GgufSummary,
    device: Device,
    /// A deployment may hold prompts to less than the model allows (memory, latency).
    context_limit: Option<usize>,
}

impl LocalModel {
    /// Loads a llama-architecture GGUF on the CPU, after checking it whole.
    pub fn load(path: &Path) -> Result<Self, InferenceError> {
        let gguf::GgufFile {
            content,
            mut reader,
            summary,
        } = gguf::open(path)?;
        let tokenizer =
            GgufTokenizer::from_content(&content).map_err(|reason| gguf::invalid(path, reason))?;
        let device = Device::Cpu;
        let weights = ModelWeights::from_gguf(content, &mut reader, &device)
            .map_err(|error| gguf::invalid(path, error.to_string()))?;
        Ok(Self {
            weights,
            tokenizer,
            summary,
            device,
            context_limit: None,
        })
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
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

    pub fn summary(&self) -> &GgufSummary {
        &self.summary
    }

    /// Tokens a prompt and its continuation may take together.
    pub fn context_length(&self) -> usize {
        let model = self
            .summary
            .context_length
            .map_or(MAX_SEQ_LEN, |length| (length as usize).min(MAX_SEQ_LEN));
        self.context_limit.map_or(model, |limit| limit.min(model))
    }

    /// Holds prompt plus continuation to at most `tokens` (never more than the model's).
    pub fn limit_context(&mut self, tokens: usize) {
        self.context_limit = Some(tokens.max(2));
    }

    /// Continues `prompt` (token ids). `on_text` receives each new piece of text as it is
    /// decoded and returns false to cancel. `max_tokens` beyond the room left in the
    /// context is served up to that room (finish reason `Length`).
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &SamplingParams,
        max_tokens: usize,
        stop: &[String],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generated, InferenceError> {
        params.validate()?;
        if prompt.is_empty() {
            return Err(InferenceError::InvalidRequest("the prompt is empty".into()));
        }
        if max_tokens == 0 {
            return Err(InferenceError::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        let context = self.context_length();
        if prompt.len() >= context {
            return Err(InferenceError::PromptTooLong {
                prompt_tokens: prompt.len(),
                context_tokens: context,
            });
        }
        let budget = max_tokens.min(context - prompt.len());
        let mut sampler = LogitsProcessor::from_sampling(params.seed, params.sampling());
        let mut decoded = Decoded::default();
        let mut generated: Vec<u32> = Vec::new();
        self.weights.clear_kv_cache();
        let mut logits = self.forward(prompt, 0)?;
        let finish = loop {
            let next = self.sample(&logits, &mut sampler, params, prompt, &generated)?;
            if Some(next) == self.tokenizer.eos_token_id() {
                break FinishReason::EndOfSequence;
            }
            generated.push(next);
            let piece = decoded.extend(&self.tokenizer, &generated)?;
            if let Some(cut) = stop
                .iter()
                .filter(|stop| !stop.is_empty())
                .filter_map(|stop| decoded.text.find(stop.as_str()))
                .min()
            {
                decoded.text.truncate(cut);
                break FinishReason::StopString;
            }
            if !piece.is_empty() && !on_text(&piece) {
                break FinishReason::Cancelled;
            }
            if generated.len() >= budget {
                break FinishReason::Length;
            }
            logits = self.forward(&[next], prompt.len() + generated.len() - 1)?;
        };
        Ok(Generated {
            token_ids: generated,
            text: decoded.text,
            prompt_tokens: prompt.len(),
            finish,
        })
    }

    fn forward(&mut self, tokens: &[u32], position: usize) -> Result<Tensor, InferenceError> {
        let model_error = |error: candle_core::Error| InferenceError::Model(error.to_string());
        let input = Tensor::new(tokens, &self.device)
            .and_then(|tensor| tensor.unsqueeze(0))
            .map_err(model_error)?;
        self.weights
            .forward(&input, position)
            .and_then(|logits| logits.squeeze(0))
            .map_err(model_error)
    }

    fn sample(
        &self,
        logits: &Tensor,
        sampler: &mut LogitsProcessor,
        params: &SamplingParams,
        prompt: &[u32],
        generated: &[u32],
    ) -> Result<u32, InferenceError> {
        let model_error = |error: candle_core::Error| InferenceError::Model(error.to_string());
        let logits = if params.repeat_penalty == 1.0 {
            logits.clone()
        } else {
            let history: Vec<u32> = prompt.iter().chain(generated).copied().collect();
            let recent = &history[history.len().saturating_sub(params.repeat_last_n)..];
            candle_transformers::utils::apply_repeat_penalty(logits, params.repeat_penalty, recent)
                .map_err(model_error)?
        };
        sampler.sample(&logits).map_err(model_error)
    }
}

/// Text decoded so far. Decoding the whole sequence each time (not token by token) keeps
/// multi-byte characters split across tokens intact; a piece is emitted only once it no
/// longer ends in a partial character.
#[derive(Default)]
struct Decoded {
    text: String,
}

impl Decoded {
    fn extend(
        &mut self,
        tokenizer: &GgufTokenizer,
        generated: &[u32],
    ) -> Result<String, InferenceError> {
        let full = tokenizer.decode(generated)?;
        if full.ends_with('\u{fffd}') || !full.starts_with(&self.text) {
            return Ok(String::new());
        }
        let piece = full[self.text.len()..].to_string();
        self.text = full;
        Ok(piece)
    }
}
