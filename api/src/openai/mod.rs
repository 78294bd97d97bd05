//! The OpenAI-compatible face of the local models: `/v1/models`, `/v1/chat/completions`
//! (server-sent events when `stream` is set) and `/v1/embeddings`; and Anthropic's
//! `/v1/messages`, so that one Troupe node can stand in for either cloud for another.
//! A client that disconnects mid-stream drops the generation stream, which cancels the
//! sequence in its worker before the next pass.

pub(crate) mod forward;
mod stream;
mod wire;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use troupe_inference::InferenceError;
use troupe_inference::chat::ChatMessage;
use troupe_inference::generation::{
    FinishReason, Generated, GenerationRequest, Priority, SamplingParams,
};
use troupe_inference::providers::CallRecord;
use troupe_inference::sampler::fresh_seed;
use troupe_inference::serve::{GenerationStream, InferenceService};

use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::NodeState;
use tracing::Instrument;
use troupe_node::Node;
use troupe_store::clock::now_ms;
use troupe_telemetry::spans;
pub use wire::*;

/// Answer length when the request names none.
const DEFAULT_MAX_TOKENS: usize = 512;

/// The status and code an inference failure shows as.
pub fn inference_error(error: InferenceError) -> ApiError {
    let (status, code) = match &error {
        InferenceError::InvalidRequest(_) | InferenceError::PromptTooLong { .. } => {
            (StatusCode::BAD_REQUEST, "invalid_request")
        }
        InferenceError::Overloaded { .. } => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
        InferenceError::NoWorkers { .. } | InferenceError::ModelMissing { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "model_unavailable")
        }
        InferenceError::WorkerStopped => (StatusCode::SERVICE_UNAVAILABLE, "worker_restarting"),
        InferenceError::Provider { .. } | InferenceError::AllProvidersFailed(_) => {
            (StatusCode::BAD_GATEWAY, "providers_failed")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "inference_failed"),
    };
    let retry_after_secs = match &error {
        InferenceError::Overloaded { retry_after_ms } => Some(retry_after_ms.div_ceil(1000)),
        InferenceError::WorkerStopped => Some(1),
        _ => None,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%error, "inference request failed");
    }
    ApiError {
        retry_after_secs,
        ..ApiError::new(status, code, error.to_string())
    }
}

fn service(node: &Node) -> Result<&InferenceService, ApiError> {
    node.inference().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model_unavailable",
            "this node serves no local models (models.serve is off)",
        )
    })
}

fn model_name(service: &InferenceService) -> String {
    service
        .generation_model()
        .map_or_else(|| "local".into(), |model| model.id())
}

/// The models this node serves, as OpenAI lists them.
#[utoipa::path(get, path = "/v1/models",
    responses((status = 200, body = ModelList), (status = 503, body = ErrorBody, description = "no local models served")))]
pub async fn list_models(State(node): NodeState) -> Result<Json<ModelList>, ApiError> {
    let service = service(&node)?;
    let entry = |id: String| ModelEntry {
        id,
        object: "model".into(),
        created: 0,
        owned_by: "troupe".into(),
    };
    let mut data = Vec::new();
    if service.generation_model().is_some() {
        data.push(entry(model_name(service)));
    }
    if let Some(id) = service.embedding_model_id() {
        data.push(entry(id.to_string()));
    }
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}

/// What this node has loaded, on which device, and how busy each worker is (what
/// `troupe models list` shows as loaded).
#[utoipa::path(get, path = "/api/v1/models", responses((status = 200, body = LoadedModels)))]
pub async fn loaded_models(State(node): NodeState) -> Result<Json<LoadedModels>, ApiError> {
    let Some(service) = node.inference() else {
        return Ok(Json(LoadedModels {
            serving: false,
            models: Vec::new(),
            workers: Vec::new(),
        }));
    };
    let mut models = Vec::new();
    if let Some(model) = service.generation_model() {
        let summary = model.summary();
        models.push(LoadedModel {
            name: model_name(service),
            role: "generation".into(),
            path: Some(summary.path.display().to_string()),
            size_bytes: Some(summary.size_bytes),
            quantization: summary.quantization.clone(),
            device: troupe_inference::device::describe(model.weights().device()),
            context_tokens: Some(model.context_length()),
            dimensions: None,
            prefix_cache: model.prefix_stats(),
        });
    }
    if let (Some(id), Some(dimensions)) =
        (service.embedding_model_id(), service.embedding_dimensions())
    {
        models.push(LoadedModel {
            name: id.to_string(),
            role: "embedding".into(),
            path: None,
            size_bytes: None,
            quantization: "f32".into(),
            device: "cpu".into(),
            context_tokens: None,
            dimensions: Some(dimensions),
            prefix_cache: None,
        });
    }
    let workers = service.workers().await.map_err(inference_error)?;
    Ok(Json(LoadedModels {
        serving: true,
        models,
        workers,
    }))
}

fn messages(system: Option<String>, wire: &[WireMessage]) -> Result<Vec<ChatMessage>, ApiError> {
    if wire.is_empty() {
        return Err(ApiError::invalid_request(
            "`messages` is empty: send at least one message",
        ));
    }
    let mut messages: Vec<ChatMessage> = system
        .into_iter()
        .map(|text| ChatMessage::new("system", &text))
        .collect();
    for (index, message) in wire.iter().enumerate() {
        if !["system", "user", "assistant", "developer"].contains(&message.role.as_str()) {
            return Err(ApiError::invalid_request(format!(
                "messages[{index}].role `{}` is not supported; use system, user or assistant",
                message.role
            )));
        }
        let role = if message.role == "developer" {
            "system"
        } else {
            &message.role
        };
        messages.push(ChatMessage::new(role, &message.content.text()?));
    }
    Ok(messages)
}

fn prompt(service: &InferenceService, messages: &[ChatMessage]) -> Result<Vec<u32>, ApiError> {
    let model = service
        .generation_model()
        .ok_or_else(|| inference_error(InferenceError::NoWorkers { kind: "generation" }))?;
    model.chat_prompt(messages).map_err(inference_error)
}

fn sampling(
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<usize>,
    seed: Option<u64>,
    repetition_penalty: Option<f32>,
) -> SamplingParams {
    SamplingParams {
        temperature: temperature.unwrap_or(1.0),
        top_p: top_p.filter(|p| *p < 1.0),
        top_k,
        repeat_penalty: repetition_penalty.unwrap_or(1.0),
        repeat_last_n: 64,
        seed: seed.unwrap_or_else(fresh_seed),
    }
}

fn max_tokens(value: Option<u64>) -> usize {
    value.map_or(DEFAULT_MAX_TOKENS, |tokens| {
        usize::try_from(tokens).unwrap_or(usize::MAX)
    })
}

fn usage(generated: &Generated) -> Usage {
    let completion = generated.token_ids.len();
    Usage {
        prompt_tokens: generated.prompt_tokens,
        completion_tokens: completion,
        total_tokens: generated.prompt_tokens + completion,
    }
}

/// A chat answer from the local model, as OpenAI's API gives it; server-sent
/// `ChatCompletionChunk` events when `stream` is set.
#[utoipa::path(post, path = "/v1/chat/completions", request_body = ChatRequest,
    responses(
        (status = 200, description = "the answer; with `stream: true`, `text/event-stream` of `ChatCompletionChunk` ending with `[DONE]`",
            content((ChatCompletion = "application/json"), (ChatCompletionChunk = "text/event-stream"))),
        (status = 400, body = ErrorBody), (status = 429, body = ErrorBody, description = "overloaded; see Retry-After"),
        (status = 503, body = ErrorBody)))]
pub async fn chat_completions(
    State(node): NodeState,
    JsonBody(request): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    let service = service(&node)?.clone();
    if request.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid_request("only n = 1 is supported"));
    }
    let chat = messages(None, &request.messages)?;
    let stop = match request.stop {
        None => Vec::new(),
        Some(Stop::One(stop)) => vec![stop],
        Some(Stop::Many(stops)) if stops.len() <= 4 => stops,
        Some(Stop::Many(_)) => {
            return Err(ApiError::invalid_request("`stop` takes at most 4 strings"));
        }
    };
    let generation = GenerationRequest {
        priority: Priority::Interactive,
        prompt: prompt(&service, &chat)?,
        params: sampling(
            request.temperature,
            request.top_p,
            request.top_k,
            request.seed,
            request.repetition_penalty,
        ),
        max_tokens: max_tokens(request.max_completion_tokens.or(request.max_tokens)),
        stop,
        stop_on_loop: false,
    };
    let model = request.model.unwrap_or_else(|| model_name(&service));
    let span = spans::model_call("chat", "local", &model, true);
    let started = now_ms();
    let prompt_tokens = generation.prompt.len();
    let stream = service
        .generate(generation)
        .instrument(span.clone())
        .await
        .map_err(inference_error)?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now_ms() / 1000;
    if request.stream {
        let include_usage = request.stream_options.include_usage;
        let ledger = Ledger {
            node: node.clone(),
            started,
            prompt_tokens,
            span,
        };
        let events = stream::sse(id, created, model, stream, include_usage, ledger);
        return Ok(events.into_response());
    }
    let ledger = Ledger {
        node: node.clone(),
        started,
        prompt_tokens,
        span,
    };
    let generated = finish_recorded(&ledger, &model, stream).await?;
    let usage = usage(&generated);
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: generated.text,
            },
            finish_reason: generated.finish.openai_name().into(),
        }],
        usage,
    })
    .into_response())
}

/// What a call needs to be written to the ledger, and to end its span, when it ends.
#[derive(Clone)]
struct Ledger {
    node: std::sync::Arc<Node>,
    started: i64,
    prompt_tokens: usize,
    /// The call's `chat {model}` span; the model's stream is read inside it.
    span: tracing::Span,
}

/// How a `/v1` call of the local model ended, for the ledger.
struct CallEnd<'a> {
    tokens_in: usize,
    tokens_out: usize,
    /// `stop`, `length`, ...; empty when there was no answer.
    finish: &'static str,
    /// `None` when the answer was delivered.
    error: Option<&'a str>,
}

impl<'a> CallEnd<'a> {
    fn of(prompt_tokens: usize, generated: &'a Result<Generated, InferenceError>) -> Self {
        match generated {
            Ok(generated) => CallEnd::answered(generated),
            Err(_) => CallEnd {
                tokens_in: prompt_tokens,
                tokens_out: 0,
                finish: "",
                error: Some("the generation failed"),
            },
        }
    }

    fn answered(generated: &Generated) -> Self {
        CallEnd {
            tokens_in: generated.prompt_tokens,
            tokens_out: generated.token_ids.len(),
            finish: generated.finish.openai_name(),
            error: None,
        }
    }
}

/// Waits for a non-streamed answer and writes the call to the ledger, answered or not.
async fn finish_recorded(
    ledger: &Ledger,
    model: &str,
    stream: GenerationStream,
) -> Result<Generated, ApiError> {
    let generated = stream.finish().instrument(ledger.span.clone()).await;
    let end = CallEnd::of(ledger.prompt_tokens, &generated);
    record(ledger, model, end).await;
    generated.map_err(inference_error)
}

/// Writes one call of the local model, made through `/v1`, to the cost ledger (a
/// failure to write is logged: the caller's answer is not held back for it), and ends
/// its span with the tokens and finish reason, or the error.
async fn record(ledger: &Ledger, model: &str, end: CallEnd<'_>) {
    match end.error {
        Some(error) => spans::failed(&ledger.span, "generation_failed", error),
        None => spans::model_answered(
            &ledger.span,
            &spans::ModelUsage {
                response_model: model,
                input_tokens: end.tokens_in,
                output_tokens: end.tokens_out,
                finish_reason: end.finish,
                cost_usd: 0.0,
                escalated: false,
                quality: None,
            },
        ),
    }
    let (node, started) = (&ledger.node, ledger.started);
    let call = CallRecord {
        provider: "local".into(),
        model: model.into(),
        local: true,
        task_type: "chat".into(),
        agent: None,
        tokens_in: end.tokens_in,
        tokens_out: end.tokens_out,
        latency_ms: (now_ms() - started).max(0) as u64,
        cost_usd: 0.0,
        baseline_usd: node.baseline_usd(end.tokens_in, end.tokens_out),
        quality: None,
        escalated: false,
        served: end.error.is_none(),
        error: end.error.map(str::to_string),
    };
    let request_id = uuid::Uuid::now_v7().to_string();
    // `/v1` has no field to name a project; its calls (local, free) go to `default`.
    let project = troupe_store::ProjectId::from(troupe_store::DEFAULT_PROJECT);
    if let Err(error) = node
        .record_calls(&request_id, started, &project, &[call])
        .await
    {
        tracing::warn!(%error, "cannot write a model call to the cost ledger");
    }
}

/// Embeddings from the local embedding model, as OpenAI's API gives them.
#[utoipa::path(post, path = "/v1/embeddings", request_body = EmbeddingRequest,
    responses((status = 200, body = EmbeddingList), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn embeddings(
    State(node): NodeState,
    JsonBody(request): JsonBody<EmbeddingRequest>,
) -> Result<Json<EmbeddingList>, ApiError> {
    let service = service(&node)?;
    let texts = match request.input {
        EmbeddingInput::One(text) => vec![text],
        EmbeddingInput::Many(texts) => texts,
    };
    let embedded = service.embed(texts).await.map_err(inference_error)?;
    let data = embedded
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| Embedding {
            object: "embedding".into(),
            index,
            embedding,
        })
        .collect();
    let model = request.model.unwrap_or_else(|| {
        service
            .embedding_model_id()
            .unwrap_or("embedding")
            .to_string()
    });
    Ok(Json(EmbeddingList {
        object: "list".into(),
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: embedded.tokens,
            total_tokens: embedded.tokens,
        },
    }))
}

/// A chat answer from the local model as Anthropic's Messages API gives it (without
/// streaming).
#[utoipa::path(post, path = "/v1/messages", request_body = MessagesRequest,
    responses((status = 200, body = AnthropicMessage), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn anthropic_messages(
    State(node): NodeState,
    JsonBody(request): JsonBody<MessagesRequest>,
) -> Result<Json<AnthropicMessage>, ApiError> {
    let service = service(&node)?;
    if request.stream {
        return Err(ApiError::invalid_request(
            "streaming is not supported on /v1/messages; use /v1/chat/completions",
        ));
    }
    let system = request.system.as_ref().map(Content::text).transpose()?;
    let chat = messages(system, &request.messages)?;
    let generation = GenerationRequest {
        priority: Priority::Interactive,
        prompt: prompt(service, &chat)?,
        params: sampling(
            request.temperature,
            request.top_p,
            request.top_k,
            None,
            None,
        ),
        max_tokens: max_tokens(Some(request.max_tokens)),
        stop: request.stop_sequences,
        stop_on_loop: false,
    };
    let model = request.model.unwrap_or_else(|| model_name(service));
    let ledger = Ledger {
        node: node.clone(),
        started: now_ms(),
        prompt_tokens: generation.prompt.len(),
        span: spans::model_call("chat", "local", &model, true),
    };
    let stream = service
        .generate(generation)
        .instrument(ledger.span.clone())
        .await
        .map_err(inference_error)?;
    let generated = finish_recorded(&ledger, &model, stream).await?;
    let stop_reason = match generated.finish {
        FinishReason::Length | FinishReason::Loop => "max_tokens",
        FinishReason::StopString => "stop_sequence",
        FinishReason::EndOfSequence | FinishReason::Cancelled => "end_turn",
    };
    let usage = AnthropicUsage {
        input_tokens: generated.prompt_tokens,
        output_tokens: generated.token_ids.len(),
    };
    Ok(Json(AnthropicMessage {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        kind: "message".into(),
        role: "assistant".into(),
        model,
        content: vec![TextBlock {
            kind: "text".into(),
            text: generated.text,
        }],
        stop_reason: stop_reason.into(),
        stop_sequence: None,
        usage,
    }))
}
