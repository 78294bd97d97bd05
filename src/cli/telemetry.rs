//! Logging, human-readable or JSON lines on stderr and filtered by `log.level`, and the
//! node's traces, exported over OTLP when `telemetry.otlp.endpoint` is set.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};
use troupe_config::{LogFormat, Settings};
use troupe_telemetry::export::{self, Exporting};

/// Sets up logging, and with `export` the trace exporter, which the caller shuts down
/// at exit with [`shutdown`]. Commands other than a node (`serve`) only log warnings
/// unless the level was set, so their own output stays readable.
pub fn init(settings: &Settings, serve: bool, export: bool) -> Result<Option<Exporting>, String> {
    let log = &settings.log;
    let level = if !serve && log.level == "info" {
        "warn"
    } else {
        log.level.as_str()
    };
    let filter = EnvFilter::try_new(directives(level))
        .map_err(|error| format!("log.level `{level}`: {error}"))?;
    // Colours only on a terminal: a log file or a container's log keeps plain lines.
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // The filter is the log's own: spans that are exported but not logged still exist.
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match log.format {
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => lines.with_filter(filter).boxed(),
    };
    let exporting = if export {
        export::install(&settings.telemetry, &settings.node_name())
            .map_err(|error| error.to_string())?
    } else {
        None
    };
    let traces = exporting.as_ref().map(Exporting::layer);
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|error| error.to_string())?;
    Ok(exporting)
}

/// Sends the spans still queued, off the async threads (the exporter blocks).
pub async fn shutdown(exporting: Option<Exporting>) {
    if let Some(exporting) = exporting
        && let Err(error) = tokio::task::spawn_blocking(move || exporting.shutdown()).await
    {
        tracing::warn!(%error, "the trace exporter's shutdown failed");
    }
}

/// A bare level (`info`, `debug`) is for Troupe's own crates: dependencies (SurrealDB's
/// internals, the HTTP stack) log warnings only, so `troupe up` prints its own lines. A
/// filter with targets (`info,surrealdb=debug`) is taken as written.
///
/// SurrealKV's tree warns "no runtime available for closing the store" whenever its last
/// handle is dropped on SurrealDB's own flusher thread, which happens at every clean
/// close, after SurrealDB has already closed it: that one target logs errors only.
fn directives(level: &str) -> String {
    if level.contains('=') || level.contains(',') {
        level.to_string()
    } else {
        format!("warn,surrealkv::lsm=error,troupe={level}")
    }
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn a_bare_level_is_troupes_own_and_dependencies_warn() {
        assert_eq!(directives("info"), "warn,surrealkv::lsm=error,troupe=info");
        assert_eq!(
            directives("debug"),
            "warn,surrealkv::lsm=error,troupe=debug"
        );
        assert_eq!(directives("info,surrealdb=debug"), "info,surrealdb=debug");
    }
}
