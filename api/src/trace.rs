//! One span and one log line per request, and the HTTP metrics: requests by method,
//! route (the router's pattern, never the path with its ids) and status, and their
//! durations.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};
use tracing::Instrument;
use troupe_telemetry::{TRACEPARENT_HEADER, TraceParent, spans};

pub const HTTP_REQUESTS: &str = "troupe_http_requests_total";
pub const HTTP_DURATION: &str = "troupe_http_request_duration_seconds";

/// The help text of the HTTP metrics (once, when the router is built).
pub fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "How long HTTP requests took to answer (to the first byte of a stream), by method and route."
    );
}

pub async fn trace_request(request: Request, next: Next) -> Response {
    // Unmatched paths are one route: a scanner's thousand URLs are not a thousand series.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = request.method().as_str().to_string();
    let span = spans::http_request(&method, &route, request.uri().path());
    // A caller that is traced (or a node forwarding a request) continues its trace here.
    let parent = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse);
    if let Some(parent) = parent {
        parent.adopt(&span);
    }
    let responded = span.clone();
    async move {
        let started = Instant::now();
        let response = next.run(request).await;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        spans::http_responded(&responded, status);
        tracing::info!(status, latency_ms = elapsed.as_millis() as u64, "request");
        counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(),
            "status" => status.to_string())
        .increment(1);
        histogram!(HTTP_DURATION, "method" => method, "route" => route)
            .record(elapsed.as_secs_f64());
        response
    }
    .instrument(span)
    .await
}
