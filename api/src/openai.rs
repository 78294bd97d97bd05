//! The OpenAI-compatible face of the local models: `/v1/models`, `/v1/chat/completions`
//! (server-sent events when `stream` is set) and `/v1/embeddings`; and Anthropic's
//! `/v1/messages`, so that one Troupe node can stand in for either cloud for another.
//! A client that disconnects mid-stream drops the generation stream, which cancels the
//! sequence in its worker before the next pass.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use troupe_inference::InferenceError;
use troupe_inference::chat::ChatMessage;
use troupe_inference::generation::{FinishReason, Generated, GenerationRequest, SamplingParams};
use troupe_inference::providers::CallRecord;
use troupe_inference::serve::{GenerationStream, InferenceService, StreamEvent};

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::handlers::NodeState;
use troupe_node::Node;
use troupe_store::clock::now_ms;

/// Answer length when the request names none.
const DEFAULT_MAX_TOKENS: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

impl Content {
    fn text(&self) -> Result<String, ApiError> {
        match self {
            Content::Text(text) => Ok(text.clone()),
            Content::Parts(parts) => parts
                .iter()
                .map(|part| match part.kind.as_str() {
                    "text" => Ok(part.text.as_str()),
                    other => Err(ApiError::invalid_request(format!(
                        "content parts of type `{other}` are not supported; send text"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|texts| texts.join("")),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    role: String,
    content: Content,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, Default)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<WireMessage>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<usize>,
    seed: Option<u64>,
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: StreamOptions,
    repetition_penalty: Option<f32>,
    n: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    #[serde(default)]
    model: Option<String>,
    input: EmbeddingInput,
}

#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    #[serde(default)]
    model: Option<String>,
    max_tokens: u64,
    #[serde(default)]
    system: Option<Content>,
    messages: Vec<WireMessage>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<usize>,
    #[serde(default)]
    stop_sequences: Vec<String>,
    #[serde(default)]
    stream: bool,
}

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

/// `GET /v1/models`
pub async fn list_models(State(node): NodeState) -> Result<Json<Value>, ApiError> {
    let service = service(&node)?;
    let mut data = Vec::new();
    if service.generation_model().is_some() {
        data.push(json!({"id": model_name(service), "object": "model", "created": 0, "owned_by": "troupe"}));
    }
    if let Some(id) = service.embedding_model_id() {
        data.push(json!({"id": id, "object": "model", "created": 0, "owned_by": "troupe"}));
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

/// `GET /api/v1/models`: what this node has loaded, on which device, and how busy each
/// worker is (what `troupe models list` shows as loaded).
pub async fn loaded_models(State(node): NodeState) -> Result<Json<Value>, ApiError> {
    let Some(service) = node.inference() else {
        return Ok(Json(json!({"serving": false, "models": [], "workers": []})));
    };
    let mut models = Vec::new();
    if let Some(model) = service.generation_model() {
        let summary = model.summary();
        models.push(json!({
            "name": model_name(service),
            "role": "generation",
            "path": summary.path,
            "size_bytes": summary.size_bytes,
            "quantization": summary.quantization,
            "device": troupe_inference::device::describe(model.weights().device()),
            "context_tokens": model.context_length(),
        }));
    }
    if let (Some(id), Some(dimensions)) =
        (service.embedding_model_id(), service.embedding_dimensions())
    {
        models.push(json!({
            "name": id, "role": "embedding", "quantization": "f32",
            "device": "cpu", "dimensions": dimensions,
        }));
    }
    let workers = service.workers().await.map_err(inference_error)?;
    Ok(Json(
        json!({"serving": true, "models": models, "workers": workers}),
    ))
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
        seed: seed.unwrap_or_else(|| now_ms() as u64),
    }
}

fn max_tokens(value: Option<u64>) -> usize {
    value.map_or(DEFAULT_MAX_TOKENS, |tokens| {
        usize::try_from(tokens).unwrap_or(usize::MAX)
    })
}

fn usage(generated: &Generated) -> Value {
    let completion = generated.token_ids.len();
    json!({
        "prompt_tokens": generated.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": generated.prompt_tokens + completion,
    })
}

/// `POST /v1/chat/completions`
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
    };
    let model = request.model.unwrap_or_else(|| model_name(&service));
    let started = now_ms();
    let prompt_tokens = generation.prompt.len();
    let stream = service
        .generate(generation)
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
        };
        return Ok(sse(id, created, model, stream, include_usage, ledger).into_response());
    }
    let generated = finish_recorded(&node, &model, started, prompt_tokens, stream).await?;
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": generated.text},
            "finish_reason": generated.finish.openai_name(),
        }],
        "usage": usage(&generated),
    }))
    .into_response())
}

/// What a stream needs to write its call to the ledger when it ends.
struct Ledger {
    node: std::sync::Arc<Node>,
    started: i64,
    prompt_tokens: usize,
}

/// How a `/v1` call of the local model ended, for the ledger.
struct CallEnd<'a> {
    tokens_in: usize,
    tokens_out: usize,
    /// `None` when the answer was delivered.
    error: Option<&'a str>,
}

impl<'a> CallEnd<'a> {
    fn of(prompt_tokens: usize, generated: &'a Result<Generated, InferenceError>) -> Self {
        match generated {
            Ok(generated) => CallEnd {
                tokens_in: generated.prompt_tokens,
                tokens_out: generated.token_ids.len(),
                error: None,
            },
            Err(_) => CallEnd {
                tokens_in: prompt_tokens,
                tokens_out: 0,
                error: Some("the generation failed"),
            },
        }
    }
}

/// Waits for a non-streamed answer and writes the call to the ledger, answered or not.
async fn finish_recorded(
    node: &Node,
    model: &str,
    started: i64,
    prompt_tokens: usize,
    stream: GenerationStream,
) -> Result<Generated, ApiError> {
    let generated = stream.finish().await;
    record(node, model, started, CallEnd::of(prompt_tokens, &generated)).await;
    generated.map_err(inference_error)
}

/// Writes one call of the local model, made through `/v1`, to the cost ledger (a
/// failure to write is logged: the caller's answer is not held back for it).
async fn record(node: &Node, model: &str, started: i64, end: CallEnd<'_>) {
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
    if let Err(error) = node.record_calls(&request_id, started, &[call]).await {
        tracing::warn!(%error, "cannot write a model call to the cost ledger");
    }
}

struct SseState {
    ledger: Ledger,
    /// Tokens streamed so far, and whether the call is in the ledger yet.
    tokens: usize,
    recorded: bool,
    stream: GenerationStream,
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    pending: std::collections::VecDeque<Event>,
    started: bool,
    ended: bool,
}

impl Drop for SseState {
    /// A stream that ends without its answer (the client went away, the worker failed)
    /// is still a call: it goes to the ledger with the tokens streamed so far.
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("an unfinished stream could not be written to the ledger");
            return;
        };
        let node = self.ledger.node.clone();
        let model = self.model.clone();
        let (started, tokens_in, tokens_out) =
            (self.ledger.started, self.ledger.prompt_tokens, self.tokens);
        let error = if self.ended {
            "the generation failed"
        } else {
            "the client disconnected"
        };
        runtime.spawn(async move {
            let end = CallEnd {
                tokens_in,
                tokens_out,
                error: Some(error),
            };
            record(&node, &model, started, end).await;
        });
    }
}

impl SseState {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Event::default().data(body.to_string())
    }
}

fn sse(
    id: String,
    created: i64,
    model: String,
    stream: GenerationStream,
    include_usage: bool,
    ledger: Ledger,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let state = SseState {
        ledger,
        tokens: 0,
        recorded: false,
        stream,
        id,
        created,
        model,
        include_usage,
        pending: Default::default(),
        started: false,
        ended: false,
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if state.ended {
                return None;
            }
            if !state.started {
                state.started = true;
                let first = state.chunk(json!({"role": "assistant", "content": ""}), None);
                state.pending.push_back(first);
                continue;
            }
            match state.stream.next().await {
                Some(StreamEvent::Text { text, tokens }) => {
                    state.tokens = tokens;
                    let chunk = state.chunk(json!({"content": text}), None);
                    state.pending.push_back(chunk);
                }
                Some(StreamEvent::Done(generated)) => {
                    let Ledger { node, started, .. } = &state.ledger;
                    let end = CallEnd {
                        tokens_in: generated.prompt_tokens,
                        tokens_out: generated.token_ids.len(),
                        error: None,
                    };
                    record(node, &state.model, *started, end).await;
                    state.recorded = true;
                    let last = state.chunk(json!({}), Some(generated.finish.openai_name()));
                    state.pending.push_back(last);
                    if state.include_usage {
                        let body = json!({
                            "id": state.id, "object": "chat.completion.chunk",
                            "created": state.created, "model": state.model,
                            "choices": [], "usage": usage(&generated),
                        });
                        state
                            .pending
                            .push_back(Event::default().data(body.to_string()));
                    }
                    state.pending.push_back(Event::default().data("[DONE]"));
                    state.ended = true;
                }
                Some(StreamEvent::Failed(error)) => {
                    let body = json!({"error": {"code": "inference_failed", "message": error.to_string()}});
                    state
                        .pending
                        .push_back(Event::default().data(body.to_string()));
                    state.ended = true;
                }
                None => state.ended = true,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `POST /v1/embeddings`
pub async fn embeddings(
    State(node): NodeState,
    JsonBody(request): JsonBody<EmbeddingRequest>,
) -> Result<Json<Value>, ApiError> {
    let service = service(&node)?;
    let texts = match request.input {
        EmbeddingInput::One(text) => vec![text],
        EmbeddingInput::Many(texts) => texts,
    };
    let embedded = service.embed(texts).await.map_err(inference_error)?;
    let data: Vec<Value> = embedded
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| json!({"object": "embedding", "index": index, "embedding": vector}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": request.model.unwrap_or_else(|| {
            service.embedding_model_id().unwrap_or("embedding").to_string()
        }),
        "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
    })))
}

/// `POST /v1/messages` (Anthropic's Messages API, without streaming).
pub async fn anthropic_messages(
    State(node): NodeState,
    JsonBody(request): JsonBody<MessagesRequest>,
) -> Result<Json<Value>, ApiError> {
    let service = service(&node)?;
    if request.stream {
        return Err(ApiError::invalid_request(
            "streaming is not supported on /v1/messages; use /v1/chat/completions",
        ));
    }
    let system = request.system.as_ref().map(Content::text).transpose()?;
    let chat = messages(system, &request.messages)?;
    let generation = GenerationRequest {
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
    };
    let model = request.model.unwrap_or_else(|| model_name(service));
    let started = now_ms();
    let prompt_tokens = generation.prompt.len();
    let stream = service
        .generate(generation)
        .await
        .map_err(inference_error)?;
    let generated = finish_recorded(&node, &model, started, prompt_tokens, stream).await?;
    let stop_reason = match generated.finish {
        FinishReason::Length => "max_tokens",
        FinishReason::StopString => "stop_sequence",
        FinishReason::EndOfSequence | FinishReason::Cancelled => "end_turn",
    };
    Ok(Json(json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": generated.text}],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": generated.prompt_tokens, "output_tokens": generated.token_ids.len()},
    })))
}
