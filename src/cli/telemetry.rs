//! Logging: human-readable or JSON lines on stderr, filtered by `log.level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use troupe_config::{LogFormat, LogSettings};

/// `quiet` commands (everything but `up`) only log warnings unless the level was set,
/// so their own output stays readable.
pub fn init(settings: &LogSettings, quiet: bool) -> Result<(), String> {
    let level = if quiet && settings.level == "info" {
        "warn"
    } else {
        settings.level.as_str()
    };
    let filter = EnvFilter::try_new(directives(level))
        .map_err(|error| format!("log.level `{level}`: {error}"))?;
    // Colours only on a terminal: a log file or a container's log keeps plain lines.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|error| error.to_string())
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
