//! How the node is doing, read the same way by `/readyz`, `/metrics` and the alert rules:
//! each component's health, the pools' load, waiting approvals and cluster members,
//! rendered with everything else the process counts. Cheap to clone (handles only), so
//! that the alert loop holds its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, ActorStatus};
use serde::{Deserialize, Serialize};
use troupe_cluster::placement::ClusterPlacement;
use troupe_engine::agent_pool::{AgentPoolMsg, PoolLoad};
use troupe_engine::context::EngineContext;
use troupe_inference::serve::InferenceService;
use troupe_supervision::SupervisorMsg;

/// How long readiness waits for the store.
const READINESS_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// 1 while a component of the node is well, by component: `/readyz` as a gauge.
const COMPONENT_UP: &str = "troupe_component_up";

pub(crate) fn describe() {
    metrics::describe_gauge!(
        COMPONENT_UP,
        "1 while a component of the node is well (as /readyz sees it), else 0."
    );
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub store: String,
    pub supervision: String,
    /// `alone` (no cluster), `member` (its lease is live) or `joining` (not yet, or
    /// no longer: it fenced itself and starts no run until it is a member again).
    pub membership: String,
    /// `ok`, `off` (`models.serve` is off) or `unavailable` (the model router stopped).
    pub models: String,
}

impl Readiness {
    /// Each component and whether it is well, for the `troupe_component_up` gauge.
    pub fn components(&self) -> [(&'static str, bool); 4] {
        [
            ("store", self.store == "ok"),
            ("supervision", self.supervision == "ok"),
            ("membership", self.membership != "joining"),
            ("models", self.models != "unavailable"),
        ]
    }
}

#[derive(Clone)]
pub(crate) struct Vitals {
    pub(crate) context: Arc<EngineContext>,
    pub(crate) cluster: Option<Arc<ClusterPlacement>>,
    pub(crate) inference: Option<InferenceService>,
    pub(crate) root: ActorRef<SupervisorMsg>,
}

impl Vitals {
    pub(crate) fn new(
        context: &Arc<EngineContext>,
        cluster: &Option<Arc<ClusterPlacement>>,
        inference: &Option<InferenceService>,
        root: &ActorRef<SupervisorMsg>,
    ) -> Self {
        Self {
            context: context.clone(),
            cluster: cluster.clone(),
            inference: inference.clone(),
            root: root.clone(),
        }
    }

    /// Each component's state, and whether the node can serve.
    pub(crate) async fn readiness(&self) -> Readiness {
        let supervision = match self.root.get_status() {
            ActorStatus::Stopping | ActorStatus::Stopped => "stopped",
            _ => "ok",
        };
        let membership = match (&self.cluster, self.context.is_acting()) {
            (None, _) => "alone",
            (Some(_), true) => "member",
            (Some(_), false) => "joining",
        };
        let models = match &self.inference {
            None => "off",
            Some(service) if service.workers().await.is_ok() => "ok",
            Some(_) => "unavailable",
        };
        let mut readiness = Readiness {
            ready: false,
            store: self.store_state().await.into(),
            supervision: supervision.into(),
            membership: membership.into(),
            models: models.into(),
        };
        readiness.ready = readiness.components().iter().all(|(_, well)| *well);
        readiness
    }

    /// Which part is not ready, never why: the answer is for anyone, the reason for the
    /// log. Bounded: a store that went away can leave a query waiting for its
    /// reconnection, and a probe must answer in time to count.
    async fn store_state(&self) -> &'static str {
        let asked =
            tokio::time::timeout(READINESS_STORE_TIMEOUT, self.context.store.workflows()).await;
        match asked {
            Ok(Ok(_)) => "ok",
            Ok(Err(error)) => {
                tracing::error!(%error, "readiness: the store does not answer");
                "unavailable"
            }
            Err(_) => {
                tracing::error!("readiness: the store did not answer in time");
                "unavailable"
            }
        }
    }

    /// Every metric of this process in Prometheus's text format, the gauges read now
    /// brought up to date first; `None` when the program that embeds the node installed
    /// a metrics recorder of its own.
    pub(crate) async fn metrics_text(&self) -> Option<String> {
        let recorder = crate::metrics::recorder()?;
        self.sample_gauges().await;
        Some(recorder.classic.render())
    }

    /// The same in OpenMetrics, histogram buckets with the trace id of an observation
    /// as exemplar.
    pub(crate) async fn metrics_openmetrics(&self) -> Option<String> {
        let recorder = crate::metrics::recorder()?;
        self.sample_gauges().await;
        Some(recorder.open.render())
    }

    /// The gauges that are read rather than counted.
    async fn sample_gauges(&self) {
        for (component, well) in self.readiness().await.components() {
            metrics::gauge!(COMPONENT_UP, "component" => component).set(f64::from(u8::from(well)));
        }
        crate::metrics::pools(&self.pool_loads().await);
        troupe_engine::metrics::sample_approvals(self.context.clock.now_ms());
        if let Some(cluster) = &self.cluster {
            crate::metrics::members(&cluster.members());
        }
    }

    /// Load of every agent pool, by kind.
    pub(crate) async fn pool_loads(&self) -> BTreeMap<String, PoolLoad> {
        let mut loads = BTreeMap::new();
        for (kind, pool) in &self.context.pools {
            let Some(pool) = pool.get() else {
                continue;
            };
            if let Ok(load) = ractor::call!(pool, AgentPoolMsg::GetLoad) {
                loads.insert(kind.clone(), load);
            }
        }
        loads
    }
}
