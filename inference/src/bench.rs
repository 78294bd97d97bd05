//! `troupe bench inference`: figures for a GGUF model on this machine — prefill
//! tokens/s, single-stream decode tokens/s, aggregate decode tokens/s with N streams
//! batched together, time to first token, peak memory — with the SIMD the CPU has and
//! the build uses. The comparison with llama.cpp is put beside it by the binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::batch::{BatchEngine, Drafting};
use crate::chat::ChatMessage;
use crate::errors::InferenceError;
use crate::generation::{LocalModel, SamplingParams};
use crate::llama::PassCost;
use crate::prefix::PrefixStats;
use crate::probe::{self, MachineLimits};
use crate::sequence::{GenerationRequest, Priority};
use crate::simd;

#[derive(Debug, Clone, Serialize)]
pub struct InferenceReport {
    pub benchmark: &'static str,
    pub model: String,
    pub quantization: String,
    pub threads: usize,
    pub simd_detected: Vec<&'static str>,
    pub simd_compiled: Vec<&'static str>,
    /// The path our quantised products take: `avx512vnni`, `avx2` or `portable`.
    pub kernel_path: &'static str,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub time_to_first_token_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// Tokens per second over all streams, by number of concurrent streams.
    pub aggregate_decode_tokens_per_s: BTreeMap<usize, f64>,
    /// Aggregate decode at N streams over single-stream decode: what batching buys.
    pub batching_gain: BTreeMap<usize, f64>,
    pub peak_memory_mb: Option<f64>,
    /// What this machine can do, measured in the same run.
    pub limits: MachineLimits,
    pub pass_cost: PassCost,
    pub kv_bytes_per_token: usize,
    /// Each figure as a fraction of the limit that bounds it.
    pub fractions: Fractions,
    /// The shared-prefix workload with every prompt prefilled whole...
    pub shared_prefix: SharedPrefixReport,
    /// ...and with the prefix cache on.
    pub shared_prefix_cached: SharedPrefixReport,
    /// What the cache bought: without ÷ with for time to first token, with ÷ without
    /// for tokens/s.
    pub prefix_cache_gain: PrefixCacheGain,
    /// One stream rewriting code it was shown, with drafts and without.
    pub drafting: DraftingReport,
}

/// Speculative decoding on the workload it is for: an answer that copies much of its
/// prompt (code to rewrite), one stream, greedy.
#[derive(Debug, Clone, Serialize)]
pub struct DraftingReport {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub max_draft_tokens: usize,
    pub plain_tokens_per_s: f64,
    pub drafted_tokens_per_s: f64,
    /// Drafted ÷ plain tokens/s.
    pub gain: f64,
    /// Generated tokens per pass with drafts (1 without).
    pub tokens_per_pass: f64,
    /// Whether both runs produced the same tokens (they must).
    pub same_output: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrefixCacheGain {
    pub time_to_first_token_p50: f64,
    pub time_to_first_token_p95: f64,
    pub aggregate_tokens_per_s: f64,
}

/// How close each figure comes to the machine's limits.
#[derive(Debug, Clone, Serialize)]
pub struct Fractions {
    /// Single-stream decode: bytes read per token (every weight, and the cache at the
    /// run's mean length) × tokens/s ÷ memory bandwidth.
    pub decode_of_bandwidth: f64,
    /// Prefill: multiply-adds per token × tokens/s ÷ the int8 peak.
    pub prefill_of_peak: Option<f64>,
    /// Batched decode, by streams: multiply-adds per token × tokens/s ÷ the int8 peak.
    pub aggregate_decode_of_peak: BTreeMap<usize, f64>,
}

/// The agent workload: many requests at once that share a long system prompt, sampled
/// with top-p.
#[derive(Debug, Clone, Serialize)]
pub struct SharedPrefixReport {
    pub streams: usize,
    pub prefix_tokens: usize,
    pub question_tokens: usize,
    pub max_output_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    /// Tokens one step takes at most: the serving default (`models.max_step_tokens`).
    pub max_step_tokens: usize,
    /// From all requests arriving together to each one's first generated token.
    pub time_to_first_token_ms_p50: f64,
    pub time_to_first_token_ms_p95: f64,
    pub generated_tokens: usize,
    /// Generated tokens over all streams ÷ the time from arrival to the last one's end.
    pub aggregate_tokens_per_s: f64,
    /// The prefix cache at the end, when it was on.
    pub prefix_cache: Option<PrefixStats>,
}

/// The shared-prefix workload's shape: by default (issue 19) 16 requests sharing 1,500
/// tokens, each with a question of 100 and up to 128 tokens out, in steps of 512.
#[derive(Debug, Clone, Copy)]
pub struct SharedPrefixShape {
    pub streams: usize,
    pub prefix_tokens: usize,
    pub question_tokens: usize,
    pub max_output_tokens: usize,
    pub max_step_tokens: usize,
    /// The prefix cache's size for the run with it (`models.prefix_cache_mb`).
    pub prefix_cache_mb: usize,
}

const FILLER: &str =
    "The quick brown fox jumps over the lazy dog while the engineers review the build. ";

/// A prompt of exactly `tokens` tokens of English text, starting `offset` tokens in (so
/// concurrent streams do not all read the same words).
fn prompt(model: &LocalModel, tokens: usize, offset: usize) -> Result<Vec<u32>, InferenceError> {
    let mut prompt = repeated(model, FILLER, tokens + offset)?;
    Ok(prompt.split_off(offset))
}

/// `text` repeated to exactly `tokens` tokens (at least one).
fn repeated(model: &LocalModel, text: &str, tokens: usize) -> Result<Vec<u32>, InferenceError> {
    let once = model.tokenizer().encode(text)?;
    if once.is_empty() {
        return Err(InferenceError::InvalidRequest(format!(
            "`{text}` has no tokens"
        )));
    }
    Ok(once.iter().copied().cycle().take(tokens.max(1)).collect())
}

/// Measures one stream (a prompt of `prompt_tokens`, then `decode_tokens` greedy tokens,
/// fewer if the model ends its answer), then `streams` concurrent streams each, then the
/// `shared` workload, and the machine's limits.
pub fn measure(
    model_path: &Path,
    prompt_tokens: usize,
    decode_tokens: usize,
    streams: &[usize],
    shared: &SharedPrefixShape,
    draft_tokens: usize,
) -> Result<InferenceReport, InferenceError> {
    let model = LocalModel::load(model_path)?;
    let prompt = prompt(&model, prompt_tokens, 0)?;
    let greedy = SamplingParams::greedy();

    // Medians of three runs, as the llama.cpp script takes them.
    let mut first_tokens = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        model.generate(&prompt, &greedy, 1, &[], &mut |_| true)?;
        first_tokens.push(started.elapsed().as_secs_f64());
    }
    let first_token = median(first_tokens);
    // Decode is timed over the decode steps alone (prefill excluded), in the same pass
    // the serving workers run; one stream is the single-stream figure.
    let mut singles = Vec::new();
    let mut generated_tokens = 0;
    for _ in 0..3 {
        let (rate, tokens) = aggregate_decode(&model, 1, prompt_tokens, decode_tokens)?;
        singles.push(rate);
        generated_tokens = tokens;
    }
    let single = median(singles);
    let mut aggregate = BTreeMap::new();
    for &count in streams {
        let (rate, _) = aggregate_decode(&model, count, prompt_tokens, decode_tokens)?;
        aggregate.insert(count, rate);
    }
    let shared_prefix = shared_prefix(&model, shared)?;
    let mut cached = model.clone();
    cached.cache_prefixes(shared.prefix_cache_mb);
    let shared_prefix_cached = self::shared_prefix(&cached, shared)?;
    let prefix_cache_gain = PrefixCacheGain {
        time_to_first_token_p50: shared_prefix.time_to_first_token_ms_p50
            / shared_prefix_cached.time_to_first_token_ms_p50,
        time_to_first_token_p95: shared_prefix.time_to_first_token_ms_p95
            / shared_prefix_cached.time_to_first_token_ms_p95,
        aggregate_tokens_per_s: shared_prefix_cached.aggregate_tokens_per_s
            / shared_prefix.aggregate_tokens_per_s,
    };
    let drafting = drafting(&model, draft_tokens, decode_tokens)?;
    let limits = probe::measure();
    let weights = model.weights();
    let fractions = Fractions::of(
        &limits,
        weights.pass_cost(),
        weights.kv_bytes_per_token() * (prompt.len() + generated_tokens / 2),
        (prompt.len() as f64 / first_token, single),
        &aggregate,
    );

    Ok(InferenceReport {
        benchmark: "inference",
        model: model
            .summary()
            .name
            .clone()
            .unwrap_or_else(|| model_path.display().to_string()),
        quantization: model.summary().quantization.clone(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        simd_detected: simd::detected(),
        simd_compiled: simd::compiled(),
        kernel_path: simd::kernel_path(),
        prompt_tokens: prompt.len(),
        generated_tokens,
        time_to_first_token_ms: first_token * 1e3,
        prefill_tokens_per_s: prompt.len() as f64 / first_token,
        decode_tokens_per_s: single,
        batching_gain: aggregate
            .iter()
            .map(|(streams, rate)| (*streams, rate / single.max(1e-9)))
            .collect(),
        aggregate_decode_tokens_per_s: aggregate,
        peak_memory_mb: peak_memory_mb(),
        limits,
        pass_cost: weights.pass_cost(),
        kv_bytes_per_token: weights.kv_bytes_per_token(),
        fractions,
        shared_prefix,
        shared_prefix_cached,
        prefix_cache_gain,
        drafting,
    })
}

/// What the drafting workload asks: code to rewrite, which the answer mostly copies.
const REWRITE: &str = "Add a docstring to each function of this module and return the whole \
module.\n```python\nimport json\n\n\ndef load_tasks(path):\n    with open(path) as file:\n        \
return json.load(file)\n\n\ndef save_tasks(path, tasks):\n    with open(path, \"w\") as file:\n        \
json.dump(tasks, file, indent=2)\n\n\ndef add_task(tasks, title):\n    tasks.append({\"title\": title, \
\"done\": False})\n    return tasks\n\n\ndef complete_task(tasks, index):\n    tasks[index][\"done\"] = True\n    \
return tasks\n```";

/// The rewrite, decoded `tokens` tokens greedily with drafts of up to `max_draft`
/// tokens and without.
fn drafting(
    model: &LocalModel,
    max_draft: usize,
    tokens: usize,
) -> Result<DraftingReport, InferenceError> {
    let prompt = model.chat_prompt(&[ChatMessage::new("user", REWRITE)])?;
    let plain = decode_alone(model, &prompt, tokens, Drafting::OFF)?;
    let drafting = Drafting {
        max_tokens: max_draft,
        max_streams: 1,
    };
    let drafted = decode_alone(model, &prompt, tokens, drafting)?;
    // The first token comes from the prefill, before the clock starts.
    let rate = |run: &Decoded| run.tokens.len().saturating_sub(1) as f64 / run.seconds.max(1e-9);
    Ok(DraftingReport {
        prompt_tokens: prompt.len(),
        generated_tokens: drafted.tokens.len(),
        max_draft_tokens: max_draft,
        plain_tokens_per_s: rate(&plain),
        drafted_tokens_per_s: rate(&drafted),
        gain: rate(&drafted) / rate(&plain).max(1e-9),
        tokens_per_pass: drafted.tokens.len() as f64 / drafted.passes.max(1) as f64,
        same_output: plain.tokens == drafted.tokens,
    })
}

/// One stream's decode after its prompt is in.
struct Decoded {
    tokens: Vec<u32>,
    seconds: f64,
    passes: usize,
}

fn decode_alone(
    model: &LocalModel,
    prompt: &[u32],
    tokens: usize,
    drafting: Drafting,
) -> Result<Decoded, InferenceError> {
    let mut engine = BatchEngine::new(model.clone(), usize::MAX).with_drafting(drafting);
    engine.admit(
        0,
        request(prompt.to_vec(), SamplingParams::greedy(), tokens),
    )?;
    // Prefill (in slices) until the first token: decode alone is timed.
    let mut finished = None;
    while finished.is_none() && !engine.is_idle() {
        let events = engine.step()?;
        if events.iter().any(|event| event.generated_tokens > 0) {
            break;
        }
        finished = events.into_iter().find_map(|event| event.finished);
    }
    let started = Instant::now();
    let mut passes = 0;
    while !engine.is_idle() {
        passes += 1;
        if let Some(done) = engine.step()?.into_iter().find_map(|event| event.finished) {
            finished = Some(done);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let tokens = finished.map(|done| done.token_ids).unwrap_or_default();
    Ok(Decoded {
        tokens,
        seconds,
        passes,
    })
}

impl Fractions {
    /// `rates` is (prefill, single-stream decode) in tokens/s; `cache_bytes` what a
    /// decode step of that run reads of its cache, on average.
    fn of(
        limits: &MachineLimits,
        cost: PassCost,
        cache_bytes: usize,
        (prefill, decode): (f64, f64),
        aggregate: &BTreeMap<usize, f64>,
    ) -> Self {
        let bytes_per_token = (cost.weight_bytes + cache_bytes) as f64;
        let of_peak = |rate: f64| {
            let peak = limits.int8_peak_gmac_s?;
            Some(rate * cost.multiply_adds as f64 / (peak * 1e9))
        };
        Self {
            decode_of_bandwidth: decode * bytes_per_token / (limits.memory_bandwidth_gb_s * 1e9),
            prefill_of_peak: of_peak(prefill),
            aggregate_decode_of_peak: aggregate
                .iter()
                .filter_map(|(streams, rate)| Some((*streams, of_peak(*rate)?)))
                .collect(),
        }
    }
}

/// Runs `shape`'s requests through one batch engine as a serving worker would, all
/// arriving at once.
pub fn shared_prefix(
    model: &LocalModel,
    shape: &SharedPrefixShape,
) -> Result<SharedPrefixReport, InferenceError> {
    const TEMPERATURE: f64 = 0.7;
    const TOP_P: f64 = 0.9;
    let system = prompt(model, shape.prefix_tokens, 0)?;
    let mut engine = BatchEngine::new(model.clone(), shape.max_step_tokens);
    let started = Instant::now();
    for stream in 0..shape.streams {
        let question = format!("Question {stream}: what did build {stream} change, and why? ");
        let mut prompt = system.clone();
        prompt.extend(repeated(model, &question, shape.question_tokens)?);
        let params = SamplingParams {
            temperature: TEMPERATURE,
            top_p: Some(TOP_P),
            seed: stream as u64,
            ..SamplingParams::greedy()
        };
        engine.admit(
            stream as u64,
            request(prompt, params, shape.max_output_tokens),
        )?;
    }
    let mut first_tokens = BTreeMap::new();
    let mut generated_tokens = 0;
    while !engine.is_idle() {
        for event in engine.step()? {
            if event.generated_tokens > 0 {
                let at = started.elapsed().as_secs_f64() * 1e3;
                first_tokens.entry(event.id).or_insert(at);
            }
            if let Some(done) = event.finished {
                generated_tokens += done.token_ids.len();
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let first_tokens: Vec<f64> = first_tokens.into_values().collect();
    Ok(SharedPrefixReport {
        streams: shape.streams,
        prefix_tokens: shape.prefix_tokens,
        question_tokens: shape.question_tokens,
        max_output_tokens: shape.max_output_tokens,
        temperature: TEMPERATURE,
        top_p: TOP_P,
        max_step_tokens: shape.max_step_tokens,
        time_to_first_token_ms_p50: percentile(&first_tokens, 0.5),
        time_to_first_token_ms_p95: percentile(&first_tokens, 0.95),
        generated_tokens,
        aggregate_tokens_per_s: generated_tokens as f64 / elapsed.max(1e-9),
        prefix_cache: model.prefix_stats(),
    })
}

/// A benchmark's request: no stop strings, nothing cut short but by `max_tokens`.
fn request(prompt: Vec<u32>, params: SamplingParams, max_tokens: usize) -> GenerationRequest {
    GenerationRequest {
        priority: Priority::Interactive,
        prompt,
        params,
        max_tokens,
        stop: Vec::new(),
        stop_on_loop: false,
    }
}

/// The nearest-rank percentile `p` (0 to 1) of `values`; NaN when there are none.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}

/// Decode tokens per second over `streams` sequences batched together, and the tokens
/// each generated: all prompts are prefilled first, then the decode passes alone are
/// timed.
fn aggregate_decode(
    model: &LocalModel,
    streams: usize,
    prompt_tokens: usize,
    decode_tokens: usize,
) -> Result<(f64, usize), InferenceError> {
    let mut engine = BatchEngine::new(model.clone(), usize::MAX);
    for stream in 0..streams.max(1) {
        let prompt = prompt(model, prompt_tokens, stream * 7)?;
        let request = request(prompt, SamplingParams::greedy(), decode_tokens + 1);
        engine.admit(stream as u64, request)?;
    }
    // The first step prefills every prompt and samples each stream's first token.
    engine.step()?;
    let started = Instant::now();
    let mut tokens = 0;
    while !engine.is_idle() {
        tokens += engine
            .step()?
            .iter()
            .map(|event| event.new_tokens)
            .sum::<usize>();
    }
    let rate = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok((rate, tokens / streams.max(1) + 1))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The process's peak resident memory (Linux `VmHWM`).
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_figure_is_divided_by_the_limit_that_bounds_it() {
        let limits = MachineLimits {
            threads: 2,
            memory_bandwidth_gb_s: 10.0,
            int8_peak_gmac_s: Some(100.0),
            kernel_path: "avx2",
        };
        let cost = PassCost {
            weight_bytes: 90_000_000,
            multiply_adds: 200_000_000,
        };
        let aggregate = BTreeMap::from([(4, 100.0)]);
        // 100 tokens/s × (90 MB + 10 MB of cache) = 10 GB/s: all of the bandwidth.
        let fractions = Fractions::of(&limits, cost, 10_000_000, (250.0, 100.0), &aggregate);
        assert!((fractions.decode_of_bandwidth - 1.0).abs() < 1e-9);
        // 250 tokens/s × 0.2 GMAC = 50 GMAC/s of 100.
        assert_eq!(fractions.prefill_of_peak, Some(0.5));
        assert_eq!(fractions.aggregate_decode_of_peak[&4], 0.2);
        let portable = MachineLimits {
            int8_peak_gmac_s: None,
            ..limits
        };
        let fractions = Fractions::of(&portable, cost, 0, (250.0, 100.0), &aggregate);
        assert_eq!(fractions.prefill_of_peak, None);
        assert!(fractions.aggregate_decode_of_peak.is_empty());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&values, 0.5), 3.0);
        assert_eq!(percentile(&values, 0.95), 5.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
