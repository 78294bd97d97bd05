//! A trace collector for tests: OTLP over HTTP (protobuf on `/v1/traces`) and over
//! gRPC, on loopback, decoding what it is sent with the protocol's own types and
//! keeping every span.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

/// One span as the collector received it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root.
    pub parent_span_id: String,
    /// The resource's `troupe.node.name`: which node sent it.
    pub node: String,
    pub service: String,
    pub attributes: BTreeMap<String, String>,
    /// 2 is an error.
    pub status_code: i32,
    /// `http` or `grpc`.
    pub via: &'static str,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<ReceivedSpan>>>);

impl Sink {
    fn keep(&self, request: ExportTraceServiceRequest, via: &'static str) {
        let mut kept = self.0.lock().unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push(ReceivedSpan {
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        node: resource
                            .get("troupe.node.name")
                            .cloned()
                            .unwrap_or_default(),
                        service: resource.get("service.name").cloned().unwrap_or_default(),
                        attributes: attributes(&span.attributes),
                        status_code: span.status.map_or(0, |status| status.code),
                        via,
                    });
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| {
            (
                pair.key.clone(),
                pair.value.as_ref().map_or(String::new(), text),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.keep(request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn http_export(State(sink): State<Sink>, body: Bytes) -> impl IntoResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            sink.keep(request, "http");
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            (
                axum::http::StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                answer,
            )
        }
        Err(error) => (
            axum::http::StatusCode::BAD_REQUEST,
            [("content-type", "text/plain")],
            error.to_string().into_bytes(),
        ),
    }
}

/// Both receivers, running until dropped.
pub struct Collector {
    /// The endpoint for `protocol = "http"` (with `/v1/traces`).
    pub http: String,
    /// The endpoint for `protocol = "grpc"`.
    pub grpc: String,
    sink: Sink,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    pub fn start() -> Collector {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sink = Sink::default();
        let (http, grpc) = runtime.block_on(async {
            let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            (http, grpc)
        });
        let endpoints = (
            format!("http://{}/v1/traces", http.local_addr().unwrap()),
            format!("http://{}", grpc.local_addr().unwrap()),
        );
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(http_export))
            .with_state(sink.clone());
        runtime.spawn(async move { axum::serve(http, router).await });
        let service = TraceServiceServer::new(sink.clone());
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc)),
        );
        Collector {
            http: endpoints.0,
            grpc: endpoints.1,
            sink,
            _runtime: runtime,
        }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.sink.0.lock().unwrap().clone()
    }

    /// The spans of trace `trace_id` once `done` holds for them, within `secs`.
    pub fn wait_for_trace(
        &self,
        trace_id: &str,
        secs: u64,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let spans: Vec<ReceivedSpan> = self
                .spans()
                .into_iter()
                .filter(|span| span.trace_id == trace_id)
                .collect();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} not complete in {secs} s; it has {:#?}",
                spans
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
