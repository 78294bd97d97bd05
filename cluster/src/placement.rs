//! Placement across the cluster: an attempt goes to a node with every label its task
//! names that runs its kind, chosen by the power of two choices (two candidates at
//! random, the one with more free slots), over the loads the node table holds, less
//! what this node placed on each since it last read them. Here counts as a candidate
//! like any other, with its own free slots read now. The gateway of the chosen node
//! confirms: beyond its pool's capacity it refuses, and the attempt is retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::ActorRef;
use rand::Rng;
use troupe_agents::{AgentError, CancellationToken};
use troupe_engine::agent_pool::idempotency_key;
use troupe_engine::placement::{Placement, RemoteAttempt, RemoteOutcome, missing_labels};
use troupe_store::NodeRecord;

use crate::models::ModelLoad;
use crate::wire::{GatewayMsg, Wire, gateway_group};
use troupe_engine::EngineError;
use troupe_engine::command::RunCommand;

/// How long a call may wait beyond the attempt's own timeout (queueing, the answer).
const CALL_MARGIN: Duration = Duration::from_secs(30);
/// The longest a call to an attempt with no timeout waits (its link dropping ends it
/// sooner when its node dies).
const UNTIMED_CALL: Duration = Duration::from_secs(24 * 60 * 60);

pub struct ClusterPlacement {
    node: String,
    labels: Vec<String>,
    /// The kinds this node runs.
    kinds: Vec<String>,
    members: RwLock<Vec<NodeRecord>>,
    /// Attempts placed on each node (this one too) since `members` was read.
    placed: Mutex<HashMap<String, usize>>,
}

/// One node that could take an attempt, with its free slots.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    node: String,
    free: usize,
}

impl ClusterPlacement {
    pub fn new(node: &str, labels: &[String], kinds: Vec<String>) -> Arc<ClusterPlacement> {
        Arc::new(ClusterPlacement {
            node: node.into(),
            labels: labels.to_vec(),
            kinds,
            members: RwLock::new(Vec::new()),
            placed: Mutex::new(HashMap::new()),
        })
    }

    /// The kinds this node runs, for its load in the node table.
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// The members as the store lists them now (from the membership actor).
    pub fn update(&self, members: Vec<NodeRecord>) {
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = members;
        self.placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The live peers' model loads, of those linked to this node only when `linked`.
    pub fn peer_models(&self, linked: bool) -> Vec<(String, ModelLoad)> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members
            .iter()
            .filter(|member| member.live && member.name != self.node)
            .filter(|member| !linked || gateway(&member.name).is_some())
            .map(|member| (member.name.clone(), ModelLoad::of(&member.load)))
            .collect()
    }

    /// The members as last read from the node table.
    pub fn members(&self) -> Vec<NodeRecord> {
        self.members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where a live member's API listens (`http://host:port`).
    pub fn api_address(&self, node: &str) -> Option<String> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members
            .iter()
            .find(|member| member.live && member.name == node)
            .map(|member| member.api_address.clone())
    }

    fn candidates(&self, kind: &str, runs_on: &[String], local_free: usize) -> Vec<Candidate> {
        let mut candidates = Vec::new();
        let placed = self.placed.lock().unwrap_or_else(PoisonError::into_inner);
        let since = |node: &str| placed.get(node).copied().unwrap_or(0);
        if missing_labels(&self.labels, runs_on).is_none() && self.kinds.iter().any(|k| k == kind) {
            // Attempts placed here in this pass have not taken their slots yet.
            candidates.push(Candidate {
                node: self.node.clone(),
                free: local_free.saturating_sub(since(&self.node)),
            });
        }
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        for member in members.iter().filter(|member| {
            member.live
                && member.name != self.node
                && missing_labels(&member.labels, runs_on).is_none()
                && runs_kind(member, kind)
                && gateway(&member.name).is_some()
        }) {
            let advertised = member.load["free_slots"].as_u64().unwrap_or(0) as usize;
            candidates.push(Candidate {
                node: member.name.clone(),
                free: advertised.saturating_sub(since(&member.name)),
            });
        }
        candidates
    }
}

fn runs_kind(member: &NodeRecord, kind: &str) -> bool {
    member.load["kinds"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|k| k == kind))
}

/// Two at random, the freer of them; a tie goes to the first drawn.
fn two_choices<'a>(candidates: &'a [Candidate], rng: &mut impl Rng) -> Option<&'a Candidate> {
    let first = candidates.get(rng.random_range(0..candidates.len().max(1)))?;
    let second = &candidates[rng.random_range(0..candidates.len())];
    Some(if second.free > first.free {
        second
    } else {
        first
    })
}

/// `node`'s gateway, if this node is linked to it.
pub(crate) fn gateway(node: &str) -> Option<ActorRef<GatewayMsg>> {
    ractor::pg::get_members(&gateway_group(node))
        .into_iter()
        .next()
        .map(ActorRef::from)
}

impl Placement for ClusterPlacement {
    fn choose(&self, kind: &str, runs_on: &[String], local_free: usize) -> Result<String, String> {
        let candidates = self.candidates(kind, runs_on, local_free);
        let Some(chosen) = two_choices(&candidates, &mut rand::rng()) else {
            let labels = if runs_on.is_empty() {
                String::new()
            } else {
                format!(" with the labels [{}]", runs_on.join(", "))
            };
            return Err(format!("no live node runs `{kind}` agents{labels} now"));
        };
        *self
            .placed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(chosen.node.clone())
            .or_default() += 1;
        Ok(chosen.node.clone())
    }

    fn reachable(&self, node: &str) -> bool {
        let live = self
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|member| member.name == node && member.live);
        live && gateway(node).is_some()
    }

    fn forward(
        &self,
        node: String,
        command: RunCommand,
    ) -> BoxFuture<'static, Result<(), EngineError>> {
        Box::pin(forward_command(node, command))
    }

    fn run_on(
        &self,
        node: String,
        attempt: RemoteAttempt,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, RemoteOutcome> {
        Box::pin(call_gateway(node, attempt, cancel))
    }
}

/// How long the owner has to answer a command handed on to it.
const COMMAND_TIMEOUT_MS: u64 = 10_000;

async fn forward_command(node: String, command: RunCommand) -> Result<(), EngineError> {
    let run = command.run().clone();
    let elsewhere = || EngineError::RunElsewhere {
        run: run.clone(),
        owner: node.clone(),
    };
    let gateway = gateway(&node).ok_or_else(elsewhere)?;
    let answered = ractor::call_t!(
        gateway,
        GatewayMsg::Command,
        COMMAND_TIMEOUT_MS,
        Wire::new(command)
    );
    match answered {
        Ok(Wire(Ok(answer))) => answer.map_err(|refusal| refusal.into_error(&run, &node)),
        Ok(Wire(Err(why))) => Err(EngineError::Actor(why)),
        Err(error) => {
            tracing::warn!(%node, %error, "the owner did not answer a command handed to it");
            Err(elsewhere())
        }
    }
}

async fn call_gateway(
    node: String,
    attempt: RemoteAttempt,
    cancel: CancellationToken,
) -> RemoteOutcome {
    let Some(gateway) = gateway(&node) else {
        let error = AgentError::Failed(format!("node `{node}` cannot be reached"));
        return (node, Err(error));
    };
    let key = idempotency_key(&attempt.run_id, &attempt.task, attempt.attempt);
    let limit = attempt
        .timeout_secs
        .map_or(UNTIMED_CALL, |secs| Duration::from_secs(secs) + CALL_MARGIN);
    let call = async {
        ractor::call_t!(
            gateway,
            GatewayMsg::RunAttempt,
            u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            Wire::new(Box::new(attempt))
        )
    };
    tokio::select! {
        answered = call => match answered {
            Ok(Wire(Ok(reply))) => (reply.node, reply.outcome.into_result()),
            Ok(Wire(Err(why))) => (node, Err(AgentError::Failed(why))),
            Err(error) => {
                let why = format!("node `{node}` did not answer for the attempt: {error}");
                (node, Err(AgentError::Failed(why)))
            }
        },
        () = cancel.cancelled() => {
            if gateway.cast(GatewayMsg::CancelAttempt(Wire::new(key))).is_err() {
                tracing::debug!(%node, "could not cancel an attempt on a node that left");
            }
            (node, Err(AgentError::Cancelled))
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn candidate(node: &str, free: usize) -> Candidate {
        Candidate {
            node: node.into(),
            free,
        }
    }

    #[test]
    fn two_choices_never_picks_the_fuller_of_the_two_it_drew() {
        let candidates = [candidate("a", 0), candidate("b", 4), candidate("c", 8)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..3_000 {
            let chosen = two_choices(&candidates, &mut rng).unwrap();
            *counts.entry(chosen.node.clone()).or_default() += 1;
        }
        // a wins only when drawn twice (1/9), c whenever drawn (5/9).
        let share = |node: &str| counts.get(node).copied().unwrap_or(0) as f64 / 3_000.0;
        assert!((share("a") - 1.0 / 9.0).abs() < 0.03, "{counts:?}");
        assert!((share("c") - 5.0 / 9.0).abs() < 0.03, "{counts:?}");
        assert_eq!(two_choices(&[], &mut rng), None);
    }

    #[test]
    fn a_node_alone_in_its_table_places_here_when_it_can_and_says_why_when_not() {
        let placement = ClusterPlacement::new("a", &["gpu".into()], vec!["shell".into()]);
        assert_eq!(
            placement.choose("shell", &["gpu".into()], 2),
            Ok("a".into())
        );
        let refused = placement.choose("shell", &["arm".into()], 2).unwrap_err();
        assert_eq!(
            refused,
            "no live node runs `shell` agents with the labels [arm] now"
        );
        let refused = placement.choose("http", &[], 2).unwrap_err();
        assert_eq!(refused, "no live node runs `http` agents now");
        assert!(!placement.reachable("b"), "b is not listed");
    }
}
