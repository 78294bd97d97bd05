//! Settings that change without a restart. A reload reads the settings again from
//! where the node got them (its [`SettingsSource`]: the file, the environment and the
//! flags it started with), validates the whole tree (an invalid one changes nothing and
//! names the key and its source), applies the keys a running node can take
//! ([`troupe_config::LIVE`]: alert rules, the provider chain with its prices and
//! budgets, the agent policy, the log level, trace sampling and content) and names the
//! rest, which wait for a restart. Each reload is audited with the new settings' digest;
//! in a cluster it is announced through the store, and every other node reloads too.
//!
//! What applies a key is whoever reads it: the chain and the policy are replaced here;
//! the alert loop, the log filter and the trace sampler follow [`RunningSettings`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use troupe_config::{ConfigError, Settings};
use troupe_engine::context::EngineContext;
use troupe_inference::providers::ProviderChain;
use troupe_security::audit::{AuditAction, AuditLog};
use troupe_security::auth::Auth;
use troupe_store::clock::now_ms;

use crate::NodeError;
use crate::services::ChainModel;

/// Reads the node's settings again, as at its start.
pub type SettingsSource = Arc<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

/// The settings a node runs with, and since when.
#[derive(Clone)]
pub struct RunningSettings {
    pub settings: Arc<Settings>,
    pub loaded_at_ms: i64,
    /// Of the settings as loaded (before the keys that wait for a restart were set
    /// aside), secrets masked.
    pub settings_sha256: String,
    /// Keys whose new values wait for a restart.
    pub waiting_for_restart: Vec<String>,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub node: String,
    pub loaded_at_ms: i64,
    pub settings_sha256: String,
    /// Keys applied now.
    pub applied: Vec<String>,
    /// Keys that changed but wait for a restart.
    pub needs_restart: Vec<String>,
}

/// Builds the provider chain from settings and the keys opened for it.
pub(crate) type ChainMaker =
    Box<dyn Fn(&Settings, &BTreeMap<String, String>) -> ProviderChain + Send + Sync>;

/// What a reload touches; shared with the task that follows other nodes' reloads.
pub(crate) struct Reloader {
    source: Option<SettingsSource>,
    pub(crate) running: watch::Sender<RunningSettings>,
    one_at_a_time: Mutex<()>,
    context: Arc<EngineContext>,
    audit: Arc<AuditLog>,
    auth: Arc<Auth>,
    model: ChainModel,
    make_chain: ChainMaker,
    clustered: bool,
}

impl Reloader {
    pub(crate) fn new(
        settings: Settings,
        source: Option<SettingsSource>,
        (context, audit, auth, model): (Arc<EngineContext>, Arc<AuditLog>, Arc<Auth>, ChainModel),
        make_chain: ChainMaker,
    ) -> Self {
        let clustered = settings.cluster.enabled;
        let running = watch::Sender::new(RunningSettings {
            settings_sha256: crate::node::settings_digest(&settings),
            settings: Arc::new(settings),
            loaded_at_ms: now_ms(),
            waiting_for_restart: Vec::new(),
        });
        Self {
            source,
            running,
            one_at_a_time: Mutex::new(()),
            context,
            audit,
            auth,
            model,
            make_chain,
            clustered,
        }
    }

    pub(crate) fn settings(&self) -> Arc<Settings> {
        self.running.borrow().settings.clone()
    }

    /// Reads the settings again and applies what can change live; `by` is who asked
    /// (an account, `signal`, or `cluster` when another node's reload was announced).
    pub(crate) async fn reload(&self, by: &str) -> Result<Reloaded, NodeError> {
        let source = self.source.as_ref().ok_or(NodeError::NoSettingsSource)?;
        let new = source().map_err(NodeError::Settings)?;
        let reloaded = self.apply(new, by).await?;
        if self.clustered && by != "cluster" {
            self.context
                .store
                .announce_reload(&self.context.node_name)
                .await?;
        }
        Ok(reloaded)
    }

    /// Applies the live keys of `new`; nothing changes when one of them cannot be
    /// applied (a provider's key secret missing, say).
    async fn apply(&self, new: Settings, by: &str) -> Result<Reloaded, NodeError> {
        let _reloading = self.one_at_a_time.lock().await;
        let running = self.settings();
        let changes = troupe_config::changes(&running, &new);
        let applied = troupe_config::apply_live(&running, &new);
        if changes.live.iter().any(|key| key.starts_with("providers.")) {
            let secrets = self.auth.secrets();
            let keys = crate::node::provider_keys(&self.context.store, secrets, &applied.providers)
                .await?;
            self.model.replace_chain((self.make_chain)(&applied, &keys));
            crate::metrics::budget(applied.providers.budget_usd_per_day);
        }
        self.context.policy.replace(&applied.agents.allowed_kinds);
        let now = RunningSettings {
            settings: Arc::new(applied),
            loaded_at_ms: now_ms(),
            settings_sha256: crate::node::settings_digest(&new),
            waiting_for_restart: changes.restart.clone(),
        };
        let reloaded = Reloaded {
            node: self.context.node_name.clone(),
            loaded_at_ms: now.loaded_at_ms,
            settings_sha256: now.settings_sha256.clone(),
            applied: changes.live,
            needs_restart: changes.restart,
        };
        self.running.send_replace(now);
        let action = AuditAction::ConfigReload {
            settings_sha256: reloaded.settings_sha256.clone(),
            applied: reloaded.applied.clone(),
            needs_restart: reloaded.needs_restart.clone(),
        };
        self.audit.record(by, action, &reloaded.node).await?;
        tracing::info!(applied = ?reloaded.applied, needs_restart = ?reloaded.needs_restart, "settings reloaded");
        Ok(reloaded)
    }
}

/// How often a cluster node looks for another node's reload.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Reloads this node whenever another node of the cluster announces a reload.
///
/// The latest announcement is read before this returns, while the node is still
/// starting: one made after the node is ready is then always followed, however late
/// the spawned task first runs.
pub(crate) async fn follow_cluster(reloader: Arc<Reloader>) -> JoinHandle<()> {
    let store = reloader.context.store.clone();
    let mut seen = match store.latest_reload().await {
        Ok(latest) => latest.map_or(0, |r| r.seq),
        Err(error) => {
            // Following from zero reloads once more than needed, which is harmless.
            tracing::warn!(%error, "cannot read the cluster's latest settings reload");
            0
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let Ok(Some(latest)) = store.latest_reload().await else {
                continue;
            };
            if latest.seq <= seen {
                continue;
            }
            seen = latest.seq;
            if latest.node == reloader.context.node_name {
                continue;
            }
            if let Err(error) = reloader.reload("cluster").await {
                tracing::error!(%error, from = %latest.node, "cannot follow the cluster's reload");
            }
        }
    })
}
