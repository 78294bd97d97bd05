//! Logging: human-readable or JSON lines on stderr, filtered by `log.level`.

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
    let filter =
        EnvFilter::try_new(level).map_err(|error| format!("log.level `{level}`: {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|error| error.to_string())
}
