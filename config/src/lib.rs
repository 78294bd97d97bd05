//! Typed settings for a Troupe node.
//!
//! One tree ([`Settings`]) built from four layers, later ones winning:
//! built-in defaults < a TOML file < `TROUPE_SECTION__KEY` environment variables <
//! command-line flags. Every value remembers the layer it came from, so a bad value is
//! reported with its key *and* its source ("`engine.max_concurrent_tasks` from
//! environment variable TROUPE_ENGINE__MAX_CONCURRENT_TASKS: must be at least 1").

mod alerts;
mod choices;
mod errors;
mod external;
mod layers;
mod problems;
mod reload;
mod settings;
mod show;

pub use alerts::{AlertRule, AlertRules, AlertSettings, AlertWebhookSettings};
pub use choices::{DeviceChoice, OtlpProtocol, PrivacyMode, ProviderKind};
pub use errors::ConfigError;
pub use external::{InputType, McpServerSettings, PluginInput, PluginSettings};
pub use layers::{Layers, Source};
pub use problems::is_node_name;
pub use reload::{Changes, LIVE, apply_live, changes};
pub use settings::{
    AgentSettings, AuditSettings, AuditShipSettings, ClusterSettings, ClusterTlsSettings,
    EgressSettings, EngineSettings, JailSettings, LogFormat, LogSettings, ModelAgentSettings,
    ModelSettings, OtlpSettings, ProviderEntry, ProviderSettings, ScannerLimits, SecretsSettings,
    ServerSettings, Settings, ShellAgentSettings, StoreSettings, TamperResponse, TelemetrySettings,
    TestRunnerLimits, TlsSettings,
};
pub use show::render_masked;
