//! The cluster's part of a node (`cluster.enabled`): the links to the other nodes and
//! the membership actor, both under the root supervisor. What can fail at start (the
//! certificates, the listening socket) fails here, before anything is spawned.

use std::path::Path;
use std::sync::Arc;

use ractor::{Actor, SpawnErr};
use serde::{Deserialize, Serialize};
use troupe_agents::{Jail, Registry};
use troupe_cluster::gateway::{Gateway, GatewayArgs};
use troupe_cluster::lease::LeaseTimes;
use troupe_cluster::links::{self, LinkTls, Links, LinksArgs, LinksMsg};
use troupe_cluster::membership::{LoadReport, Membership, MembershipArgs};
use troupe_cluster::placement::ClusterPlacement;
use troupe_config::{ServerSettings, Settings};
use troupe_engine::context::EngineContext;
use troupe_engine::placement::{HereOnly, Placement};
use troupe_engine::policy::ExecutionPolicy;
use troupe_store::{NodeAdvert, NodeRecord};
use troupe_supervision::{ChildRef, ChildSpec};

use crate::NodeError;
use crate::agent_kinds::jail_config;
use troupe_inference::serve::InferenceService;
use troupe_security::secrets::SecretBox;

/// What the links need that is read or bound once per process.
pub(crate) struct Prepared {
    cookie: String,
    listener: std::net::TcpListener,
    tls: Option<LinkTls>,
    advert: NodeAdvert,
    placement: Arc<ClusterPlacement>,
}

/// Where the engine places attempts: here only, or across the cluster
/// (`cluster.enabled`; then also the placement itself, which the membership actor
/// keeps informed).
pub(crate) async fn placement(
    settings: &Settings,
    node_name: &str,
    (registry, execution): (&Registry, &ExecutionPolicy),
) -> (Arc<dyn Placement>, Option<Arc<ClusterPlacement>>) {
    let labels = &settings.cluster.labels;
    if !settings.cluster.enabled {
        let here = HereOnly {
            node: node_name.into(),
            labels: labels.clone(),
        };
        return (Arc::new(here), None);
    }
    let jail = Jail::new(jail_config(settings)).works().await;
    let kinds = offered_kinds(registry, execution, &jail);
    let cluster = ClusterPlacement::new(node_name, labels, kinds);
    (cluster.clone(), Some(cluster))
}

/// The kinds this node offers the cluster: those it runs (`agents.allowed_kinds`), less
/// those that run code in the jail when its jail does not work here. Such a node would
/// only fail their attempts; another node can run them.
fn offered_kinds(
    registry: &Registry,
    execution: &ExecutionPolicy,
    jail: &Result<(), String>,
) -> Vec<String> {
    let (offered, unjailable): (Vec<_>, Vec<_>) = registry
        .agents()
        .filter(|agent| execution.node_runs(agent.kind()))
        .partition(|agent| jail.is_ok() || !agent.jailed());
    if let Err(why) = jail
        && !unjailable.is_empty()
    {
        let kinds: Vec<&str> = unjailable.iter().map(|agent| agent.kind()).collect();
        tracing::warn!(
            kinds = kinds.join(", "),
            "this node cannot jail code, so it does not offer the kinds that need a jail to \
             the cluster: {why}"
        );
    }
    offered
        .iter()
        .map(|agent| agent.kind().to_string())
        .collect()
}

/// The links' cookie: `cluster.cookie`, or the sealed secret `cluster.cookie_secret`
/// names (at least 16 characters either way).
async fn cookie(
    settings: &Settings,
    store: &troupe_store::Store,
    sealer: &SecretBox,
) -> Result<String, NodeError> {
    let name = &settings.cluster.cookie_secret;
    if name.is_empty() {
        return Ok(settings.cluster.cookie.clone());
    }
    let sealed = troupe_security::secrets::get(store, sealer, name)
        .await?
        .ok_or_else(|| {
            NodeError::ClusterCookie(format!(
                "secret `{name}` is not stored: troupe secrets set {name} (the cookie on \
                 standard input), with the secrets' key every node shares (secrets.key or \
                 secrets.dir)"
            ))
        })?;
    match String::from_utf8(sealed) {
        Ok(cookie) if cookie.trim().len() >= 16 => Ok(cookie.trim().to_string()),
        _ => Err(NodeError::ClusterCookie(format!(
            "secret `{name}` must be text of at least 16 characters"
        ))),
    }
}

/// Reads the links' certificates and binds their socket.
fn prepare(
    settings: &Settings,
    node_name: &str,
    placement: Arc<ClusterPlacement>,
    cookie: String,
) -> Result<Prepared, NodeError> {
    let cluster = &settings.cluster;
    let tls = cluster
        .tls
        .as_ref()
        .map(|tls| {
            LinkTls::from_files(
                Path::new(&tls.ca_file),
                Path::new(&tls.cert_file),
                Path::new(&tls.key_file),
            )
        })
        .transpose()?;
    let listener = links::bind(&cluster.listen)?;
    let bound = listener.local_addr().map_err(|source| NodeError::Start {
        what: "the cluster's links",
        source: Box::new(source),
    })?;
    let cluster_address = links::advertised(&cluster.advertise, bound, node_name);
    let advert = NodeAdvert {
        api_address: api_url(&settings.server, &cluster_address),
        cluster_address,
        labels: cluster.labels.clone(),
    };
    Ok(Prepared {
        cookie,
        listener,
        tls,
        advert,
        placement,
    })
}

/// Where the other nodes reach this node's API: `server.address`, or when that is every
/// interface, the host the links are advertised at with the API's port; `https` with
/// `server.tls`.
fn api_url(server: &ServerSettings, links_at: &str) -> String {
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let address = match server.address.parse::<std::net::SocketAddr>() {
        Ok(bound) if bound.ip().is_unspecified() => {
            let host = links_at.rsplit_once(':').map_or(links_at, |(host, _)| host);
            format!("{host}:{}", bound.port())
        }
        _ => server.address.clone(),
    };
    format!("{scheme}://{address}")
}

/// The actors of a cluster node, with the links' cookie read and their socket bound:
/// the links, the gateway, then the membership actor that feeds the links and the
/// placement the members and reports this node's load (`inference`'s models).
pub(crate) async fn children(
    context: &Arc<EngineContext>,
    settings: &Settings,
    placement: Arc<ClusterPlacement>,
    (sealer, inference, links): (&SecretBox, Option<InferenceService>, &ChildRef<LinksMsg>),
) -> Result<Vec<ChildSpec>, NodeError> {
    let cookie = cookie(settings, &context.store, sealer).await?;
    let prepared = prepare(settings, &context.node_name, placement, cookie)?;
    Ok(spawned(context, settings, prepared, (links, inference)))
}

/// The specs of the links, the gateway and the membership.
fn spawned(
    context: &Arc<EngineContext>,
    settings: &Settings,
    prepared: Prepared,
    (links, inference): (&ChildRef<LinksMsg>, Option<InferenceService>),
) -> Vec<ChildSpec> {
    let report = Arc::new(crate::load::NodeLoad {
        inference: inference.clone(),
    });
    let Prepared {
        cookie,
        listener,
        tls,
        advert,
        placement,
    } = prepared;
    vec![
        links_child(context, (settings, cookie), listener, tls, links),
        gateway_child(context, inference),
        membership_child(
            context,
            settings,
            (advert, placement),
            (links.clone(), report),
        ),
    ]
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// The node answering.
    pub node: String,
    /// The members it has a link to, by name.
    pub linked: Vec<String>,
    /// Every node the store lists, with its lease.
    pub members: Vec<NodeRecord>,
}

impl crate::Node {
    /// The members the store lists, and which of them this node is linked to.
    pub async fn cluster_view(&self) -> Result<ClusterView, NodeError> {
        let members = self.store().nodes().await?;
        let linked = match self.links().get() {
            Some(links) => ractor::call_t!(links, LinksMsg::Peers, 2_000)?,
            None => Vec::new(),
        };
        Ok(ClusterView {
            node: self.node_name().into(),
            linked,
            members,
        })
    }
}

fn links_child(
    context: &Arc<EngineContext>,
    (settings, cookie): (&Settings, String),
    listener: std::net::TcpListener,
    tls: Option<LinkTls>,
    handle: &ChildRef<LinksMsg>,
) -> ChildSpec {
    let name = format!("troupe.{}.links", context.node_id);
    let node_name = context.node_name.clone();
    let seeds = settings.cluster.seeds.clone();
    ChildSpec::with_ref(name.clone(), handle.clone(), move |supervisor| {
        let args = listener.try_clone().map(|listener| LinksArgs {
            node_name: node_name.clone(),
            cookie: cookie.clone(),
            listener,
            tls: tls.clone(),
            seeds: seeds.clone(),
        });
        let name = name.clone();
        async move {
            let args = args.map_err(|error| SpawnErr::StartupFailed(error.into()))?;
            Ok(Actor::spawn_linked(Some(name), Links, args, supervisor)
                .await?
                .0)
        }
    })
}

/// Runs the attempts other nodes place here, and answers their asks of `inference`.
fn gateway_child(context: &Arc<EngineContext>, inference: Option<InferenceService>) -> ChildSpec {
    let name = format!("troupe.{}.gateway", context.node_id);
    let context = context.clone();
    ChildSpec::new(name.clone(), move |supervisor| {
        let name = name.clone();
        let args = GatewayArgs {
            context: context.clone(),
            inference: inference.clone(),
        };
        async move {
            let (gateway, _) = Actor::spawn_linked(Some(name), Gateway, args, supervisor).await?;
            Ok(gateway.get_cell())
        }
    })
}

/// This node's lease in the shared store, and the runs it takes over from nodes whose
/// lease lapsed.
fn membership_child(
    context: &Arc<EngineContext>,
    settings: &Settings,
    (advert, placement): (NodeAdvert, Arc<ClusterPlacement>),
    (links, report): (ChildRef<LinksMsg>, Arc<dyn LoadReport>),
) -> ChildSpec {
    let name = format!("troupe.{}.membership", context.node_id);
    let times = LeaseTimes {
        heartbeat_ms: settings.cluster.heartbeat_ms,
        lease_ms: settings.cluster.lease_ms,
    };
    let context = context.clone();
    ChildSpec::new(name.clone(), move |supervisor| {
        let args = MembershipArgs {
            context: context.clone(),
            times,
            advert: advert.clone(),
            links: links.clone(),
            placement: placement.clone(),
            report: report.clone(),
        };
        let name = name.clone();
        async move {
            let (membership, _) =
                Actor::spawn_linked(Some(name), Membership, args, supervisor).await?;
            Ok(membership.get_cell())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_is_advertised_where_the_other_nodes_can_reach_it() {
        let server = |address: &str| ServerSettings {
            address: address.into(),
            ..ServerSettings::default()
        };
        let url = api_url(&server("127.0.0.1:7700"), "127.0.0.1:7800");
        assert_eq!(url, "http://127.0.0.1:7700");
        let url = api_url(&server("0.0.0.0:7700"), "node-a:7800");
        assert_eq!(url, "http://node-a:7700");
        let url = api_url(&server("[::]:7700"), "[fd00::2]:7800");
        assert_eq!(url, "http://[fd00::2]:7700");
    }

    #[test]
    fn a_node_that_cannot_jail_code_offers_only_the_kinds_that_need_no_jail() {
        let settings = Settings::defaults_with_store("mem://");
        let registry = crate::builtin_registry(&settings).unwrap();
        let every = ExecutionPolicy::new(&["*".into()]);
        let jailed = [
            "shell",
            "test_runner",
            "deployment_agent",
            "code_analyzer",
            "debugging",
        ];
        let offered = offered_kinds(&registry, &every, &Ok(()));
        assert!(
            jailed.iter().all(|kind| offered.iter().any(|k| k == kind)),
            "{offered:?}"
        );
        let broken = Err("bubblewrap is not installed".to_string());
        let offered = offered_kinds(&registry, &every, &broken);
        for kind in jailed {
            assert!(
                !offered.iter().any(|k| k == kind),
                "{kind} offered: {offered:?}"
            );
        }
        for kind in ["echo", "http", "planner", "human_review"] {
            assert!(
                offered.iter().any(|k| k == kind),
                "{kind} missing: {offered:?}"
            );
        }
        let some = ExecutionPolicy::new(&["echo".into(), "shell".into()]);
        assert_eq!(
            offered_kinds(&registry, &some, &broken),
            vec!["echo".to_string()]
        );
    }
}
