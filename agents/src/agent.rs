//! The `Agent` trait and what an attempt receives and returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::egress::ProjectNetworks;
use crate::errors::AgentError;
use crate::memory::{Memory, MemoryScope};
use crate::model::{Billing, ModelClient};
use crate::schema::{InputSchema, parse_inputs};

/// One kind of agent (`shell`, `http`, ...), as the engine sees it: inputs are a JSON
/// map. Implementations must return promptly once `context.cancel` fires and must not
/// panic on any input; a panic is still contained by the runtime and fails only the
/// attempt. Kinds written in Rust implement [`TypedAgent`] instead, which makes them an
/// `Agent`; only kinds whose inputs are declared at run time (plugins) implement this.
#[async_trait::async_trait]
pub trait Agent: Send + Sync + 'static {
    /// The name tasks use in `agent:`. Borrowed from the agent, not `'static`: plugin
    /// kinds are named in settings.
    fn kind(&self) -> &str;
    fn description(&self) -> &str;
    fn input_schema(&self) -> InputSchema;
    /// Why a task of this kind, with these inputs as the workflow writes them (templates
    /// unrendered), must be granted to its project before it may run; `None` when any
    /// project may run it. See [`TypedAgent::needs_grant`].
    fn needs_grant(&self, inputs: &BTreeMap<String, Value>) -> Option<&'static str>;
    /// Whether its attempts run code in the node's jail: a node whose jail does not work
    /// there does not offer the kind to the rest of its cluster.
    fn jailed(&self) -> bool;
    /// One attempt. The inputs are checked here, once, against the kind's schema.
    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError>;
}

/// A kind whose inputs are one struct. Its schema is derived from the struct (doc
/// comments are the descriptions), and a task's inputs are deserialised into it once,
/// before [`TypedAgent::attempt`]: a missing, unknown or ill-typed input fails the
/// attempt naming the field, and the kind reads fields, not keys.
#[async_trait::async_trait]
pub trait TypedAgent: Send + Sync + 'static {
    /// The name tasks use in `agent:`.
    const KIND: &'static str;
    const DESCRIPTION: &'static str;
    type Inputs: DeserializeOwned + JsonSchema + Send;

    /// Why a task of this kind must be granted to its project (the execution policy):
    /// kinds that run code that is not ours or reach the network answer with a phrase
    /// that completes "which ..." (`"runs shell commands"`). An input that decides it and
    /// holds a template counts as the powerful choice. Most kinds need no grant.
    fn needs_grant(_inputs: &BTreeMap<String, Value>) -> Option<&'static str> {
        None
    }

    /// Whether its attempts run code in the node's jail (see [`Agent::jailed`]).
    const JAILED: bool = false;

    async fn attempt(
        &self,
        inputs: Self::Inputs,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError>;
}

#[async_trait::async_trait]
impl<T: TypedAgent> Agent for T {
    fn kind(&self) -> &str {
        T::KIND
    }

    fn description(&self) -> &str {
        T::DESCRIPTION
    }

    fn input_schema(&self) -> InputSchema {
        InputSchema::of::<T::Inputs>()
    }

    fn needs_grant(&self, inputs: &BTreeMap<String, Value>) -> Option<&'static str> {
        T::needs_grant(inputs)
    }

    fn jailed(&self) -> bool {
        T::JAILED
    }

    async fn run(
        &self,
        inputs: Map<String, Value>,
        context: AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let inputs = parse_inputs(inputs)?;
        self.attempt(inputs, context).await
    }
}

/// What an attempt knows besides its inputs.
#[derive(Debug, Clone)]
pub struct AgentContext {
    /// `run:task:attempt`, stable across a crash and resume of the same attempt: an agent
    /// with external side effects passes it on so they happen once.
    pub idempotency_key: String,
    /// Which attempt of its task this is, from 1.
    pub attempt: u32,
    /// The seed its model calls sample with, from its run's seed, task and attempt
    /// number: the same for a resumed attempt as for the interrupted one.
    pub seed: u64,
    pub cancel: CancellationToken,
    /// Per-attempt limit from the task's `timeout`, already enforced by the runtime;
    /// agents that start processes use it to kill them in time.
    pub timeout_secs: Option<u64>,
    pub progress: Option<mpsc::Sender<Progress>>,
    /// The decision that opened the task's approval gate, when it had one.
    pub approval: Option<Approval>,
    /// The node's model and memory, for the kinds that use them.
    pub services: AgentServices,
    /// Whose memory this attempt reads and writes (from the run, not from inputs).
    pub scope: MemoryScope,
    /// The run and task its model calls are billed to, and their budgets; `None` for an
    /// invocation outside any run.
    pub billing: Option<Billing>,
}

/// What a node lends its agents besides their inputs; `None` where the node has none
/// (no local model served, no provider configured).
#[derive(Clone, Default)]
pub struct AgentServices {
    pub model: Option<Arc<dyn ModelClient>>,
    pub memory: Option<Arc<dyn Memory>>,
    /// The private networks each project may reach beyond the node's.
    pub networks: Option<Arc<dyn ProjectNetworks>>,
}

impl std::fmt::Debug for AgentServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentServices")
            .field("model", &self.model.is_some())
            .field("memory", &self.memory.is_some())
            .field("networks", &self.networks.is_some())
            .finish()
    }
}

impl AgentContext {
    /// A context with nothing attached, for tests and one-off calls.
    pub fn detached(idempotency_key: impl Into<String>) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            attempt: 1,
            seed: 0,
            cancel: CancellationToken::new(),
            timeout_secs: None,
            progress: None,
            approval: None,
            services: AgentServices::default(),
            scope: MemoryScope::default(),
            billing: None,
        }
    }

    /// The networks this attempt's project may reach beyond the node's, as its policy
    /// says now: read when a request is about to go out, by the kinds that send one.
    pub async fn project_networks(&self) -> Vec<String> {
        match &self.services.networks {
            Some(networks) => networks.allowed_networks(&self.scope.project).await,
            None => Vec::new(),
        }
    }

    /// Reports progress without ever blocking the agent: when the channel is full the
    /// update is dropped (a newer one will follow).
    pub fn report(&self, message: impl Into<String>, fraction: Option<f32>) {
        if let Some(sender) = &self.progress {
            let update = Progress {
                message: message.into(),
                fraction,
            };
            if sender.try_send(update).is_err() {
                tracing::trace!("progress update dropped: channel full or closed");
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub message: String,
    pub fraction: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub approved: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AgentOutput {
    pub outputs: Map<String, Value>,
    pub cost_usd: f64,
}
