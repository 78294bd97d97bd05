//! `troupe bench inference`: figures for a GGUF model on this machine — prefill
//! tokens/s, single-stream decode tokens/s, aggregate decode tokens/s with N streams
//! batched together, time to first token, peak memory — with the SIMD the CPU has and
//! the build uses. The comparison with llama.cpp is put beside it by the binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::batch::BatchEngine;
use crate::errors::InferenceError;
use crate::generation::{LocalModel, SamplingParams};
use crate::sequence::GenerationRequest;
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
}

const FILLER: &str =
    "The quick brown fox jumps over the lazy dog while the engineers review the build. ";

/// A prompt of exactly `tokens` tokens of English text, starting `offset` tokens in (so
/// concurrent streams do not all read the same words).
fn prompt(model: &LocalModel, tokens: usize, offset: usize) -> Result<Vec<u32>, InferenceError> {
    let mut prompt = Vec::new();
    while prompt.len() < tokens + offset {
        prompt.extend(model.tokenizer().encode(FILLER)?);
    }
    Ok(prompt[offset..offset + tokens.max(1)].to_vec())
}

/// Measures one stream (a prompt of `prompt_tokens`, then `decode_tokens` greedy tokens,
/// fewer if the model ends its answer), then `streams` concurrent streams each.
pub fn measure(
    model_path: &Path,
    prompt_tokens: usize,
    decode_tokens: usize,
    streams: &[usize],
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
    })
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
        let request = GenerationRequest {
            prompt: prompt(model, prompt_tokens, stream * 7)?,
            params: SamplingParams::greedy(),
            max_tokens: decode_tokens + 1,
            stop: Vec::new(),
        };
        engine.admit(stream as u64, request)?;
    }
    // The first step prefills every prompt and samples each stream's first token.
    engine.step()?;
    let started = Instant::now();
    let mut tokens = 0;
    while !engine.is_idle() {
        tokens += engine.step()?.len();
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
