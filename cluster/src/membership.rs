//! The membership actor: renews this node's lease every heartbeat, fences the node when
//! it cannot ([`Lease`]), and hands the run manager the runs it should take over
//! ([`Orphans`]), after declaring dead the members that died outright ([`downing`]).
//! When it stops cleanly it ends its lease, so that its runs are taken over at once
//! rather than after the lease.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use serde_json::{Map, Value, json};
use troupe_engine::context::EngineContext;
use troupe_engine::run_manager::RunManagerMsg;
use troupe_store::{NodeAdvert, NodeRecord};
use troupe_supervision::ChildRef;

use crate::downing;
use crate::lease::{Lease, LeaseAction, LeaseTimes, Millis, Renewal, Standing};
use crate::links::LinksMsg;
use crate::orphans::Orphans;
use crate::placement::ClusterPlacement;

pub struct MembershipArgs {
    pub context: Arc<EngineContext>,
    pub times: LeaseTimes,
    /// What the node table says of this node: its addresses and labels.
    pub advert: NodeAdvert,
    /// Told the members each heartbeat, to link to the live ones.
    pub links: ChildRef<LinksMsg>,
    /// Told the members each heartbeat, to place attempts by their loads.
    pub placement: Arc<ClusterPlacement>,
    /// What the node adds to the load it reports (memory, models).
    pub report: Arc<dyn LoadReport>,
}

/// What a node reports of its load with each renewal beyond its free task slots and
/// kinds, which the membership adds itself.
pub trait LoadReport: Send + Sync {
    fn report(&self) -> BoxFuture<'static, Map<String, Value>>;
}

#[derive(RactorMessage)]
pub enum MembershipMsg {
    Tick,
}

pub struct Membership;

pub struct MembershipState {
    context: Arc<EngineContext>,
    times: LeaseTimes,
    advert: NodeAdvert,
    links: ChildRef<LinksMsg>,
    placement: Arc<ClusterPlacement>,
    report: Arc<dyn LoadReport>,
    lease: Lease,
    orphans: Orphans,
    started: Instant,
}

impl MembershipState {
    /// Now on this node's monotonic clock.
    fn now(&self) -> Millis {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long one request to the store may take: a heartbeat.
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.times.heartbeat_ms)
    }
}

impl Actor for Membership {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        args: MembershipArgs,
    ) -> Result<MembershipState, ActorProcessingErr> {
        myself.send_interval(Duration::from_millis(args.times.heartbeat_ms), || {
            MembershipMsg::Tick
        });
        myself.cast(MembershipMsg::Tick)?;
        Ok(MembershipState {
            orphans: Orphans::new(args.times.lease_ms),
            lease: Lease::new(args.times),
            context: args.context,
            times: args.times,
            advert: args.advert,
            links: args.links,
            placement: args.placement,
            report: args.report,
            started: Instant::now(),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<MembershipMsg>,
        message: MembershipMsg,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            MembershipMsg::Tick => tick(state).await,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<MembershipMsg>,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        if let Standing::Live { incarnation, .. } = state.lease.standing() {
            let leaving = state
                .context
                .store
                .leave_cluster(&state.context.node_name, incarnation);
            match tokio::time::timeout(state.request_timeout(), leaving).await {
                Ok(Ok(())) => tracing::info!(incarnation, "left the cluster"),
                Ok(Err(error)) => tracing::warn!(%error, "could not end this node's lease"),
                Err(_) => tracing::warn!("ending this node's lease timed out"),
            }
        }
        Ok(())
    }
}

/// One heartbeat: the lease, then the runs to take over while the node may act.
async fn tick(state: &mut MembershipState) {
    tick_lease(state).await;
    let live = state.lease.is_live(state.now());
    state.context.acting.store(live, Ordering::SeqCst);
    if !live {
        return;
    }
    // Bounded like every request of this actor: a store that stopped answering must not
    // hold up the next heartbeat, which is what fences the node.
    let timeout = state.request_timeout();
    match tokio::time::timeout(timeout, take_over_orphans(state)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not look for runs to take over"),
        Err(_) => tracing::warn!("looking for runs to take over timed out"),
    }
}

async fn tick_lease(state: &mut MembershipState) {
    let now = state.now();
    match state.lease.tick(now) {
        LeaseAction::Register => register(state, now).await,
        LeaseAction::Renew { incarnation } => {
            let renewal = renew(state, incarnation).await;
            crate::metrics::renewal(&renewal);
            if state.lease.renewed(now, incarnation, renewal) == LeaseAction::Fence {
                fence(state, "the store no longer counts this node live");
            }
        }
        LeaseAction::Fence => fence(state, "the lease could not be renewed in time"),
        LeaseAction::Wait => {}
    }
}

async fn register(state: &mut MembershipState, now: Millis) {
    let context = &state.context;
    let registering =
        context
            .store
            .register_node(&context.node_name, &state.advert, state.times.lease_ms);
    match tokio::time::timeout(state.request_timeout(), registering).await {
        Ok(Ok(incarnation)) => {
            tracing::info!(node = %context.node_name, incarnation, "joined the cluster");
            state.lease.registered(now, incarnation);
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not join the cluster; trying again");
            state.lease.not_registered();
        }
        Err(_) => {
            tracing::warn!("joining the cluster timed out; trying again");
            state.lease.not_registered();
        }
    }
}

async fn renew(state: &MembershipState, incarnation: u64) -> Renewal {
    let context = &state.context;
    // Bounded: a busy model router must not hold up the renewal that keeps this node
    // a member. A report that is late is left out this once.
    let reporting = state.report.report();
    let mut load = tokio::time::timeout(state.request_timeout() / 4, reporting)
        .await
        .unwrap_or_default();
    load.insert(
        "free_slots".into(),
        json!(context.node_slots.available_permits()),
    );
    load.insert("kinds".into(), json!(state.placement.kinds()));
    let load = Value::Object(load);
    let renewing = context.store.renew_node_lease(
        &context.node_name,
        incarnation,
        state.times.lease_ms,
        &load,
    );
    match tokio::time::timeout(state.request_timeout(), renewing).await {
        Ok(Ok(true)) => Renewal::Extended,
        Ok(Ok(false)) => Renewal::Lost,
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not renew this node's lease");
            Renewal::Unanswered
        }
        Err(_) => {
            tracing::warn!("renewing this node's lease timed out");
            Renewal::Unanswered
        }
    }
}

/// Stops acting for every run at once; the next tick joins again.
fn fence(state: &MembershipState, why: &str) {
    crate::metrics::fenced();
    state.context.acting.store(false, Ordering::SeqCst);
    tracing::error!(node = %state.context.node_name, why, "fencing: letting every run go");
    if let Some(manager) = state.context.run_manager.get()
        && let Err(error) = manager.cast(RunManagerMsg::LetGoAll)
    {
        tracing::error!(%error, "could not tell the run manager to let its runs go");
    }
}

/// Hands the run manager the runs due for take-over: its own it does not hold, and
/// those of nodes whose lease lapsed.
async fn take_over_orphans(state: &mut MembershipState) -> Result<(), String> {
    let context = state.context.clone();
    let manager = context
        .run_manager
        .get()
        .ok_or("the run manager is restarting")?;
    let mut members = context
        .store
        .nodes()
        .await
        .map_err(|error| error.to_string())?;
    declare_the_dead(state, &mut members).await;
    let live: BTreeSet<String> = members
        .iter()
        .filter(|node| node.live)
        .map(|node| node.name.clone())
        .collect();
    state.placement.update(members.clone());
    tell_links(state, members);
    let runs = context
        .store
        .unfinished_runs()
        .await
        .map_err(|error| error.to_string())?;
    let held: HashSet<_> = ractor::call_t!(manager, RunManagerMsg::Held, state.times.heartbeat_ms)
        .map_err(|error| error.to_string())?
        .into_iter()
        .collect();
    let now = state.now();
    let due = state
        .orphans
        .due(now, &context.node_name, &live, &runs, &held);
    if !due.is_empty() {
        tracing::info!(runs = due.len(), "taking runs over");
        manager
            .cast(RunManagerMsg::Adopt(due))
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Declares dead the members whose link dropped and who stopped renewing (`downing`),
/// and counts them dead in `members` from now.
async fn declare_the_dead(state: &MembershipState, members: &mut [NodeRecord]) {
    let Some(links) = state.links.get() else {
        return;
    };
    let Ok(lost) = ractor::call_t!(links, LinksMsg::Lost, state.times.heartbeat_ms / 4) else {
        tracing::debug!("the links did not say which links were lost");
        return;
    };
    let silent_ms = 2 * state.times.heartbeat_ms;
    let node = &state.context.node_name;
    for (name, incarnation) in downing::due(node, members, &lost, silent_ms) {
        match state
            .context
            .store
            .declare_dead(&name, incarnation, silent_ms)
            .await
        {
            Ok(true) => {
                tracing::warn!(node = %name, incarnation, "declared dead: its link dropped and it stopped renewing its lease");
                if let Some(member) = members.iter_mut().find(|member| member.name == name) {
                    member.live = false;
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, node = %name, "could not declare a node dead"),
        }
    }
}

/// Hands the links the members, to dial the live and drop the lapsed.
fn tell_links(state: &MembershipState, members: Vec<NodeRecord>) {
    if let Some(links) = state.links.get()
        && links.cast(LinksMsg::Members(members)).is_err()
    {
        tracing::debug!("the links are restarting");
    }
}
