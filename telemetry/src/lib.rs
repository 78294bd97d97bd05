//! Traces. The span names and attributes of the OpenTelemetry GenAI conventions live in
//! [`spans`] and nowhere else; [`TraceParent`] carries W3C trace context where spans
//! cannot follow by themselves (actor messages, cluster frames, HTTP between nodes, a
//! run's record); [`RunTrace`] gives each run one trace whatever nodes it runs on; and
//! [`export`] sends the spans to an OTLP collector.
//!
//! Knows nothing of actors, runs' logic or the store: callers hand it names and numbers.

mod context;
mod errors;
pub mod export;
mod ids;
mod run;
pub mod spans;

pub use context::{HEADER as TRACEPARENT_HEADER, TraceParent};
pub use errors::TelemetryError;
pub use run::{RunEnd, RunTrace};
