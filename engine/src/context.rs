//! What every engine actor shares: the store, the agent kinds, settings, the event bus
//! and the node-wide limit on running attempts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Semaphore, broadcast};
use troupe_agents::{AgentServices, Registry};
use troupe_config::EngineSettings;
use troupe_workflow::Workflow;

use crate::EngineError;
use crate::agent_pool::AgentPoolMsg;
use crate::placement::Placement;
use crate::policy::ExecutionPolicy;
use crate::run_manager::RunManagerMsg;
use troupe_store::clock::Clock;
use troupe_store::events::StoredEvent;
use troupe_store::{RunId, Store};
use troupe_supervision::ChildRef;

/// Who a node is: a fresh id for its actors' names, its lasting name, and whether it
/// is alone on its store.
pub struct NodeIdentity {
    pub id: String,
    pub name: String,
    /// Alone, the run manager takes over every unfinished run when it starts; in a
    /// cluster, the membership actor hands it runs (`RunManagerMsg::Adopt`).
    pub alone: bool,
    /// Where attempts run: [`HereOnly`](crate::placement::HereOnly) alone.
    pub placement: Arc<dyn Placement>,
}

pub struct EngineContext {
    pub store: Store,
    pub registry: Registry,
    pub settings: EngineSettings,
    /// Every appended event, for WebSocket subscribers and the CLI's live view. Slow
    /// subscribers lose old events (they can re-read the log), never block the engine.
    pub events: broadcast::Sender<StoredEvent>,
    /// Attempts that may run at once on this node.
    pub node_slots: Arc<Semaphore>,
    /// Prefix of this node's actor names: ractor's registry is process-wide, and tests
    /// (and, later, co-located nodes) run several nodes in one process.
    pub node_id: String,
    /// The name runs this node takes on are recorded as owned by (`cluster.node_name`).
    pub node_name: String,
    /// See [`NodeIdentity::alone`].
    pub alone: bool,
    /// Whether this node may act now: always when alone; in a cluster, while its lease
    /// is live (the membership actor keeps it). A node that may not starts no run.
    pub acting: Arc<AtomicBool>,
    /// The model and memory lent to model-backed agents.
    pub services: AgentServices,
    /// The agent pool of each kind, across the pools' restarts.
    pub pools: BTreeMap<String, ChildRef<AgentPoolMsg>>,
    /// The run manager, across its restarts.
    pub run_manager: ChildRef<RunManagerMsg>,
    /// Where the engine reads the time it stores and decides by (retries due, approvals
    /// expired): the wall clock in a node.
    pub clock: Arc<dyn Clock>,
    /// Which agent kinds workflows may use (checked at save and at start).
    pub policy: ExecutionPolicy,
    /// Where each attempt runs: here, or on another node of the cluster.
    pub placement: Arc<dyn Placement>,
}

impl EngineContext {
    pub fn new(
        identity: NodeIdentity,
        store: Store,
        registry: Registry,
        settings: EngineSettings,
        services: AgentServices,
        clock: Arc<dyn Clock>,
        policy: ExecutionPolicy,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(4096);
        let pools = registry
            .kind_names()
            .into_iter()
            .map(|kind| (kind.to_string(), ChildRef::default()))
            .collect();
        Arc::new(Self {
            pools,
            run_manager: ChildRef::default(),
            clock,
            node_slots: Arc::new(Semaphore::new(settings.max_concurrent_tasks as usize)),
            store,
            registry,
            settings,
            events,
            node_id: identity.id,
            node_name: identity.name,
            acting: Arc::new(AtomicBool::new(identity.alone)),
            alone: identity.alone,
            placement: identity.placement,
            services,
            policy,
        })
    }

    /// See [`EngineContext::acting`].
    pub fn is_acting(&self) -> bool {
        self.acting.load(Ordering::SeqCst)
    }

    /// A fresh node id for [`EngineContext::new`].
    pub fn new_node_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// The inference router's actor name on node `node_id`.
    pub fn router_name(node_id: &str) -> String {
        format!("troupe.{node_id}.inference")
    }

    /// Parses workflow text against the agent kinds this node knows.
    pub fn parse_workflow(&self, source: &str, file_name: &str) -> Result<Workflow, EngineError> {
        let known = self.registry.kind_names();
        troupe_workflow::parse_workflow(source, file_name, &known)
            .map_err(|diagnostics| EngineError::InvalidWorkflow(diagnostics.to_string()))
    }

    /// Whether the execution policy lets `workflow` run (see [`ExecutionPolicy`]).
    pub async fn check_policy(&self, workflow: &Workflow) -> Result<(), EngineError> {
        self.policy
            .check(workflow, &self.registry, &self.store)
            .await
    }

    pub fn pool_name(&self, kind: &str) -> String {
        format!("troupe.{}.agent_pool.{kind}", self.node_id)
    }

    pub fn run_name(&self, run_id: &RunId) -> String {
        format!("troupe.{}.run.{run_id}", self.node_id)
    }

    pub fn inference_router_name(&self) -> String {
        Self::router_name(&self.node_id)
    }

    pub fn run_manager_name(&self) -> String {
        format!("troupe.{}.run_manager", self.node_id)
    }
}
