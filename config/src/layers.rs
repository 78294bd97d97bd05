//! Building [`Settings`] from its layers, remembering where every value came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::errors::ConfigError;
use crate::settings::Settings;

const ENV_PREFIX: &str = "TROUPE_";
/// The file read from the working directory when no `--config` is given.
pub const DEFAULT_FILE_NAME: &str = "troupe.toml";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Environment(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "the built-in default"),
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Environment(name) => write!(f, "environment variable {name}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The layers to merge, lowest precedence first.
#[derive(Debug, Default)]
pub struct Layers {
    file: Option<(PathBuf, bool)>,
    environment: Vec<(String, String)>,
    flags: Vec<(String, String, String)>,
}

impl Layers {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file the user named: it must exist.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some((path.into(), true));
        self
    }

    /// `troupe.toml` in `dir`, read only if present.
    pub fn discover_file(mut self, dir: &Path) -> Self {
        if self.file.is_none() {
            self.file = Some((dir.join(DEFAULT_FILE_NAME), false));
        }
        self
    }

    /// The process environment (or any list of pairs); only `TROUPE_*` names are used.
    pub fn environment(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.environment = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        self
    }

    /// One flag: `key` is a dotted path (`server.address`), `flag` how the user spelled it.
    pub fn flag(mut self, key: &str, value: &str, flag: &str) -> Self {
        self.flags.push((key.into(), value.into(), flag.into()));
        self
    }

    /// `--set section.key=value`.
    pub fn assignment(self, assignment: &str) -> Result<Self, ConfigError> {
        let (key, value) = assignment
            .split_once('=')
            .filter(|(key, _)| key.contains('.'))
            .ok_or_else(|| ConfigError::MalformedFlag {
                assignment: assignment.into(),
            })?;
        let flag = format!("--set {assignment}");
        Ok(self.flag(key.trim(), value.trim(), &flag))
    }

    /// Merges the layers and validates the result.
    pub fn load(self) -> Result<Settings, ConfigError> {
        let mut merged = Merged::defaults();
        if let Some((path, required)) = &self.file
            && let Some(table) = read_file(path, *required)?
        {
            merged.overlay_table(&table, &Source::File(path.clone()));
        }
        for (name, raw) in &self.environment {
            let key = name[ENV_PREFIX.len()..].to_lowercase().replace("__", ".");
            merged.set(&key, parse_scalar(raw), Source::Environment(name.clone()));
        }
        for (key, raw, flag) in &self.flags {
            merged.set(key, parse_scalar(raw), Source::Flag(flag.clone()));
        }
        merged.into_settings()
    }
}

fn read_file(path: &Path, required: bool) -> Result<Option<toml::Table>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(error) => {
            return Err(ConfigError::ReadFile {
                path: path.display().to_string(),
                reason: error.to_string(),
            });
        }
    };
    text.parse::<toml::Table>()
        .map(Some)
        .map_err(|error| ConfigError::ParseFile {
            path: path.display().to_string(),
            reason: error.to_string(),
        })
}

/// Environment variables and flags are text; read them as TOML values when they parse
/// as one (`8`, `true`, `["a", "b"]`), as plain strings otherwise.
fn parse_scalar(raw: &str) -> toml::Value {
    format!("value = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Every leaf of `table` by dotted key (`engine.max_concurrent_tasks`); a list is a
/// leaf, its items set and compared together.
pub(crate) fn leaves(table: &toml::Table) -> BTreeMap<String, toml::Value> {
    fn walk(table: &toml::Table, prefix: &str, leaves: &mut BTreeMap<String, toml::Value>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                toml::Value::Table(inner) => walk(inner, &key, leaves),
                leaf => {
                    leaves.insert(key, leaf.clone());
                }
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(table, "", &mut found);
    found
}

struct Merged {
    root: toml::Table,
    sources: BTreeMap<String, Source>,
}

impl Merged {
    fn defaults() -> Self {
        // Invariant: `Settings` is plain data with string keys, which TOML always encodes.
        let root =
            toml::Table::try_from(Settings::default()).expect("default settings encode as TOML");
        Self {
            root,
            sources: BTreeMap::new(),
        }
    }

    fn overlay_table(&mut self, table: &toml::Table, source: &Source) {
        for (key, value) in leaves(table) {
            self.set(&key, value, source.clone());
        }
    }

    fn set(&mut self, key: &str, value: toml::Value, source: Source) {
        let mut table = &mut self.root;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.insert(part.to_string(), value);
                break;
            }
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            match entry {
                toml::Value::Table(inner) => table = inner,
                _ => break,
            }
        }
        self.sources.insert(key.to_string(), source);
    }

    /// The source of `key`, or of the most specific key under it that was set. An array
    /// is set as a whole, so `providers.chain[0].kind` comes from `providers.chain`.
    fn source_of(&self, key: &str) -> Source {
        let key = key.split('[').next().unwrap_or(key);
        let mut candidate = key;
        loop {
            if let Some(source) = self.sources.get(candidate) {
                return source.clone();
            }
            match candidate.rsplit_once('.') {
                Some((parent, _)) => candidate = parent,
                None => break,
            }
        }
        self.sources
            .iter()
            .find(|(set, _)| set.starts_with(key))
            .map(|(_, source)| source.clone())
            .unwrap_or(Source::Default)
    }

    fn into_settings(self) -> Result<Settings, ConfigError> {
        let value = toml::Value::Table(self.root.clone());
        let settings: Settings = serde_path_to_error::deserialize(value).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::InvalidValue {
                origin: self.source_of(&key),
                key,
                // `message`, not `to_string`: the latter names the key again on a line of its own.
                reason: error.into_inner().message().to_string(),
            }
        })?;
        let mut problems: Vec<ConfigError> = settings
            .problems()
            .into_iter()
            .map(|(key, reason)| ConfigError::InvalidValue {
                key: key.into(),
                origin: self.source_of(key),
                reason,
            })
            .collect();
        match problems.len() {
            0 => Ok(settings),
            1 => Err(problems.remove(0)),
            _ => Err(ConfigError::Many(problems)),
        }
    }
}

impl Settings {
    /// Defaults only, validated: what tests and `mem://` nodes start from.
    pub fn defaults_with_store(url: &str) -> Settings {
        Settings {
            store: crate::StoreSettings {
                url: url.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}
