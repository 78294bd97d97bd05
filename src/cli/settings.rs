//! Where the settings come from: the file (`--config`, else `troupe.toml` here), the
//! environment, `--set` and the flags that name settings. Kept apart from the parsed
//! command so that a running node can read them again the same way (`troupe config
//! reload`, SIGHUP).

use std::path::PathBuf;

use troupe_config::{ConfigError, Layers, Settings};

use super::{Args, Command};

/// The command line's part in the settings.
#[derive(Debug, Clone)]
pub struct Sources {
    working_dir: PathBuf,
    config: Option<PathBuf>,
    set: Vec<String>,
    /// (key, value as TOML, the flag as typed).
    flags: Vec<(String, String, String)>,
}

impl Sources {
    pub fn of(args: &Args) -> Self {
        let mut flags = Vec::new();
        let mut flag = |key: &str, value: String, shown: String| {
            flags.push((key.to_owned(), value, shown));
        };
        if let Some(format) = &args.log_format {
            flag(
                "log.format",
                format!("\"{format}\""),
                format!("--log-format {format}"),
            );
        }
        if let Some(level) = &args.log_level {
            flag(
                "log.level",
                format!("\"{level}\""),
                format!("--log-level {level}"),
            );
        }
        if let Command::Up {
            address,
            data_dir,
            join,
        } = &args.command
        {
            if let Some(address) = address {
                flag(
                    "server.address",
                    format!("\"{address}\""),
                    format!("--address {address}"),
                );
            }
            if let Some(dir) = data_dir {
                let url = format!("surrealkv://{}", dir.display());
                flag(
                    "store.url",
                    format!("\"{url}\""),
                    format!("--data-dir {}", dir.display()),
                );
            }
            if !join.is_empty() {
                let shown = format!("--join {}", join.join(" --join "));
                let seeds = serde_json::to_string(join).unwrap_or_default();
                flag("cluster.enabled", "true".into(), shown.clone());
                flag("cluster.seeds", seeds, shown);
            }
        }
        Self {
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            config: args.config.clone(),
            set: args.set.clone(),
            flags,
        }
    }

    /// The settings, read now: the file as it is now, the process's environment.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let mut layers = Layers::new();
        layers = match &self.config {
            Some(path) => layers.file(path),
            None => layers.discover_file(&self.working_dir),
        };
        layers = layers.environment(std::env::vars());
        for assignment in &self.set {
            layers = layers.assignment(assignment)?;
        }
        for (key, value, shown) in &self.flags {
            layers = layers.flag(key, value, shown);
        }
        layers.load()
    }
}
