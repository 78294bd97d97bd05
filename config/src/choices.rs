//! The settings that choose one of a few words. Each is an enum, so a value outside the
//! list is refused at load with the key, where it came from and the words allowed,
//! instead of falling back to a default somewhere deeper in the node.

use serde::{Deserialize, Serialize};

/// What happens to sensitive data in a prompt sent through the provider chain
/// (`privacy.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyMode {
    /// Placeholders go to the model; the caller's answer gets its values back.
    #[default]
    Redact,
    /// The request fails, naming the kinds of data found.
    Refuse,
    Off,
}

/// Which device the local models run on (`models.device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU; refused at start when this build or this machine has none.
    Cuda,
    /// The GPU when this build has CUDA and one is present, else the CPU.
    #[default]
    Auto,
}

impl DeviceChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Auto => "auto",
        }
    }
}

/// Who answers for a provider of the chain (`providers.chain[].kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// This node's own models.
    Local,
    /// Any OpenAI-compatible endpoint.
    Openai,
    Anthropic,
}

/// How spans reach the collector (`telemetry.otlp.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// Protobuf over HTTP (a collector's port 4318).
    #[default]
    Http,
    /// gRPC (port 4317).
    Grpc,
}
