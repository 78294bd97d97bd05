//! Settings for agent kinds that run outside the node: plugins (a process speaking
//! JSON-RPC on stdio, one kind each) and Model Context Protocol servers (whose tools the
//! `mcp_tool` kind calls). Whether a plugin kind clashes with a built-in one is the
//! runtime's to check: this crate does not know the built-in kinds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One `[[agents.plugins]]` entry: an agent kind served by an external process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// The name tasks use in `agent:`.
    pub kind: String,
    pub description: String,
    /// Program and arguments, run without a shell.
    pub command: Vec<String>,
    /// The inputs a task may give, checked before the plugin sees them.
    pub inputs: BTreeMap<String, PluginInput>,
    /// Per call, when the task gives no `timeout`; the process is killed past it.
    pub timeout_secs: u64,
    /// Longest response line accepted; a longer one fails the call and restarts the process.
    pub max_output_bytes: u64,
    /// Restarts allowed within `restart_period_secs` before the kind refuses calls until
    /// the period has passed (Erlang/OTP's intensity and period).
    pub max_restarts: u32,
    pub restart_period_secs: u64,
    /// Environment variables the process inherits from the node; nothing else is passed.
    pub env_allow_list: Vec<String>,
    /// Host directories the jailed process may read; it starts in the first. Relative
    /// entries are from the node's directory, whose store and keys stay hidden.
    pub readable_dirs: Vec<PathBuf>,
    /// Host directories it may write (the jail's user must be able to, on a root node).
    pub writable_dirs: Vec<PathBuf>,
    /// Whether it may reach the network (off: a network namespace of its own).
    pub network: bool,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            kind: String::new(),
            description: String::new(),
            command: Vec::new(),
            inputs: BTreeMap::new(),
            timeout_secs: 60,
            max_output_bytes: 1024 * 1024,
            max_restarts: 3,
            restart_period_secs: 60,
            env_allow_list: default_env_allow_list(),
            readable_dirs: Vec::new(),
            writable_dirs: Vec::new(),
            network: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PluginInput {
    #[serde(rename = "type")]
    pub input_type: InputType,
    pub required: bool,
    pub description: String,
}

/// The JSON type an input must have; the same set as the agents' input schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Map,
    #[default]
    Any,
}

/// One `[[agents.mcp_servers]]` entry: a Model Context Protocol server started on stdio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpServerSettings {
    /// What `mcp_tool` tasks give as `server`.
    pub name: String,
    pub command: Vec<String>,
    pub env_allow_list: Vec<String>,
    /// Per tool call (and for the handshake); the server is killed past it.
    pub timeout_secs: u64,
    pub max_output_bytes: u64,
    pub max_restarts: u32,
    pub restart_period_secs: u64,
    /// As for plugins: what the jailed server may read and write, and the network.
    pub readable_dirs: Vec<PathBuf>,
    pub writable_dirs: Vec<PathBuf>,
    pub network: bool,
}

impl Default for McpServerSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            command: Vec::new(),
            env_allow_list: default_env_allow_list(),
            timeout_secs: 60,
            max_output_bytes: 4 * 1024 * 1024,
            max_restarts: 3,
            restart_period_secs: 60,
            readable_dirs: Vec::new(),
            writable_dirs: Vec::new(),
            network: false,
        }
    }
}

/// `HOME` and `TMPDIR` are the jail's own, never the node's.
fn default_env_allow_list() -> Vec<String> {
    ["PATH", "LANG", "LC_ALL"].map(String::from).to_vec()
}

/// Smallest response line limit: below it not even a JSON-RPC error fits.
const MIN_OUTPUT_BYTES: u64 = 1024;

/// Kind and server names appear in workflow files, actor names and messages: keep them
/// to one plain word.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

struct Limits<'a> {
    label: String,
    command: &'a [String],
    timeout_secs: u64,
    max_output_bytes: u64,
    restart_period_secs: u64,
}

fn limit_problems(
    limits: &Limits<'_>,
    key: &'static str,
    problems: &mut Vec<(&'static str, String)>,
) {
    let label = &limits.label;
    if limits
        .command
        .first()
        .is_none_or(|program| program.trim().is_empty())
    {
        problems.push((key, format!("{label}: `command` must name a program")));
    }
    if limits.timeout_secs == 0 {
        problems.push((key, format!("{label}: `timeout_secs` must be at least 1")));
    }
    if limits.max_output_bytes < MIN_OUTPUT_BYTES {
        problems.push((
            key,
            format!("{label}: `max_output_bytes` must be at least {MIN_OUTPUT_BYTES}"),
        ));
    }
    if limits.restart_period_secs == 0 {
        problems.push((
            key,
            format!("{label}: `restart_period_secs` must be at least 1"),
        ));
    }
}

pub(crate) fn plugin_problems(
    plugins: &[PluginSettings],
    problems: &mut Vec<(&'static str, String)>,
) {
    const KEY: &str = "agents.plugins";
    let mut kinds = BTreeSet::new();
    for (index, plugin) in plugins.iter().enumerate() {
        let label = format!("plugin {index} (`{}`)", plugin.kind);
        if !is_plain_name(&plugin.kind) {
            problems.push((
                KEY,
                format!("{label}: `kind` must be 1-64 letters, digits, `_` or `-`"),
            ));
        } else if !kinds.insert(plugin.kind.as_str()) {
            problems.push((
                KEY,
                format!("{label}: kind `{}` is declared twice", plugin.kind),
            ));
        }
        for name in plugin.inputs.keys() {
            if !is_plain_name(name) {
                problems.push((
                    KEY,
                    format!("{label}: input `{name}` must be 1-64 letters, digits, `_` or `-`"),
                ));
            }
        }
        let limits = Limits {
            label,
            command: &plugin.command,
            timeout_secs: plugin.timeout_secs,
            max_output_bytes: plugin.max_output_bytes,
            restart_period_secs: plugin.restart_period_secs,
        };
        limit_problems(&limits, KEY, problems);
    }
}

pub(crate) fn mcp_problems(
    servers: &[McpServerSettings],
    problems: &mut Vec<(&'static str, String)>,
) {
    const KEY: &str = "agents.mcp_servers";
    let mut names = BTreeSet::new();
    for (index, server) in servers.iter().enumerate() {
        let label = format!("MCP server {index} (`{}`)", server.name);
        if !is_plain_name(&server.name) {
            problems.push((
                KEY,
                format!("{label}: `name` must be 1-64 letters, digits, `_` or `-`"),
            ));
        } else if !names.insert(server.name.as_str()) {
            problems.push((
                KEY,
                format!("{label}: name `{}` is declared twice", server.name),
            ));
        }
        let limits = Limits {
            label,
            command: &server.command,
            timeout_secs: server.timeout_secs,
            max_output_bytes: server.max_output_bytes,
            restart_period_secs: server.restart_period_secs,
        };
        limit_problems(&limits, KEY, problems);
    }
}
