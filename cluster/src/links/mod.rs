//! The links between nodes: ractor_cluster sessions, authenticated by mutual TLS and the
//! cluster's cookie, carrying the gateway's calls.
//!
//! ractor_cluster is a transport with no failure detector and no reconnect, so this
//! actor adds both, with the store as the source of truth: every heartbeat the
//! membership actor hands it the members the node table lists; it dials each live
//! member it has no session with (a bounded dial, then backoff), and drops the session
//! of a member whose lease lapsed, so that a call to a frozen or dead peer fails at once
//! instead of waiting on a socket that says nothing. Seeds (`cluster.seeds`, `troupe up
//! --join`) are dialled too, until one dial gets through.

pub mod certs;
mod identity;
mod listener;
pub mod tls;

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{
    IncomingEncryptionMode, NodeEventSubscription, NodeServer, NodeServerMessage,
    NodeSessionMessage, RactorMessage,
};
use tokio::task::JoinHandle;
use troupe_engine::backoff::retry_delay_ms;
use troupe_store::NodeRecord;

use self::identity::Proofs;
use crate::error::ClusterError;
pub use tls::LinkTls;

/// The largest frame a peer may send, before or after authenticating: a larger length
/// prefix closes the link before anything is allocated for it.
pub const MAX_FRAME_BYTES: u64 = 16 * 1024 * 1024;

pub struct LinksArgs {
    pub node_name: String,
    pub cookie: String,
    /// Bound once by the node and cloned for each start of this actor, so that a
    /// restart keeps the address the node table advertises.
    pub listener: std::net::TcpListener,
    /// `None`: plain links (`cluster.insecure`, loopback only).
    pub tls: Option<LinkTls>,
    pub seeds: Vec<String>,
}

/// Binds the links' listener: the socket every start of the links actor accepts on.
pub fn bind(listen: &str) -> Result<std::net::TcpListener, ClusterError> {
    let failed = |source| ClusterError::Listen {
        address: listen.into(),
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    Ok(listener)
}

/// The address the other nodes dial: `advertise` when set; else the bound address, or
/// the node's name at the bound port when bound on every interface.
pub fn advertised(advertise: &str, bound: SocketAddr, node_name: &str) -> String {
    if !advertise.is_empty() {
        advertise.into()
    } else if bound.ip().is_unspecified() {
        format!("{node_name}:{}", bound.port())
    } else {
        bound.to_string()
    }
}

#[derive(RactorMessage)]
pub enum LinksMsg {
    /// Every node the store lists, live or not (from the membership actor).
    Members(Vec<NodeRecord>),
    SessionReady {
        peer: String,
        session: ActorRef<NodeSessionMessage>,
    },
    SessionClosed {
        peer: String,
        session: ActorId,
    },
    Dialled {
        address: String,
        outcome: Result<(), String>,
    },
    /// The peers with a session ready, by name.
    Peers(RpcReplyPort<Vec<String>>),
    /// The live members whose session closed and has not come back, by name.
    Lost(RpcReplyPort<Vec<String>>),
}

pub struct Links;

pub struct LinksState {
    args: LinksArgs,
    server: ActorRef<NodeServerMessage>,
    accepting: JoinHandle<()>,
    sessions: HashMap<String, ActorRef<NodeSessionMessage>>,
    /// Peers whose session closed without this node dropping it, until one is back.
    lost: BTreeSet<String>,
    dials: HashMap<String, Dial>,
    /// The certificate of each connection's peer, for its session's name to be checked.
    proofs: Proofs,
}

/// One address being dialled: by a member's name, or a seed's host.
struct Dial {
    server_name: String,
    in_flight: bool,
    failures: u32,
    next_try: Instant,
}

impl Dial {
    fn new(server_name: &str) -> Dial {
        Dial {
            server_name: server_name.into(),
            in_flight: false,
            failures: 0,
            next_try: Instant::now(),
        }
    }

    fn due(&self) -> bool {
        !self.in_flight && Instant::now() >= self.next_try
    }

    /// 200 ms, doubling to 5 s, jittered like a task's retries so that the nodes that
    /// lost the same peer do not redial it in lockstep.
    fn failed(&mut self) {
        self.in_flight = false;
        self.failures = self.failures.saturating_add(1);
        let delay = retry_delay_ms(self.failures.saturating_add(1), 200, 5_000);
        self.next_try = Instant::now() + Duration::from_millis(delay);
    }
}

/// How long one dial (TCP connect and TLS handshake) may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

impl Actor for Links {
    type Msg = LinksMsg;
    type State = LinksState;
    type Arguments = LinksArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<LinksMsg>,
        args: LinksArgs,
    ) -> Result<LinksState, ActorProcessingErr> {
        let proofs = Proofs::default();
        let server = start_node_server(&myself, &args, &proofs).await?;
        let listener = tokio::net::TcpListener::from_std(args.listener.try_clone()?)?;
        let accepting = tokio::spawn(listener::accept_loop(
            listener,
            args.tls.as_ref().map(|tls| tls.acceptor.clone()),
            server.clone(),
            proofs.clone(),
        ));
        let mut dials = HashMap::new();
        for seed in &args.seeds {
            let host = seed
                .rsplit_once(':')
                .map_or(seed.as_str(), |(host, _)| host);
            dials.insert(seed.clone(), Dial::new(host));
        }
        let mut state = LinksState {
            args,
            server,
            accepting,
            sessions: HashMap::new(),
            lost: BTreeSet::new(),
            dials,
            proofs,
        };
        dial_due(&myself, &mut state);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<LinksMsg>,
        message: LinksMsg,
        state: &mut LinksState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            LinksMsg::Members(members) => {
                follow_members(state, &members);
                dial_due(&myself, state);
            }
            LinksMsg::SessionReady { peer, session } => {
                tracing::info!(%peer, "linked");
                state.lost.remove(&peer);
                state.sessions.insert(peer, session);
            }
            LinksMsg::SessionClosed { peer, session } => {
                if state.sessions.get(&peer).map(|known| known.get_id()) == Some(session) {
                    tracing::info!(%peer, "link closed");
                    state.sessions.remove(&peer);
                    state.lost.insert(peer);
                }
            }
            LinksMsg::Dialled { address, outcome } => {
                let seed = state.args.seeds.contains(&address);
                match (outcome, state.dials.get_mut(&address)) {
                    (Ok(()), Some(_)) if seed => {
                        state.dials.remove(&address);
                    }
                    (Ok(()), Some(dial)) => dial.in_flight = false,
                    (Err(why), Some(dial)) => {
                        tracing::debug!(%address, why, "dial failed");
                        dial.failed();
                    }
                    (_, None) => {}
                }
            }
            LinksMsg::Peers(reply) => {
                let mut peers: Vec<String> = state.sessions.keys().cloned().collect();
                peers.sort();
                if reply.send(peers).is_err() {
                    tracing::debug!("peers asked by a caller that left");
                }
            }
            LinksMsg::Lost(reply) => {
                if reply.send(state.lost.iter().cloned().collect()).is_err() {
                    tracing::debug!("lost peers asked by a caller that left");
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<LinksMsg>,
        state: &mut LinksState,
    ) -> Result<(), ActorProcessingErr> {
        state.accepting.abort();
        state.server.stop(Some("the links stopped".into()));
        Ok(())
    }
}

/// ractor_cluster's node server, with its own listener on a loopback port of no use to
/// anyone (ours accepts the links) but as well guarded as ours.
async fn start_node_server(
    myself: &ActorRef<LinksMsg>,
    args: &LinksArgs,
    proofs: &Proofs,
) -> Result<ActorRef<NodeServerMessage>, ActorProcessingErr> {
    let encryption = args
        .tls
        .as_ref()
        .map(|tls| IncomingEncryptionMode::Tls(tls.acceptor.clone()));
    let server = NodeServer::new(
        0,
        args.cookie.clone(),
        args.node_name.clone(),
        args.node_name.clone(),
        encryption,
        None,
    )
    .with_listen_addr(Ipv4Addr::LOCALHOST.into())
    .with_max_inbound_frame_size(MAX_FRAME_BYTES);
    let name = format!("troupe.{}.node_server", args.node_name);
    let (server, _) = Actor::spawn_linked(Some(name), server, (), myself.get_cell()).await?;
    server.cast(NodeServerMessage::SubscribeToEvents {
        id: "troupe.links".into(),
        subscription: Box::new(SessionEvents {
            links: myself.clone(),
            // Plain links carry no certificates: nothing to check a name against.
            proofs: args.tls.as_ref().map(|_| proofs.clone()),
        }),
    })?;
    Ok(server)
}

/// Dials the live members without a session; drops the sessions of members whose
/// lease lapsed.
fn follow_members(state: &mut LinksState, members: &[NodeRecord]) {
    for member in members {
        if member.name == state.args.node_name || member.cluster_address.is_empty() {
            continue;
        }
        if !member.live {
            state.lost.remove(&member.name);
            state.dials.remove(&member.cluster_address);
            if let Some(session) = state.sessions.remove(&member.name) {
                tracing::warn!(peer = %member.name, "its lease lapsed: dropping the link");
                session.stop(Some("the peer's lease lapsed".into()));
            }
            continue;
        }
        if state.sessions.contains_key(&member.name) {
            continue;
        }
        state
            .dials
            .entry(member.cluster_address.clone())
            .or_insert_with(|| Dial::new(&member.name));
    }
    // A member that moved (a new address) is dialled at its new one only.
    let listed: std::collections::HashSet<&str> = members
        .iter()
        .filter(|member| member.live)
        .map(|member| member.cluster_address.as_str())
        .collect();
    let seeds = &state.args.seeds;
    state
        .dials
        .retain(|address, _| listed.contains(address.as_str()) || seeds.contains(address));
}

/// Starts every dial that is due, each on its own task, bounded by [`DIAL_TIMEOUT`].
fn dial_due(myself: &ActorRef<LinksMsg>, state: &mut LinksState) {
    let linked: Vec<&String> = state.sessions.keys().collect();
    for (address, dial) in state.dials.iter_mut() {
        if !dial.due() || linked.contains(&&dial.server_name) {
            continue;
        }
        dial.in_flight = true;
        let task = dial_task(
            myself.clone(),
            (state.server.clone(), state.proofs.clone()),
            state.args.tls.clone(),
            address.clone(),
            dial.server_name.clone(),
        );
        tokio::spawn(task);
    }
}

async fn dial_task(
    myself: ActorRef<LinksMsg>,
    (server, proofs): (ActorRef<NodeServerMessage>, Proofs),
    tls: Option<LinkTls>,
    address: String,
    server_name: String,
) {
    let dialling = async {
        match tls {
            Some(tls) => dial_tls(&server, &proofs, (&address, &server_name), tls).await,
            None => ractor_cluster::client_connect(&server, address.as_str())
                .await
                .map_err(|error| error.to_string()),
        }
    };
    let outcome = tokio::time::timeout(DIAL_TIMEOUT, dialling)
        .await
        .unwrap_or_else(|_| Err("no answer within 3 s".into()));
    if myself.cast(LinksMsg::Dialled { address, outcome }).is_err() {
        tracing::debug!("a dial ended after the links stopped");
    }
}

/// Connects to `address` over TLS, checking the peer's certificate for `server_name`,
/// keeps the certificate for the session's name to be checked against, and hands the
/// stream to the node server (what `client_connect_enc` does, but for the certificate).
async fn dial_tls(
    server: &ActorRef<NodeServerMessage>,
    proofs: &Proofs,
    (address, server_name): (&str, &str),
    tls: LinkTls,
) -> Result<(), String> {
    let name = tls::server_name(server_name).map_err(|error| error.to_string())?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|error| error.to_string())?;
    tcp.set_nodelay(true).map_err(|error| error.to_string())?;
    let peer_addr = tcp.peer_addr().map_err(|error| error.to_string())?;
    let local_addr = tcp.local_addr().map_err(|error| error.to_string())?;
    let stream = tls
        .connector
        .connect(name, tcp)
        .await
        .map_err(|error| format!("TLS handshake failed: {error}"))?;
    if let Some(certificate) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(<[_]>::first)
    {
        proofs.record(peer_addr, certificate);
    }
    let opened = NodeServerMessage::ConnectionOpened {
        stream: Box::new(ractor_cluster::NetworkStream::TlsClient {
            stream,
            peer_addr,
            local_addr,
        }),
        is_server: false,
    };
    server.cast(opened).map_err(|error| error.to_string())
}

/// The node server's session events, as messages to the links actor; with mutual TLS,
/// each session's claimed name checked against its peer's certificate first.
struct SessionEvents {
    links: ActorRef<LinksMsg>,
    proofs: Option<Proofs>,
}

impl SessionEvents {
    fn tell(&self, message: LinksMsg) {
        if self.links.cast(message).is_err() {
            tracing::debug!("a session event after the links stopped");
        }
    }
}

impl NodeEventSubscription for SessionEvents {
    fn node_session_opened(&self, _: NodeServerSessionInformation) {}

    fn node_session_authenticated(&self, session: NodeServerSessionInformation) {
        let (Some(proofs), Some(peer)) = (&self.proofs, &session.peer_name) else {
            return;
        };
        let claimed = node_name(&peer.name);
        let id = session.actor.get_id();
        if let Err(why) = proofs.check(&session.peer_addr, &claimed, id) {
            tracing::warn!(peer = %claimed, address = %session.peer_addr, why, "closed a link whose peer claims a node its certificate does not name");
            session
                .actor
                .stop(Some("the peer's certificate names another node".into()));
        }
    }

    fn node_session_ready(&self, session: NodeServerSessionInformation) {
        let refused = self
            .proofs
            .as_ref()
            .is_some_and(|proofs| proofs.is_refused(session.actor.get_id()));
        if refused {
            return;
        }
        if let Some(peer) = session.peer_name {
            self.tell(LinksMsg::SessionReady {
                peer: node_name(&peer.name),
                session: session.actor,
            });
        }
    }

    fn node_session_disconnected(&self, session: NodeServerSessionInformation) {
        if let Some(proofs) = &self.proofs {
            proofs.forget(&session.peer_addr, session.actor.get_id());
        }
        if let Some(peer) = session.peer_name {
            self.tell(LinksMsg::SessionClosed {
                peer: node_name(&peer.name),
                session: session.actor.get_id(),
            });
        }
    }
}

/// ractor_cluster names a peer `NAME@HOST`; the node table knows it as `NAME`.
fn node_name(peer: &str) -> String {
    peer.split_once('@')
        .map_or(peer, |(name, _)| name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertised_address_is_the_setting_else_the_bound_one_else_the_name() {
        let any: SocketAddr = "0.0.0.0:7710".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(advertised("b.internal:7710", any, "b"), "b.internal:7710");
        assert_eq!(advertised("", loopback, "b"), "127.0.0.1:40001");
        assert_eq!(advertised("", any, "b"), "b:7710");
    }

    #[test]
    fn a_peer_is_known_by_its_node_name() {
        assert_eq!(node_name("b@b.internal"), "b");
        assert_eq!(node_name("b"), "b");
    }

    #[test]
    fn a_failing_dial_backs_off_to_five_seconds() {
        let mut dial = Dial::new("b");
        assert!(dial.due());
        for _ in 0..10 {
            dial.in_flight = true;
            dial.failed();
        }
        let wait = dial.next_try - Instant::now();
        assert!(
            wait <= Duration::from_secs(5) && wait >= Duration::from_millis(2_400),
            "{wait:?}"
        );
        assert!(!dial.due());
    }
}
