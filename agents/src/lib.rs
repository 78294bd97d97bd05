//! Agents: the units of work a workflow task names with `agent:`.
//!
//! An [`Agent`] takes JSON inputs (deserialised once into its kind's typed inputs, see
//! [`TypedAgent`], or checked against a plugin's declared [`InputSchema`]), a [`AgentContext`] (idempotency key, cancellation, progress, the approval that
//! let it run), and returns JSON outputs plus what it cost. The [`Registry`] maps kind
//! names to agents. This crate knows nothing about workflows, actors or storage.

mod agent;
mod analysis;
mod crew;
mod deployment;
mod echo;
pub mod egress;
mod errors;
mod field_order;
mod http;
mod human_review;
mod jail;
mod mcp;
mod memory;
mod model;
mod plugin;
pub mod privacy;
mod process;
mod project;
mod registry;
mod schema;
mod security_scanner;
mod shell;
mod stdio_rpc;
mod test_runner;
mod workspace;

pub use agent::{Agent, AgentContext, AgentOutput, AgentServices, Approval, Progress, TypedAgent};
pub use analysis::{CodeAnalyzerAgent, CodeAnalyzerConfig};
pub use crew::CrewConfig;
pub use deployment::{DeploymentAgent, DeploymentConfig};
pub use echo::EchoAgent;
pub use egress::{Egress, ProjectNetworks};
pub use errors::AgentError;
pub use http::{HttpAgent, HttpAgentConfig};
pub use human_review::HumanReviewAgent;
pub use jail::{DEFAULT_JAIL_ID, Jail, JailConfig};
pub use mcp::{MCP_PROTOCOL_VERSION, McpServerConfig, McpToolAgent};
pub use memory::{Memory, MemoryKind, MemoryScope, NewMemory, Recalled};
pub use model::{
    AskPolicy, Billing, CallSummary, Consultation, ModelClient, ModelReply, ModelRequest, Turn,
    ask_validated,
};
pub use plugin::{PLUGIN_PROTOCOL_VERSION, PluginAgent, PluginConfig};
pub use registry::{CREW_KINDS, Registry, builtin, crew, shell_command_inputs};
pub use schema::{Field, FieldType, InputSchema};
pub use security_scanner::SecurityScannerAgent;
pub use shell::{ShellAgent, ShellAgentConfig};
pub use stdio_rpc::{ProcessAccess, ProcessConfig};
pub use test_runner::{TestRunnerAgent, TestRunnerConfig};
pub use tokio_util::sync::CancellationToken;
pub use workspace::Workspace;
