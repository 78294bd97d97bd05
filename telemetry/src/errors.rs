//! The crate's one error type: what keeps the exporter from being built.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the settings.
    #[error("telemetry.otlp: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("telemetry.otlp.headers: `{name}` cannot be sent as a header: {reason}")]
    Header { name: String, reason: String },
}
