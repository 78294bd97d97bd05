//! Spans to an OTLP collector, over HTTP (protobuf) or gRPC. A batch processor on its
//! own thread holds a bounded queue: a collector that is slow or gone costs requests
//! nothing, and what cannot be queued is dropped and counted. Spans are flushed at
//! shutdown, within the export timeout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{counter, describe_counter};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceId, TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, SdkTracerProvider,
    ShouldSample, SpanData, SpanProcessor,
};
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;
use troupe_config::{OtlpProtocol, TelemetrySettings};

use crate::errors::TelemetryError;
use crate::ids::PresetIds;
use crate::spans;

pub const SPANS: &str = "troupe_otel_spans_total";

/// Whether spans are exported: set by [`install`], cleared at shutdown.
static EXPORTING: AtomicBool = AtomicBool::new(false);
/// `telemetry.otlp.sample_ratio` now, as f64 bits ([`set_sample_ratio`] changes it live).
static RATIO: AtomicU64 = AtomicU64::new(0);

/// Takes the settings that change live (a reload): the sample ratio, for traces
/// started from now on, and whether prompts and answers go into spans.
pub fn apply_live(settings: &TelemetrySettings) {
    set_sample_ratio(settings.otlp.sample_ratio);
    spans::capture_content(settings.capture_content);
}

fn set_sample_ratio(ratio: f64) {
    RATIO.store(ratio.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
}

/// The ratio sampler the provider applies to a trace with no parent, reading the ratio
/// now, so that a run's root is chosen alike when its ids are made and when it is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSampler;

impl RunSampler {
    pub(crate) fn samples(&self, trace_id: TraceId) -> bool {
        let result = self.should_sample(None, trace_id, "", &SpanKind::Internal, &[], &[]);
        matches!(result.decision, SamplingDecision::RecordAndSample)
    }
}

impl ShouldSample for RunSampler {
    fn should_sample(
        &self,
        parent: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        let ratio = f64::from_bits(RATIO.load(Ordering::Relaxed));
        Sampler::TraceIdRatioBased(ratio)
            .should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

pub(crate) fn sampler() -> Option<RunSampler> {
    exporting().then_some(RunSampler)
}

/// Whether spans are exported: without, nothing is in a trace (one atomic load, for
/// hot paths that would otherwise look for the current trace).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The help text of the exporter's counter (once, after the recorder is installed).
pub fn describe() {
    describe_counter!(
        SPANS,
        "Spans by outcome: ended (queued for export), exported, failed (the collector \
         refused them or did not answer). Ended minus exported and failed, once idle, \
         were dropped because the queue was full."
    );
}

/// The exporter, while it runs.
pub struct Exporting {
    provider: SdkTracerProvider,
    timeout: Duration,
}

/// Builds the exporter from `settings` and makes it the process's; `None` when no
/// endpoint is set. A gRPC exporter must be built inside a tokio runtime.
pub fn install(
    settings: &TelemetrySettings,
    node: &str,
) -> Result<Option<Exporting>, TelemetryError> {
    let otlp = &settings.otlp;
    if otlp.endpoint.is_empty() {
        return Ok(None);
    }
    let timeout = Duration::from_millis(otlp.timeout_ms);
    let exporter = Counted(exporter(otlp, timeout)?);
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(otlp.queue_size)
        .with_scheduled_delay(Duration::from_millis(500))
        .build();
    let processor = Ended(
        BatchSpanProcessor::builder(exporter)
            .with_batch_config(batches)
            .build(),
    );
    Ok(Some(Exporting::start(processor, settings, node, timeout)))
}

fn exporter(
    otlp: &troupe_config::OtlpSettings,
    timeout: Duration,
) -> Result<SpanExporter, TelemetryError> {
    let exporter = match otlp.protocol {
        OtlpProtocol::Http => SpanExporter::builder()
            .with_http()
            .with_endpoint(&otlp.endpoint)
            .with_timeout(timeout)
            .with_headers(otlp.headers.clone().into_iter().collect())
            .build()?,
        OtlpProtocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&otlp.endpoint)
            .with_timeout(timeout)
            .with_metadata(metadata(&otlp.headers)?)
            .build()?,
    };
    Ok(exporter)
}

fn metadata(
    headers: &BTreeMap<String, String>,
) -> Result<opentelemetry_otlp::tonic_types::metadata::MetadataMap, TelemetryError> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let refused = |reason: String| TelemetryError::Header {
            name: name.clone(),
            reason,
        };
        let key = http::HeaderName::from_bytes(name.to_lowercase().as_bytes())
            .map_err(|error| refused(error.to_string()))?;
        let value =
            http::HeaderValue::from_str(value).map_err(|error| refused(error.to_string()))?;
        map.insert(key, value);
    }
    Ok(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map))
}

fn resource(node: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name("troupe")
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", node.to_string()),
            KeyValue::new("troupe.node.name", node.to_string()),
        ])
        .build()
}

impl Exporting {
    /// Makes a provider over `processor` the process's.
    fn start(
        processor: impl SpanProcessor + 'static,
        settings: &TelemetrySettings,
        node: &str,
        timeout: Duration,
    ) -> Exporting {
        set_sample_ratio(settings.otlp.sample_ratio);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(RunSampler)))
            .with_id_generator(PresetIds::default())
            .with_resource(resource(node))
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        spans::capture_content(settings.capture_content);
        EXPORTING.store(true, Ordering::Relaxed);
        Exporting { provider, timeout }
    }

    /// The `tracing` layer that turns Troupe's spans (those of [`spans`]) into
    /// OpenTelemetry spans, with warnings and errors as their events. Everything else,
    /// the HTTP and gRPC clients' own events above all, stays out: the exporter would
    /// otherwise trace itself.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("troupe"))
            .with_threads(false)
            .with_location(false)
            .with_level(false)
            // `target` is not an OpenTelemetry attribute, and every exported span's would
            // be the same (`spans::TARGET`): two strings more per span, encoded for nothing.
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(
                filter_fn(|metadata| {
                    if metadata.is_span() {
                        metadata.target() == spans::TARGET
                    } else {
                        *metadata.level() <= Level::WARN && metadata.target().starts_with("troupe")
                    }
                })
                // Every span of ours is at INFO: without the hint the process's maximum
                // level would be TRACE, and every trace and debug callsite in the
                // dependencies (SurrealDB's are many) would be looked at on each call.
                .with_max_level_hint(Level::INFO),
            )
    }

    /// Sends what is queued and stops, within the export timeout. It blocks: call it
    /// from a blocking thread, never on a current-thread runtime.
    pub fn shutdown(self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(error) = self.provider.shutdown_with_timeout(self.timeout) {
            tracing::warn!(%error, "spans not sent at shutdown");
        }
    }
}

/// Counts what the collector took and what it did not.
#[derive(Debug)]
struct Counted(SpanExporter);

impl opentelemetry_sdk::trace::SpanExporter for Counted {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.0.export(batch).await;
        let outcome = if result.is_ok() { "exported" } else { "failed" };
        counter!(SPANS, "outcome" => outcome).increment(spans);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// Counts the spans handed to the batch processor.
#[derive(Debug)]
struct Ended(BatchSpanProcessor);

impl SpanProcessor for Ended {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        counter!(SPANS, "outcome" => "ended").increment(1);
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, Status};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::{RunEnd, RunTrace, TraceParent};

    fn span_named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span `{name}` among {:?}", names(spans)))
    }

    fn names(spans: &[SpanData]) -> Vec<&str> {
        spans.iter().map(|span| span.name.as_ref()).collect()
    }

    /// A run started by a traced request, an attempt made from the stored root (as a
    /// run actor on any node does) with a model call in it, and the root sent last.
    /// The spans, the run's stored trace, and the exporter.
    fn traced_run() -> (Vec<SpanData>, (String, String), Exporting) {
        let memory = InMemorySpanExporter::default();
        let mut settings = TelemetrySettings::default();
        settings.otlp.endpoint = "http://unused".into();
        let exporting = Exporting::start(
            SimpleSpanProcessor::new(memory.clone()),
            &settings,
            "node-a",
            Duration::from_secs(1),
        );
        let subscriber = tracing_subscriber::registry().with(exporting.layer());
        let stored = tracing::subscriber::with_default(subscriber, || {
            let request = spans::http_request("POST", "/api/v1/runs", "/api/v1/runs");
            let trace = RunTrace::begin(TraceParent::of(&request)).expect("exporting, so traced");
            let stored = trace.to_strings();
            drop(request);
            let trace = RunTrace::from_strings(&stored.0, &stored.1).expect("reads back");
            let attempt = spans::invoke_agent("model", "run-1", "review", 1);
            trace.root.adopt(&attempt);
            attempt.in_scope(|| {
                let call = spans::model_call("chat", "local", "tiny", true);
                spans::model_answered(
                    &call,
                    &spans::ModelUsage {
                        response_model: "tiny",
                        input_tokens: 12,
                        output_tokens: 5,
                        finish_reason: "stop",
                        ..Default::default()
                    },
                );
            });
            spans::agent_ended(&attempt, Err(("timed_out", "no answer in 5 s")));
            drop(attempt);
            trace.finish(&RunEnd {
                workflow: "review",
                run_id: "run-1",
                status: "failed",
                started_ms: 1_000,
                ended_ms: 4_000,
                cost_usd: 0.25,
            });
            stored
        });
        let spans = memory.get_finished_spans().expect("spans kept");
        (spans, stored, exporting)
    }

    /// One trace, each span under the one that caused it.
    #[test]
    fn a_run_is_one_trace_whose_root_is_sent_when_it_ends() {
        let (spans, stored, exporting) = traced_run();
        let request = span_named(&spans, "POST /api/v1/runs");
        let root = span_named(&spans, "invoke_workflow review");
        let attempt = span_named(&spans, "invoke_agent model");
        let call = span_named(&spans, "chat tiny");
        let root_parent = TraceParent::parse(&stored.0).expect("stored root");
        assert_eq!(root.span_context.span_id(), root_parent.ids().1);
        assert_eq!(root.parent_span_id, request.span_context.span_id());
        assert_eq!(attempt.parent_span_id, root.span_context.span_id());
        assert_eq!(call.parent_span_id, attempt.span_context.span_id());
        assert_eq!(request.parent_span_id, SpanId::INVALID);
        for span in [request, root, attempt, call] {
            assert_eq!(
                span.span_context.trace_id(),
                request.span_context.trace_id()
            );
        }
        assert_eq!(
            root.end_time.duration_since(root.start_time).ok(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(root.status, Status::error("the run failed"));
        assert!(
            matches!(attempt.status, Status::Error { .. }),
            "{:?}",
            attempt.status
        );
        let attribute = |span: &SpanData, key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(
            attribute(call, "gen_ai.usage.input_tokens").as_deref(),
            Some("12")
        );
        assert_eq!(
            attribute(call, "gen_ai.provider.name").as_deref(),
            Some("local")
        );
        assert_eq!(
            attribute(attempt, "error.type").as_deref(),
            Some("timed_out")
        );
        assert_eq!(attribute(root, "troupe.cost_usd").as_deref(), Some("0.25"));
        assert_eq!(
            attribute(call, "gen_ai.input.messages"),
            None,
            "content is off by default"
        );
        exporting.shutdown();
        let parent = TraceParent::parse(&stored.0);
        assert!(
            RunTrace::begin(parent).is_none(),
            "nothing is traced once the exporter stops"
        );
    }
}
