//! `troupe bench inference`: single-stream figures for a GGUF model on this machine —
//! prefill tokens/s, decode tokens/s, time to first token, peak memory — with the SIMD
//! the CPU has and the build uses. (Concurrent streams and the llama.cpp comparison come
//! with the batching workers.)

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::errors::InferenceError;
use crate::generation::{LocalModel, SamplingParams};
use crate::simd;

#[derive(Debug, Clone, Serialize)]
pub struct InferenceReport {
    pub benchmark: &'static str,
    pub model: String,
    pub quantization: String,
    pub threads: usize,
    pub simd_detected: Vec<&'static str>,
    pub simd_compiled: Vec<&'static str>,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub time_to_first_token_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub peak_memory_mb: Option<f64>,
}

/// Measures one stream: a prompt of about `prompt_tokens` tokens, then `decode_tokens`
/// greedy tokens (fewer if the model ends its answer).
pub fn single_stream(
    model_path: &Path,
    prompt_tokens: usize,
    decode_tokens: usize,
) -> Result<InferenceReport, InferenceError> {
    let model = LocalModel::load(model_path)?;
    let filler =
        "The quick brown fox jumps over the lazy dog while the engineers review the build. ";
    let mut prompt = Vec::new();
    while prompt.len() < prompt_tokens {
        prompt.extend(model.tokenizer().encode(filler)?);
    }
    prompt.truncate(prompt_tokens.max(1));
    let greedy = SamplingParams::greedy();

    let started = Instant::now();
    model.generate(&prompt, &greedy, 1, &[], &mut |_| true)?;
    let first_token = started.elapsed();

    let started = Instant::now();
    let generated = model.generate(&prompt, &greedy, decode_tokens.max(2), &[], &mut |_| true)?;
    let total = started.elapsed();
    let decode_tokens = generated.token_ids.len().saturating_sub(1).max(1);
    let decode_seconds = (total.as_secs_f64() - first_token.as_secs_f64()).max(1e-9);

    Ok(InferenceReport {
        benchmark: "inference-single-stream",
        model: model
            .summary()
            .name
            .clone()
            .unwrap_or_else(|| model_path.display().to_string()),
        quantization: model.summary().quantization.clone(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        simd_detected: simd::detected(),
        simd_compiled: simd::compiled(),
        prompt_tokens: prompt.len(),
        generated_tokens: generated.token_ids.len(),
        time_to_first_token_ms: first_token.as_secs_f64() * 1e3,
        prefill_tokens_per_s: prompt.len() as f64 / first_token.as_secs_f64(),
        decode_tokens_per_s: decode_tokens as f64 / decode_seconds,
        peak_memory_mb: peak_memory_mb(),
    })
}

/// The process's peak resident memory (Linux `VmHWM`).
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}
