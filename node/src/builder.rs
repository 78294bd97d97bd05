//! The library face of Troupe: a Rust program starts a node of its own with
//! [`NodeBuilder`], adding agent kinds it implements in Rust beside the built-in ones,
//! and gets back the [`Node`] the CLI and the HTTP API also drive.

use std::sync::Arc;

use troupe_agents::Agent;
use troupe_config::Settings;

use crate::agent_kinds::builtin_registry;
use crate::reload::SettingsSource;
use crate::{Node, NodeError};
use troupe_store::clock::{Clock, SystemClock};

/// Settings and extra agent kinds, then [`NodeBuilder::start`].
///
/// ```no_run
/// # async fn example(my_kind: std::sync::Arc<dyn troupe_agents::Agent>) -> Result<(), troupe_node::NodeError> {
/// let settings = troupe_config::Settings::defaults_with_store("mem://");
/// let node = troupe_node::NodeBuilder::new(settings)
///     .agent_kind(my_kind)
///     .start()
///     .await?;
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct NodeBuilder {
    settings: Settings,
    source: Option<SettingsSource>,
    kinds: Vec<Arc<dyn Agent>>,
    clock: Arc<dyn Clock>,
}

impl NodeBuilder {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            source: None,
            kinds: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock the engine reads (retries due, approvals expired): the wall clock
    /// unless a test or a simulation moves time itself.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the settings can be read again (the file, environment and flags they came
    /// from), for `troupe config reload` and SIGHUP; without one a reload is refused.
    pub fn settings_source(mut self, source: SettingsSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds an agent kind; workflows name it by its [`Agent::kind`]. It may not take
    /// the name of a built-in kind or of a plugin in settings.
    pub fn agent_kind(mut self, agent: Arc<dyn Agent>) -> Self {
        self.kinds.push(agent);
        self
    }

    /// Opens the store and starts everything under the node's root supervisor.
    pub async fn start(self) -> Result<Node, NodeError> {
        let mut registry = builtin_registry(&self.settings)?;
        for agent in self.kinds {
            if registry.contains(agent.kind()) {
                return Err(NodeError::AgentKinds(format!(
                    "agent kind `{}` is taken (by a built-in kind, a plugin in settings, or \
                     another kind added to this builder); give yours another name",
                    agent.kind()
                )));
            }
            registry.register(agent);
        }
        Node::start_with(self.settings, self.source, registry, self.clock).await
    }
}
