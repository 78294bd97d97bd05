//! The bookkeeping every supervising actor of the node shares (the root supervisor, the
//! run manager over its runs, the inference router over its workers): which running
//! actor is which child, each child's restart log, and what a supervision event means
//! for it. The supervisor keeps its own way of starting a child; this decides when.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use ractor::{ActorCell, ActorId, SupervisionEvent};

use crate::restart_log::{RestartLog, RestartPolicy, Verdict};

/// Restarts made by supervisors, by supervisor (`root`, `run_manager`,
/// `inference_router`): a storm shows as a rate.
pub const RESTARTS: &str = "troupe_actor_restarts_total";
/// Children a supervisor gave up on after more failures than its policy allows.
pub const GIVE_UPS: &str = "troupe_actor_give_ups_total";

/// The help text of the supervisors' metrics (once, at start).
pub fn describe() {
    metrics::describe_counter!(
        RESTARTS,
        "Supervised actors restarted after a failure, by supervisor."
    );
    metrics::describe_counter!(
        GIVE_UPS,
        "Supervised actors not restarted: they failed more often than the restart policy allows."
    );
}

/// What a supervision event means for the supervisor's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEvent<K> {
    /// The child failed within its restart intensity: start it again.
    Restart { key: K, error: String },
    /// The child failed more often than the policy allows: escalate, or end what it was
    /// doing. Its restart log is kept, so starting it again still counts.
    GaveUp { key: K, reason: String },
    /// The child stopped cleanly.
    Stopped { key: K },
    /// Not one of ours, or nothing to do.
    Ignored,
}

pub struct Children<K> {
    /// Which supervisor this is, for the metrics: a fixed name, not an actor id.
    supervisor: &'static str,
    policy: RestartPolicy,
    by_actor: HashMap<ActorId, K>,
    logs: HashMap<K, RestartLog>,
    restarts: u64,
}

impl<K: Clone + Eq + Hash + Debug> Children<K> {
    pub fn new(supervisor: &'static str, policy: RestartPolicy) -> Self {
        Self {
            supervisor,
            policy,
            by_actor: HashMap::new(),
            logs: HashMap::new(),
            restarts: 0,
        }
    }

    /// `cell` is now child `key` (first start or a restart).
    pub fn started(&mut self, key: K, cell: &ActorCell) {
        self.by_actor.insert(cell.get_id(), key);
    }

    /// Forgets `key` and its restart log (the run ended; the child is not coming back).
    pub fn forget(&mut self, key: &K) {
        self.by_actor.retain(|_, child| child != key);
        self.logs.remove(key);
    }

    /// Restarts made so far.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Applies the restart rule to `event`.
    pub fn on_event(&mut self, event: &SupervisionEvent) -> ChildEvent<K> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(key) = self.by_actor.remove(&cell.get_id()) else {
                    return ChildEvent::Ignored;
                };
                self.on_failure(key, error.to_string())
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                match self.by_actor.remove(&cell.get_id()) {
                    Some(key) => ChildEvent::Stopped { key },
                    None => ChildEvent::Ignored,
                }
            }
            _ => ChildEvent::Ignored,
        }
    }

    fn on_failure(&mut self, key: K, error: String) -> ChildEvent<K> {
        let verdict = self
            .logs
            .entry(key.clone())
            .or_default()
            .record_failure(Instant::now(), self.policy);
        tracing::warn!(child = ?key, %error, ?verdict, "supervised actor failed");
        match verdict {
            Verdict::Restart => {
                self.restarts += 1;
                metrics::counter!(RESTARTS, "supervisor" => self.supervisor).increment(1);
                ChildEvent::Restart { key, error }
            }
            Verdict::Escalate => {
                metrics::counter!(GIVE_UPS, "supervisor" => self.supervisor).increment(1);
                self.gave_up(key, error)
            }
        }
    }

    fn gave_up(&self, key: K, error: String) -> ChildEvent<K> {
        ChildEvent::GaveUp {
            reason: format!(
                "failed more than {} times in {:?}; last error: {error}",
                self.policy.max_restarts, self.policy.period
            ),
            key,
        }
    }
}
