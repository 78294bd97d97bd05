//! The prefix cache with the real default model: a prompt that starts like one seen
//! before takes that start's keys and values instead of computing them, and answers
//! exactly as it would have without the cache, alone or batched with others.

mod support;

use troupe_inference::batch::BatchEngine;
use troupe_inference::catalog::SMOLLM2;
use troupe_inference::generation::{GenerationRequest, LocalModel, Priority, SamplingParams};
use troupe_inference::prefix::BLOCK_TOKENS;

fn model() -> LocalModel {
    LocalModel::load(&support::first_file(&SMOLLM2)).expect("the default model loads")
}

/// A system prompt of 150 tokens: four whole blocks and 22 tokens more.
fn system(model: &LocalModel) -> Vec<u32> {
    let text = "You review pull requests for a build system. Say what changed and whether \
                the tests cover it. ";
    let once = model.tokenizer().encode(text).unwrap();
    once.iter().copied().cycle().take(150).collect()
}

fn ask(model: &LocalModel, system: &[u32], question: &str) -> Vec<u32> {
    let mut prompt = system.to_vec();
    prompt.extend(model.tokenizer().encode(question).unwrap());
    prompt
}

fn greedy(model: &LocalModel, prompt: &[u32]) -> Vec<u32> {
    let generated = model
        .generate(prompt, &SamplingParams::greedy(), 12, &[], &mut |_| true)
        .unwrap();
    generated.token_ids
}

#[test]
fn a_prompt_sharing_a_prefix_takes_it_from_the_cache_and_answers_the_same() {
    let plain = model();
    let mut cached = plain.clone();
    cached.cache_prefixes(64);
    let system = system(&plain);
    let first = ask(&plain, &system, "Question: did build 7 add tests?");
    let second = ask(&plain, &system, "Question: what broke in build 9?");

    assert_eq!(greedy(&cached, &first), greedy(&plain, &first));
    let stats = cached.prefix_stats().unwrap();
    assert_eq!(stats.hit_blocks, 0, "nothing to reuse yet: {stats:?}");
    let published = (first.len() - 1) / BLOCK_TOKENS;
    assert_eq!(stats.blocks, published, "{stats:?}");

    assert_eq!(greedy(&cached, &second), greedy(&plain, &second));
    let stats = cached.prefix_stats().unwrap();
    let shared = system.len() / BLOCK_TOKENS;
    assert_eq!(
        stats.hit_blocks, shared as u64,
        "the system prompt's blocks: {stats:?}"
    );
    assert_eq!(stats.hit_tokens, (shared * BLOCK_TOKENS) as u64);
    let per_token = cached.weights().kv_bytes_per_token();
    assert_eq!(stats.bytes, stats.blocks * BLOCK_TOKENS * per_token);
}

/// Four requests arriving together with one system prompt: the first computes it, the
/// others wait for its blocks and take them, and every answer is the uncached one.
#[test]
fn requests_arriving_together_compute_their_shared_prefix_once() {
    let plain = model();
    let mut cached = plain.clone();
    cached.cache_prefixes(64);
    let system = system(&plain);
    let prompts: Vec<Vec<u32>> = (0..4)
        .map(|i| {
            ask(
                &plain,
                &system,
                &format!("Question {i}: what did build {i} change?"),
            )
        })
        .collect();
    let answers = |model: &LocalModel| {
        let mut engine = BatchEngine::new(model.clone(), 512);
        for (id, prompt) in prompts.iter().enumerate() {
            let request = GenerationRequest {
                prompt: prompt.clone(),
                priority: Priority::Interactive,
                params: SamplingParams::greedy(),
                max_tokens: 8,
                stop: Vec::new(),
                stop_on_loop: false,
            };
            engine.admit(id as u64, request).unwrap();
        }
        let mut answers = vec![Vec::new(); prompts.len()];
        while !engine.is_idle() {
            for event in engine.step().unwrap() {
                if let Some(done) = event.finished {
                    answers[event.id as usize] = done.token_ids;
                }
            }
        }
        answers
    };
    assert_eq!(answers(&cached), answers(&plain));
    let stats = cached.prefix_stats().unwrap();
    let shared = (system.len() / BLOCK_TOKENS) as u64;
    assert_eq!(
        stats.hit_blocks,
        3 * shared,
        "three of four took it: {stats:?}"
    );
}
