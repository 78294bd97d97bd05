//! Continuous batching, without actors or threads: a set of running sequences that take
//! one forward pass together per [`BatchEngine::step`]. New sequences join between steps,
//! finished and cancelled ones leave at once (their caches freed with them), and a long
//! prompt is fed in slices so it never stalls the sequences already decoding. While few
//! sequences run, each may feed a draft of its next tokens to be checked in the same pass
//! ([`Drafting`]).

use candle_core::DType;

use crate::errors::InferenceError;
use crate::generation::{LocalModel, PREFILL_CHUNK};
use crate::llama::BatchItem;
use crate::sequence::{Generated, GenerationRequest, Priority, Sequence, model_error};

/// Identifies a sequence to its caller.
pub type SequenceId = u64;

/// What a step did for one sequence.
#[derive(Debug, PartialEq)]
pub struct StepEvent {
    pub id: SequenceId,
    /// New text (may be empty while prefilling or mid-character).
    pub piece: String,
    /// Tokens generated so far...
    pub generated_tokens: usize,
    /// ...of which this step's (more than one when a draft was taken).
    pub new_tokens: usize,
    /// Set when the sequence finished in this step and left the batch.
    pub finished: Option<Generated>,
}

/// Speculative decoding by prompt lookup: drafts of up to `max_tokens` while at most
/// `max_streams` sequences run. A pass of one sequence leaves most of the cores'
/// arithmetic unused (decode is bound by reading the weights), so checking a few drafted
/// tokens in it costs little; a full batch has no such room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drafting {
    pub max_tokens: usize,
    pub max_streams: usize,
}

impl Drafting {
    pub const OFF: Self = Self {
        max_tokens: 0,
        max_streams: 0,
    };

    /// The longest draft while `running` sequences run.
    fn tokens_for(&self, running: usize) -> usize {
        if running <= self.max_streams {
            self.max_tokens
        } else {
            0
        }
    }
}

pub struct BatchEngine {
    model: LocalModel,
    running: Vec<(SequenceId, Sequence)>,
    /// Most tokens one pass takes (decoding sequences first, then prompt slices).
    max_step_tokens: usize,
    drafting: Drafting,
}

impl BatchEngine {
    pub fn new(model: LocalModel, max_step_tokens: usize) -> Self {
        Self {
            model,
            running: Vec::new(),
            max_step_tokens: max_step_tokens.max(1),
            drafting: Drafting::OFF,
        }
    }

    /// Decodes with drafts as `drafting` says.
    pub fn with_drafting(mut self, drafting: Drafting) -> Self {
        self.drafting = drafting;
        self
    }

    pub fn model(&self) -> &LocalModel {
        &self.model
    }

    /// Adds a sequence; it takes part from the next step. Bad requests (empty prompt,
    /// prompt over the context, bad sampling values) are refused here.
    pub fn admit(
        &mut self,
        id: SequenceId,
        request: GenerationRequest,
    ) -> Result<(), InferenceError> {
        let sequence = self.model.start(request)?;
        self.running.push((id, sequence));
        Ok(())
    }

    /// Adds a sequence already checked and set up by [`LocalModel::start`].
    pub fn join(&mut self, id: SequenceId, sequence: Sequence) {
        self.running.push((id, sequence));
    }

    /// Removes every sequence (after a failed pass); returns their ids.
    pub fn drain(&mut self) -> Vec<SequenceId> {
        self.running.drain(..).map(|(id, _)| id).collect()
    }

    /// Removes a sequence and frees its cache; returns what it had produced.
    pub fn cancel(&mut self, id: SequenceId) -> Option<Generated> {
        let index = self
            .running
            .iter()
            .position(|(running, _)| *running == id)?;
        let (_, mut sequence) = self.running.remove(index);
        sequence.cancel();
        Some(sequence.result())
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty()
    }

    /// One forward pass over every sequence that fits this step's token budget.
    /// A model failure fails the whole step: the caller fails those sequences.
    pub fn step(&mut self) -> Result<Vec<StepEvent>, InferenceError> {
        if let Some(prefixes) = self.model.prefix_cache() {
            let mut prefixes = prefixes.lock();
            for (_, sequence) in &mut self.running {
                sequence.reuse(&mut prefixes);
            }
        }
        let draft = self.drafting.tokens_for(self.running.len());
        for (_, sequence) in &mut self.running {
            sequence.draft(draft);
        }
        let chosen = self.choose();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<Vec<u32>> = chosen
            .iter()
            .map(|(index, take)| self.running[*index].1.next_input(*take).to_vec())
            .collect();
        let outputs: Vec<usize> = chosen
            .iter()
            .map(|(index, _)| self.running[*index].1.outputs())
            .collect();
        let logits = {
            let mut items: Vec<BatchItem<'_>> = Vec::with_capacity(chosen.len());
            let mut rest: &mut [(SequenceId, Sequence)] = &mut self.running;
            let mut offset = 0;
            // `chosen` is in index order, so the running list can be split as we go.
            for (((index, _), tokens), outputs) in chosen.iter().zip(&inputs).zip(&outputs) {
                let (_, tail) = rest.split_at_mut(index - offset);
                let (head, tail) = tail.split_at_mut(1);
                items.push(BatchItem {
                    tokens,
                    cache: head[0].1.cache_mut(),
                    outputs: *outputs,
                });
                rest = tail;
                offset = index + 1;
            }
            self.model.weights().forward(&mut items)
        }
        .and_then(|logits| logits.to_dtype(DType::F32)?.to_vec2::<f32>())
        .map_err(model_error)?;
        let mut events = Vec::with_capacity(chosen.len());
        let mut finished = Vec::new();
        let mut logits = logits.into_iter();
        for (((index, _), tokens), outputs) in chosen.iter().zip(&inputs).zip(outputs) {
            let (id, sequence) = &mut self.running[*index];
            let mut rows: Vec<Vec<f32>> = logits.by_ref().take(outputs).collect();
            let before = sequence.generated_tokens();
            let advance = sequence.advance(tokens.len(), &mut rows, self.model.tokenizer())?;
            let done = advance.finished.map(|_| sequence.result());
            if done.is_some() {
                finished.push(*index);
            }
            events.push(StepEvent {
                id: *id,
                piece: advance.piece,
                generated_tokens: sequence.generated_tokens(),
                new_tokens: sequence.generated_tokens() - before,
                finished: done,
            });
        }
        // Before the finished leave: `chosen` holds indices into the running list.
        self.publish(&chosen);
        for index in finished.into_iter().rev() {
            self.running.remove(index);
        }
        Ok(events)
    }

    /// Puts the blocks the `chosen` sequences have just prefilled into the prefix cache.
    fn publish(&mut self, chosen: &[(usize, usize)]) {
        let Some(prefixes) = self.model.prefix_cache() else {
            return;
        };
        let mut prefixes = prefixes.lock();
        for (index, _) in chosen {
            self.running[*index].1.publish(&mut prefixes);
        }
    }

    /// Whether the sequence at `index` should wait: a sequence `chosen` for this pass
    /// computes the very block it needs next, which it can then take from the cache.
    fn waits_for_prefix(&self, index: usize, chosen: &[(usize, usize)]) -> bool {
        let Some((block, name)) = self.running[index].1.next_block() else {
            return false;
        };
        self.model.prefix_cache().is_some()
            && chosen
                .iter()
                .any(|(ahead, _)| self.running[*ahead].1.will_publish(block, name))
    }

    /// Which sequences take part, and how many tokens each may feed: every decoding
    /// sequence (its token and draft), then prompt slices while the budget lasts, interactive
    /// requests' first and each kind in arrival order (but not a slice another chosen
    /// sequence computes, see [`Self::waits_for_prefix`]).
    fn choose(&self) -> Vec<(usize, usize)> {
        let mut budget = self.max_step_tokens;
        let mut chosen = Vec::new();
        for (index, (_, sequence)) in self.running.iter().enumerate() {
            if !sequence.is_prefilling() && budget > 0 {
                let fed = sequence.next_input(1).len();
                chosen.push((index, fed));
                budget = budget.saturating_sub(fed);
            }
        }
        let prefilling = |priority: Priority| {
            self.running
                .iter()
                .enumerate()
                .filter(move |(_, (_, sequence))| {
                    sequence.is_prefilling() && sequence.priority() == priority
                })
        };
        let order = prefilling(Priority::Interactive).chain(prefilling(Priority::Background));
        for (index, (_, sequence)) in order {
            if budget > 0 && !self.waits_for_prefix(index, &chosen) {
                let take = budget.min(PREFILL_CHUNK);
                chosen.push((index, take));
                budget -= sequence.next_input(take).len();
            }
        }
        chosen.sort_unstable_by_key(|(index, _)| *index);
        chosen
    }
}
