//! Every span Troupe exports, named and attributed by the OpenTelemetry GenAI semantic
//! conventions. They are still marked "development", so the names live here and
//! nowhere else: a rename upstream is one edit. Only spans built in this module reach
//! the exporter (see [`crate::export`]); the rest of `tracing` stays in the logs.
//!
//! Troupe's own attributes carry the `troupe.` prefix: what a call cost, whether it
//! stayed on the machine, whether the chain escalated past it, its quality score.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::KeyValue;
use tracing::Span;
use tracing::field::Empty;

/// The `target` of every exported span: the exporter's filter keeps this one.
pub const TARGET: &str = module_path!();

pub(crate) const OPERATION: &str = "gen_ai.operation.name";
pub(crate) const WORKFLOW_NAME: &str = "troupe.workflow.name";
pub(crate) const RUN_ID: &str = "troupe.run.id";
pub(crate) const RUN_STATUS: &str = "troupe.run.status";
pub(crate) const COST_USD: &str = "troupe.cost_usd";

/// Whether prompts and answers go into spans (`telemetry.capture_content`).
static CAPTURE_CONTENT: AtomicBool = AtomicBool::new(false);

pub(crate) fn capture_content(on: bool) {
    CAPTURE_CONTENT.store(on, Ordering::Relaxed);
}

/// The run's root span's name and attributes (it is built when the run ends, see
/// [`crate::RunTrace`]).
pub(crate) fn invoke_workflow(workflow: &str, run_id: &str) -> (String, Vec<KeyValue>) {
    (
        format!("invoke_workflow {workflow}"),
        vec![
            KeyValue::new(OPERATION, "invoke_workflow"),
            KeyValue::new(WORKFLOW_NAME, workflow.to_string()),
            KeyValue::new(RUN_ID, run_id.to_string()),
        ],
    )
}

/// One attempt of one task, by the agent of `kind`, wherever it runs.
pub fn invoke_agent(kind: &str, run_id: &str, task: &str, attempt: u32) -> Span {
    tracing::info_span!(
        target: TARGET,
        "invoke_agent",
        otel.name = format!("invoke_agent {kind}"),
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = kind,
        troupe.run.id = run_id,
        troupe.task.id = task,
        troupe.task.attempt = attempt,
        troupe.cost_usd = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// How an attempt ended: its cost, or the kind of error and what it said.
pub fn agent_ended(span: &Span, outcome: Result<f64, (&str, &str)>) {
    match outcome {
        Ok(cost_usd) => {
            span.record("troupe.cost_usd", cost_usd);
        }
        Err((kind, message)) => failed(span, kind, message),
    }
}

/// A call to a model: `operation` is `chat` or `embeddings`.
pub fn model_call(operation: &'static str, provider: &str, model: &str, local: bool) -> Span {
    tracing::info_span!(
        target: TARGET,
        "model_call",
        otel.name = format!("{operation} {model}"),
        otel.kind = "client",
        gen_ai.operation.name = operation,
        gen_ai.provider.name = provider,
        gen_ai.request.model = model,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.response.finish_reasons = Empty,
        gen_ai.response.time_to_first_chunk = Empty,
        gen_ai.input.messages = Empty,
        gen_ai.output.messages = Empty,
        troupe.local = local,
        troupe.cost_usd = Empty,
        troupe.escalated = Empty,
        troupe.quality = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// What a model call came to.
#[derive(Debug, Clone, Default)]
pub struct ModelUsage<'a> {
    pub response_model: &'a str,
    pub input_tokens: usize,
    pub output_tokens: usize,
    /// `stop`, or `length` when the answer was cut at the token limit.
    pub finish_reason: &'a str,
    pub cost_usd: f64,
    pub escalated: bool,
    pub quality: Option<f64>,
}

pub fn model_answered(span: &Span, usage: &ModelUsage<'_>) {
    span.record("gen_ai.response.model", usage.response_model);
    span.record("gen_ai.usage.input_tokens", usage.input_tokens);
    span.record("gen_ai.usage.output_tokens", usage.output_tokens);
    // An array attribute in the conventions; `tracing` records strings, so its JSON.
    span.record(
        "gen_ai.response.finish_reasons",
        format!("[\"{}\"]", usage.finish_reason),
    );
    span.record("troupe.cost_usd", usage.cost_usd);
    span.record("troupe.escalated", usage.escalated);
    if let Some(quality) = usage.quality {
        span.record("troupe.quality", quality);
    }
}

/// The model's first chunk arrived `seconds` after the call was admitted: recorded on
/// the model call the caller is in (the local model's stream is read inside it).
pub fn first_chunk(seconds: f64) {
    Span::current().record("gen_ai.response.time_to_first_chunk", seconds);
}

/// The prompt and the answer, only when `telemetry.capture_content` is on. The caller
/// passes them after screening, as they went to the model.
pub fn model_content(span: &Span, input: &[(&str, &str)], output: &str) {
    if !CAPTURE_CONTENT.load(Ordering::Relaxed) {
        return;
    }
    let message = |role: &str, content: &str| serde_json::json!({"role": role, "parts": [{"type": "text", "content": content}]});
    let input: Vec<_> = input
        .iter()
        .map(|(role, content)| message(role, content))
        .collect();
    span.record(
        "gen_ai.input.messages",
        serde_json::Value::Array(input).to_string(),
    );
    span.record(
        "gen_ai.output.messages",
        serde_json::json!([message("assistant", output)]).to_string(),
    );
}

/// A call to a tool outside the node: an MCP server's tool or a plugin program.
pub fn execute_tool(name: &str, source: &'static str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "execute_tool",
        otel.name = format!("execute_tool {name}"),
        otel.kind = "client",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = name,
        gen_ai.tool.type = "extension",
        troupe.tool.source = source,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// A write to the store (SurrealDB): `operation` names what is written. Only inside
/// a trace: a write on its own (a heartbeat, a session) would be a trace of one span.
pub fn store_write(operation: &'static str) -> Span {
    if crate::TraceParent::current().is_none() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "store_write",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = "surrealdb",
        db.operation.name = operation,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// A request the HTTP API serves; `route` is the matched pattern, never the raw path
/// (ids in paths would make every request its own span name).
pub fn http_request(method: &str, route: &str, path: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "http_request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = path,
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
    )
}

pub fn http_responded(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("error.type", status.to_string());
        span.record("otel.status_code", "error");
    }
}

/// Marks `span` failed: `kind` is a short, fixed word (`timed_out`, `overloaded`).
pub fn failed(span: &Span, kind: &str, message: &str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
    span.record("otel.status_description", message);
}
