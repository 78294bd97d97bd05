//! One generation in progress: its prompt, its KV cache, its sampler and what it has
//! produced. The same state machine serves one request alone ([`crate::generation`]) and
//! many in a batch ([`crate::batch`]): the caller feeds [`Sequence::next_input`] through a
//! forward pass and hands the resulting logits to [`Sequence::advance`].

use std::ops::Range;

use crate::draft::{DraftLength, prompt_lookup};
use crate::errors::InferenceError;
use crate::llama::{KvCache, LlamaWeights};
use crate::prefix::{self, BLOCK_TOKENS, PrefixCache};
use crate::sampler::Sampler;
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
}

/// What to generate: prompt token ids and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub prompt: Vec<u32>,
    pub priority: Priority,
    pub params: SamplingParams,
    /// Served up to the room left in the context (finish reason `Length`).
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// End the text after the first saying of a phrase it has started to repeat over
    /// and over ([`crate::quality::loop_at_end`]), instead of looping to the budget.
    pub stop_on_loop: bool,
}

/// Who waits on a generation: a person (a chat, a `/v1` or `/api/v1/complete` call) or
/// an agent's task in the background. A worker admits and prefills interactive requests
/// first, so a person is not stuck behind a fan-out of agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    #[default]
    Interactive,
    Background,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    EndOfSequence,
    /// The token budget (or the rest of the context) ran out.
    Length,
    StopString,
    /// The text began to loop and was cut after the phrase's first saying.
    Loop,
    Cancelled,
}

impl FinishReason {
    /// The OpenAI name of the reason.
    pub fn openai_name(self) -> &'static str {
        match self {
            FinishReason::EndOfSequence | FinishReason::StopString => "stop",
            FinishReason::Length | FinishReason::Loop => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub prompt_tokens: usize,
    pub finish: FinishReason,
}

/// What one pass did for a sequence.
#[derive(Debug, Default, PartialEq)]
pub struct Advance {
    /// New text, once it no longer ends in a partial character (may be empty).
    pub piece: String,
    pub finished: Option<FinishReason>,
}

pub struct Sequence {
    prompt: Vec<u32>,
    cache: KvCache,
    prefilled: usize,
    /// The prompt's whole blocks, by their names in the prefix cache.
    blocks: Vec<u64>,
    /// Blocks of `blocks` the prefix cache has (from this sequence or another).
    published: usize,
    sampler: Sampler,
    params: SamplingParams,
    stop: Vec<String>,
    stop_on_loop: bool,
    priority: Priority,
    budget: usize,
    generated: Vec<u32>,
    /// What the next pass feeds once the prompt is in: the token sampled last, then
    /// any draft of the tokens after it ([`Self::draft`]).
    feed: Vec<u32>,
    /// How long this sequence's drafts are, once it has made one.
    draft_length: Option<DraftLength>,
    /// Of `generated`, the tokens decoded with the last piece released: the first of
    /// them gives the next piece its context.
    decoded: Range<usize>,
    text: String,
    finish: Option<FinishReason>,
}

impl Sequence {
    /// Checks `request` against the model and sets up its cache. `context` is the most
    /// tokens prompt and continuation may take together.
    pub fn start(
        weights: &LlamaWeights,
        request: GenerationRequest,
        context: usize,
    ) -> Result<Self, InferenceError> {
        request.params.validate()?;
        if request.prompt.is_empty() {
            return Err(InferenceError::InvalidRequest("the prompt is empty".into()));
        }
        if request.max_tokens == 0 {
            return Err(InferenceError::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        if request.prompt.len() >= context {
            return Err(InferenceError::PromptTooLong {
                prompt_tokens: request.prompt.len(),
                context_tokens: context,
            });
        }
        let budget = request.max_tokens.min(context - request.prompt.len());
        // Room for the prompt and a short answer; the cache doubles if the answer runs on.
        let cache = weights
            .new_cache(request.prompt.len() + budget.min(256))
            .map_err(model_error)?;
        Ok(Self {
            sampler: Sampler::new(&request.params),
            blocks: prefix::block_names(&request.prompt),
            prompt: request.prompt,
            cache,
            prefilled: 0,
            published: 0,
            params: request.params,
            stop: request.stop.into_iter().filter(|s| !s.is_empty()).collect(),
            stop_on_loop: request.stop_on_loop,
            priority: request.priority,
            budget,
            generated: Vec::new(),
            feed: Vec::new(),
            draft_length: None,
            decoded: 0..0,
            text: String::new(),
            finish: None,
        })
    }

    /// The tokens to feed next: up to `chunk` prompt tokens while prefilling, then the
    /// token sampled last and its draft, if any.
    pub fn next_input(&self, chunk: usize) -> &[u32] {
        if self.prefilled < self.prompt.len() {
            let end = self.prompt.len().min(self.prefilled + chunk.max(1));
            &self.prompt[self.prefilled..end]
        } else {
            &self.feed
        }
    }

    /// How many of [`Self::next_input`]'s tokens need logits: each token of a draft
    /// (to check the next against), else the last one.
    pub fn outputs(&self) -> usize {
        if self.is_prefilling() {
            1
        } else {
            self.feed.len().max(1)
        }
    }

    /// Drafts up to `max` tokens to feed after the token sampled last, by prompt lookup
    /// ([`crate::draft`]): fewer after drafts that failed, none when fewer tokens are
    /// left to generate, and none (any earlier draft dropped) when `max` is 0.
    pub fn draft(&mut self, max: usize) {
        self.feed.truncate(1);
        if max == 0 || self.is_prefilling() || self.feed.is_empty() {
            return;
        }
        let length = self
            .draft_length
            .get_or_insert_with(|| DraftLength::new(max));
        let room = self.budget.saturating_sub(self.generated.len() + 1);
        let limit = length.get().min(max).min(room);
        if limit == 0 {
            return;
        }
        let history: Vec<u32> = self.prompt.iter().chain(&self.generated).copied().collect();
        self.feed.extend_from_slice(prompt_lookup(&history, limit));
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    pub fn is_prefilling(&self) -> bool {
        self.prefilled < self.prompt.len()
    }

    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// The block this sequence would feed next, while it prefills at a block's start:
    /// (its index, its name).
    pub fn next_block(&self) -> Option<(usize, u64)> {
        if !self.is_prefilling() || !self.prefilled.is_multiple_of(BLOCK_TOKENS) {
            return None;
        }
        let index = self.prefilled / BLOCK_TOKENS;
        Some((index, *self.blocks.get(index)?))
    }

    /// Whether this sequence will put block `index`, named `name`, into the cache: a
    /// sequence that needs the same block had better wait for it than compute it too.
    pub fn will_publish(&self, index: usize, name: u64) -> bool {
        self.is_prefilling() && self.published <= index && self.blocks.get(index) == Some(&name)
    }

    /// Takes from `cache` every block of the prompt that follows what is prefilled;
    /// the tokens taken.
    pub fn reuse(&mut self, cache: &mut PrefixCache) -> usize {
        let mut taken = 0;
        while let Some((index, name)) = self.next_block() {
            let tokens = &self.prompt[self.prefilled..self.prefilled + BLOCK_TOKENS];
            let parent = prefix::parent_of(&self.blocks, index);
            let Some(positions) = cache.get(name, parent, tokens) else {
                break;
            };
            if !self.cache.append(&positions) {
                break;
            }
            self.prefilled += BLOCK_TOKENS;
            self.published = self.published.max(index + 1);
            taken += BLOCK_TOKENS;
        }
        taken
    }

    /// Puts into `cache` every whole block this sequence has prefilled and the cache
    /// does not have yet.
    pub fn publish(&mut self, cache: &mut PrefixCache) {
        while self.published < self.blocks.len()
            && (self.published + 1) * BLOCK_TOKENS <= self.prefilled
        {
            let index = self.published;
            let span = index * BLOCK_TOKENS..(index + 1) * BLOCK_TOKENS;
            let name = self.blocks[index];
            if !cache.contains(name) {
                let Some(positions) = self.cache.copy(span.clone()) else {
                    // A cache that cannot be copied (candle's path) never will be.
                    self.published = self.blocks.len();
                    return;
                };
                let parent = prefix::parent_of(&self.blocks, index);
                cache.insert(name, parent, &self.prompt[span], positions);
            }
            self.published += 1;
        }
    }

    /// Takes the pass that fed `fed` tokens of [`Self::next_input`]; `logits` are the
    /// scores after each of the last [`Self::outputs`] of them (the repeat penalty may
    /// change them).
    ///
    /// A draft is checked as plain decoding would go: the token sampled from the first
    /// row is kept, and while it is the draft's next token, the token sampled from the
    /// row after it is kept too. The sampler draws once per kept token, in order, so the
    /// tokens are the ones plain decoding samples. The draft tokens not kept leave the
    /// cache.
    pub fn advance(
        &mut self,
        fed: usize,
        logits: &mut [Vec<f32>],
        tokenizer: &GgufTokenizer,
    ) -> Result<Advance, InferenceError> {
        if self.is_prefilling() {
            self.prefilled += fed;
            if self.is_prefilling() {
                return Ok(Advance::default());
            }
        }
        let draft = self.feed.get(1..).unwrap_or_default().to_vec();
        let mut advance = Advance::default();
        let mut sampled = 0;
        for row in logits.iter_mut() {
            let next = self.sample(row);
            sampled += 1;
            let step = self.take(next, tokenizer)?;
            advance.piece.push_str(&step.piece);
            advance.finished = step.finished;
            if advance.finished.is_some() || draft.get(sampled - 1) != Some(&next) {
                break;
            }
        }
        if !draft.is_empty() {
            if let Some(length) = &mut self.draft_length {
                length.learn(draft.len(), sampled - 1);
            }
            let unused = logits.len() - sampled;
            self.cache.truncate(self.cache.len() - unused);
        }
        Ok(advance)
    }

    /// Adds the sampled token `next` to the continuation, and ends it where it should.
    fn take(&mut self, next: u32, tokenizer: &GgufTokenizer) -> Result<Advance, InferenceError> {
        if Some(next) == tokenizer.eos_token_id() {
            return Ok(self.finished(FinishReason::EndOfSequence));
        }
        self.generated.push(next);
        self.feed.clear();
        self.feed.push(next);
        let piece = self.decode_piece(tokenizer)?;
        if let Some(cut) = self
            .stop
            .iter()
            .filter_map(|stop| self.text.find(stop.as_str()))
            .min()
        {
            return Ok(self.cut(cut, &piece, FinishReason::StopString));
        }
        if self.stop_on_loop
            && !piece.is_empty()
            && let Some(cut) = crate::quality::loop_at_end(&self.text)
        {
            return Ok(self.cut(cut, &piece, FinishReason::Loop));
        }
        let finished = if self.generated.len() >= self.budget {
            self.finish(FinishReason::Length)
        } else {
            None
        };
        Ok(Advance { piece, finished })
    }

    /// Ends the text at byte `cut`, for `reason`. `piece` (the newest text) may run past
    /// the cut; only what precedes it is sent.
    fn cut(&mut self, cut: usize, piece: &str, reason: FinishReason) -> Advance {
        let sent = self.text.len() - piece.len();
        self.text.truncate(cut);
        Advance {
            piece: self.text.get(sent.min(cut)..).unwrap_or("").to_string(),
            finished: self.finish(reason),
        }
    }

    fn finished(&mut self, reason: FinishReason) -> Advance {
        Advance {
            piece: String::new(),
            finished: self.finish(reason),
        }
    }

    fn finish(&mut self, reason: FinishReason) -> Option<FinishReason> {
        self.finish = Some(reason);
        Some(reason)
    }

    /// Ends the sequence early (the caller went away or asked to stop).
    pub fn cancel(&mut self) {
        self.finish.get_or_insert(FinishReason::Cancelled);
    }

    pub fn prompt_tokens(&self) -> usize {
        self.prompt.len()
    }

    pub fn generated_tokens(&self) -> usize {
        self.generated.len()
    }

    /// The result so far (final once a finish reason is set).
    pub fn result(&self) -> Generated {
        Generated {
            token_ids: self.generated.clone(),
            text: self.text.clone(),
            prompt_tokens: self.prompt.len(),
            finish: self.finish.unwrap_or(FinishReason::Cancelled),
        }
    }

    fn sample(&mut self, logits: &mut [f32]) -> u32 {
        if self.params.repeat_penalty == 1.0 {
            return self.sampler.sample(logits, &[]);
        }
        // The last `repeat_last_n` tokens of prompt and continuation together.
        let last = self.params.repeat_last_n;
        let from_prompt = last.saturating_sub(self.generated.len());
        let recent: Vec<u32> = self.prompt[self.prompt.len().saturating_sub(from_prompt)..]
            .iter()
            .chain(&self.generated[self.generated.len().saturating_sub(last)..])
            .copied()
            .collect();
        self.sampler.sample(logits, &recent)
    }

    /// The text the last token adds. Tokens are decoded from the one before the text
    /// released last (`decoded.start`), not alone and not from the beginning: alone a
    /// token may lose the space a tokenizer strips at the start of a text, or hold half
    /// a character; from the beginning each token would cost the whole continuation.
    /// Text is released only once it no longer ends in a partial character.
    fn decode_piece(&mut self, tokenizer: &GgufTokenizer) -> Result<String, InferenceError> {
        let Range { start, end } = self.decoded;
        let before = tokenizer.decode(&self.generated[start..end])?;
        let now = tokenizer.decode(&self.generated[start..])?;
        if now.ends_with('\u{fffd}') || now.len() <= before.len() || !now.starts_with(&before) {
            return Ok(String::new());
        }
        let piece = now[before.len()..].to_string();
        self.text.push_str(&piece);
        self.decoded = end..self.generated.len();
        Ok(piece)
    }
}

pub(crate) fn model_error(error: candle_core::Error) -> InferenceError {
    InferenceError::Model(error.to_string())
}
