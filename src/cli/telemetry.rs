//! Logging, human-readable or JSON lines on stderr and filtered by `log.level`, and the
//! node's traces, exported over OTLP when `telemetry.otlp.endpoint` is set.

use std::io::IsTerminal;

use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};
use troupe_config::{LogFormat, Settings};
use troupe_node::RunningSettings;
use troupe_telemetry::export::{self, Exporting};

/// What a node's settings reload changes here: the log's level, trace sampling and
/// content.
pub struct Live {
    level: reload::Handle<EnvFilter, Registry>,
}

impl Live {
    /// Follows the node's settings until it stops.
    pub fn follow(self, mut running: watch::Receiver<RunningSettings>) {
        tokio::spawn(async move {
            while running.changed().await.is_ok() {
                let settings = running.borrow_and_update().settings.clone();
                self.apply(&settings);
            }
        });
    }

    fn apply(&self, settings: &Settings) {
        troupe_telemetry::export::apply_live(&settings.telemetry);
        match EnvFilter::try_new(directives(&settings.log.level)) {
            Ok(filter) => match self.level.reload(filter) {
                Ok(()) => tracing::debug!(level = %settings.log.level, "log level applied"),
                Err(error) => tracing::error!(%error, "the log level could not be changed"),
            },
            // Validated with the settings: only a filter the loader let through lands here.
            Err(error) => tracing::error!(%error, "log.level is not a filter"),
        }
    }
}

/// Sets up logging, and with `export` the trace exporter, which the caller shuts down
/// at exit with [`shutdown`]. Commands other than a node (`serve`) only log warnings
/// unless the level was set, so their own output stays readable.
pub fn init(
    settings: &Settings,
    serve: bool,
    export: bool,
) -> Result<(Option<Exporting>, Live), String> {
    let log = &settings.log;
    let level = if !serve && log.level == "info" {
        "warn"
    } else {
        log.level.as_str()
    };
    let filter = EnvFilter::try_new(directives(level))
        .map_err(|error| format!("log.level `{level}`: {error}"))?;
    let (filter, level) = reload::Layer::new(filter);
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
    Ok((exporting, Live { level }))
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
