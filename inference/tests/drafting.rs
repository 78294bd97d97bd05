//! Speculative decoding with the real default model: drafts guessed from the prompt are
//! checked in the pass that feeds them, and the sequence answers token for token as it
//! would without them, greedy or sampled, alone or batched, stopped early or not, in
//! fewer passes when the answer copies its prompt.

mod support;

use troupe_inference::batch::{BatchEngine, Drafting};
use troupe_inference::catalog::SMOLLM2;
use troupe_inference::chat::ChatMessage;
use troupe_inference::generation::{
    FinishReason, Generated, GenerationRequest, LocalModel, Priority, SamplingParams,
};

fn model() -> LocalModel {
    LocalModel::load(&support::first_file(&SMOLLM2)).expect("the default model loads")
}

const CODE: &str = "def add_task(tasks, title):\n    tasks.append({\"title\": title, \"done\": False})\n    \
                    return tasks\n\n\ndef complete_task(tasks, index):\n    tasks[index][\"done\"] = True\n    \
                    return tasks\n";

/// A request whose answer copies much of its prompt.
fn rewrite(model: &LocalModel, params: SamplingParams, stop: &[&str]) -> GenerationRequest {
    let ask = format!("Repeat this Python module exactly.\n```python\n{CODE}```");
    GenerationRequest {
        prompt: model
            .chat_prompt(&[ChatMessage::new("user", &ask)])
            .unwrap(),
        priority: Priority::Interactive,
        params,
        max_tokens: 60,
        stop: stop.iter().map(|stop| stop.to_string()).collect(),
        stop_on_loop: false,
    }
}

/// Runs `requests` together to the end; their results in order, and the passes taken.
fn run(
    model: &LocalModel,
    requests: &[GenerationRequest],
    drafting: Drafting,
) -> (Vec<Generated>, usize) {
    let mut engine = BatchEngine::new(model.clone(), 512).with_drafting(drafting);
    for (id, request) in requests.iter().enumerate() {
        engine.admit(id as u64, request.clone()).unwrap();
    }
    let mut results: Vec<Option<Generated>> = vec![None; requests.len()];
    let mut passes = 0;
    while !engine.is_idle() {
        passes += 1;
        for event in engine.step().unwrap() {
            if let Some(done) = event.finished {
                results[event.id as usize] = Some(done);
            }
        }
    }
    let results = results
        .into_iter()
        .map(|done| done.expect("every request ends"))
        .collect();
    (results, passes)
}

const DRAFTS: Drafting = Drafting {
    max_tokens: 8,
    max_streams: 2,
};

#[test]
fn a_greedy_answer_is_the_same_with_drafts_in_fewer_passes() {
    let model = model();
    let request = rewrite(&model, SamplingParams::greedy(), &[]);
    let (plain, plain_passes) = run(&model, std::slice::from_ref(&request), Drafting::OFF);
    let (drafted, drafted_passes) = run(&model, &[request], DRAFTS);
    assert_eq!(drafted, plain);
    assert!(
        plain[0].text.contains("complete_task"),
        "the answer copies the module: {:?}",
        plain[0].text
    );
    assert!(
        drafted_passes * 2 < plain_passes,
        "drafts taken: {drafted_passes} passes against {plain_passes}"
    );
}

#[test]
fn a_sampled_answer_draws_the_same_tokens_with_drafts() {
    let model = model();
    let params = SamplingParams {
        temperature: 0.7,
        top_p: Some(0.9),
        repeat_penalty: 1.1,
        seed: 7,
        ..SamplingParams::greedy()
    };
    let requests = [
        rewrite(&model, params.clone(), &[]),
        rewrite(&model, SamplingParams { seed: 8, ..params }, &[]),
    ];
    let (plain, _) = run(&model, &requests, Drafting::OFF);
    let (drafted, _) = run(&model, &requests, DRAFTS);
    assert_eq!(drafted, plain);
    assert_ne!(
        plain[0].token_ids, plain[1].token_ids,
        "the seeds draw apart"
    );
}

#[test]
fn a_stop_string_inside_a_draft_ends_the_answer_where_it_would_have() {
    let model = model();
    let request = rewrite(&model, SamplingParams::greedy(), &["done"]);
    let (plain, _) = run(&model, std::slice::from_ref(&request), Drafting::OFF);
    let (drafted, _) = run(&model, &[request], DRAFTS);
    assert_eq!(
        plain[0].finish,
        FinishReason::StopString,
        "{:?}",
        plain[0].text
    );
    assert_eq!(drafted, plain);
}

#[test]
fn beyond_the_streams_set_no_sequence_drafts() {
    let model = model();
    let request = rewrite(&model, SamplingParams::greedy(), &[]);
    let three = [request.clone(), request.clone(), request];
    let (plain, plain_passes) = run(&model, &three, Drafting::OFF);
    let (drafted, drafted_passes) = run(&model, &three, DRAFTS);
    assert_eq!(drafted, plain);
    assert_eq!(
        drafted_passes, plain_passes,
        "three streams, drafts for two at most"
    );
}
