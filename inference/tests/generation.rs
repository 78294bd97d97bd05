//! Generation with the real default model: deterministic greedy output, reproducible
//! sampling, every way a generation ends, and bad requests refused.

mod support;

use troupe_inference::InferenceError;
use troupe_inference::catalog::SMOLLM2;
use troupe_inference::chat::ChatMessage;
use troupe_inference::generation::{FinishReason, LocalModel, SamplingParams};

fn model() -> LocalModel {
    LocalModel::load(&support::first_file(&SMOLLM2)).expect("the default model loads")
}

fn chat(model: &LocalModel, question: &str) -> Vec<u32> {
    model
        .chat_prompt(&[ChatMessage::new("user", question)])
        .unwrap()
}

#[test]
fn prompts_are_rendered_with_the_models_own_template() {
    let model = model();
    let ids = chat(&model, "Hi");
    let text = model.tokenizer().decode(&ids).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn greedy_generation_is_a_function_of_the_prompt() {
    let model = model();
    // Without the template's default system message: the form this small model answers
    // this question best in, which makes a wrong forward pass visible.
    let plain =
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let prompt = model.tokenizer().encode(plain).unwrap();
    let mut streamed = String::new();
    let first = model
        .generate(&prompt, &SamplingParams::greedy(), 24, &[], &mut |piece| {
            streamed.push_str(piece);
            true
        })
        .unwrap();
    assert!(!first.token_ids.is_empty());
    assert_eq!(
        streamed, first.text,
        "the streamed pieces add up to the text"
    );
    assert!(first.text.contains("Paris"), "{:?}", first.text);
    let second = model
        .generate(&prompt, &SamplingParams::greedy(), 24, &[], &mut |_| true)
        .unwrap();
    assert_eq!(first, second);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let model = model();
    let prompt = chat(&model, "Write a word.");
    let params = SamplingParams {
        temperature: 0.9,
        top_p: Some(0.95),
        top_k: Some(40),
        repeat_penalty: 1.1,
        repeat_last_n: 64,
        seed: 7,
    };
    let first = model
        .generate(&prompt, &params, 16, &[], &mut |_| true)
        .unwrap();
    let second = model
        .generate(&prompt, &params, 16, &[], &mut |_| true)
        .unwrap();
    assert_eq!(first.token_ids, second.token_ids);
}

#[test]
fn generation_ends_at_the_budget_a_stop_string_or_a_cancel() {
    let model = model();
    let prompt = chat(
        &model,
        "Count from one to twenty in words, separated by commas.",
    );
    let long = model
        .generate(&prompt, &SamplingParams::greedy(), 3, &[], &mut |_| true)
        .unwrap();
    assert_eq!(
        (long.token_ids.len(), long.finish),
        (3, FinishReason::Length)
    );

    let full = model
        .generate(&prompt, &SamplingParams::greedy(), 40, &[], &mut |_| true)
        .unwrap();
    // Stop at the first occurrence of the text's third character, whatever it is.
    let stop: String = full
        .text
        .chars()
        .nth(2)
        .unwrap_or_else(|| panic!("too short: {:?}", full.text))
        .to_string();
    let cut = full.text.find(&stop).unwrap();
    let stopped = model
        .generate(&prompt, &SamplingParams::greedy(), 40, &[stop], &mut |_| {
            true
        })
        .unwrap();
    assert_eq!(
        (stopped.text.as_str(), stopped.finish),
        (&full.text[..cut], FinishReason::StopString)
    );

    let mut pieces = 0;
    let cancelled = model
        .generate(&prompt, &SamplingParams::greedy(), 40, &[], &mut |_| {
            pieces += 1;
            pieces < 2
        })
        .unwrap();
    assert_eq!(cancelled.finish, FinishReason::Cancelled);
    assert!(cancelled.token_ids.len() < full.token_ids.len());
}

#[test]
fn bad_requests_are_refused_with_what_to_change() {
    let model = model();
    let prompt = chat(&model, "Hi");
    let refuse = |params: SamplingParams, max_tokens: usize, prompt: &[u32]| {
        model
            .generate(prompt, &params, max_tokens, &[], &mut |_| true)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refuse(SamplingParams::greedy(), 0, &prompt),
        "invalid request: max_tokens must be at least 1"
    );
    assert_eq!(
        refuse(SamplingParams::greedy(), 5, &[]),
        "invalid request: the prompt is empty"
    );
    let cold = SamplingParams {
        temperature: -1.0,
        ..SamplingParams::greedy()
    };
    assert_eq!(
        refuse(cold, 5, &prompt),
        "invalid request: temperature must be 0 (greedy) or more, got -1"
    );
    let wide = SamplingParams {
        top_p: Some(2.0),
        temperature: 1.0,
        ..SamplingParams::greedy()
    };
    assert_eq!(
        refuse(wide, 5, &prompt),
        "invalid request: top_p must be in (0, 1], got 2"
    );
}

#[test]
fn a_prompt_beyond_the_context_is_refused_and_a_huge_budget_is_served_to_the_context() {
    let mut model = model();
    assert_eq!(
        model.context_length(),
        4096,
        "the model's 8k, held to candle's rotary table"
    );
    model.limit_context(64);
    let context = model.context_length();
    assert_eq!(context, 64);
    let too_long = vec![model.tokenizer().token_id("Hello").unwrap(); context];
    let error = model
        .generate(&too_long, &SamplingParams::greedy(), 1, &[], &mut |_| true)
        .unwrap_err();
    assert!(
        matches!(error, InferenceError::PromptTooLong { prompt_tokens, context_tokens } if prompt_tokens == context && context_tokens == context),
        "{error}"
    );

    let nearly_full = vec![model.tokenizer().token_id("Hello").unwrap(); context - 2];
    let served = model
        .generate(
            &nearly_full,
            &SamplingParams::greedy(),
            1_000_000_000,
            &[],
            &mut |_| true,
        )
        .unwrap();
    assert!(served.token_ids.len() <= 2, "{served:?}");
}
