//! Which unfinished runs a node takes over: its own that it does not hold (after a
//! restart or after fencing itself), and those whose owner is no longer a live member.
//!
//! Every live node sees the same orphans; to spread them, and to keep the nodes from
//! all racing for each one, each orphan has one preferred taker among the live members
//! (rendezvous hashing of the run id over their names), which takes it at once. The
//! others wait `grace_ms` after first seeing it orphaned (the preferred node may be dead
//! too, with a lease not yet lapsed) and then try as well. Whoever tries, the take-over
//! is a compare-and-set on the epoch in the store: exactly one wins.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hasher;

use troupe_store::{RunId, RunOwnership};

use crate::lease::Millis;

#[derive(Debug, Clone)]
pub struct Orphans {
    grace_ms: Millis,
    /// When this node first saw each orphan it is not the preferred taker of.
    first_seen: HashMap<RunId, Millis>,
}

impl Orphans {
    pub fn new(grace_ms: Millis) -> Self {
        Self {
            grace_ms,
            first_seen: HashMap::new(),
        }
    }

    /// The runs of `runs` that `me` should try to take over at `now`, given the live
    /// members (by the store's clock, `me` among them) and the runs `me` holds.
    pub fn due(
        &mut self,
        now: Millis,
        me: &str,
        live: &BTreeSet<String>,
        runs: &[RunOwnership],
        held: &HashSet<RunId>,
    ) -> Vec<RunOwnership> {
        let mut due = Vec::new();
        let mut orphaned = HashSet::new();
        for run in runs.iter().filter(|run| !held.contains(&run.run_id)) {
            if run.owner == me {
                due.push(run.clone());
                continue;
            }
            if live.contains(&run.owner) {
                continue;
            }
            orphaned.insert(run.run_id.clone());
            if preferred_taker(&run.run_id, live) == Some(me) {
                due.push(run.clone());
                continue;
            }
            let seen = *self.first_seen.entry(run.run_id.clone()).or_insert(now);
            if now.saturating_sub(seen) >= self.grace_ms {
                due.push(run.clone());
            }
        }
        self.first_seen.retain(|run, _| orphaned.contains(run));
        due
    }
}

/// The live member that ranks highest for `run`: the same answer on every node that
/// sees the same members, and most runs keep their taker when a member joins or leaves.
pub fn preferred_taker<'a>(run: &RunId, live: &'a BTreeSet<String>) -> Option<&'a str> {
    live.iter()
        .max_by_key(|member| fnv1a(run.as_str(), member))
        .map(String::as_str)
}

/// FNV-1a over `run`, a separator and `member`: a hash fixed by its definition, so that
/// nodes of different builds rank alike (the standard library's may change).
fn fnv1a(run: &str, member: &str) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    for part in [run.as_bytes(), &[0], member.as_bytes()] {
        hasher.write(part);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, owner: &str) -> RunOwnership {
        RunOwnership {
            run_id: id.into(),
            owner: owner.into(),
            epoch: 1,
        }
    }

    fn members(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_node_takes_its_own_runs_it_does_not_hold_and_leaves_live_members_theirs() {
        let mut orphans = Orphans::new(5_000);
        let live = members(&["a", "b"]);
        let runs = [run("r1", "a"), run("r2", "b"), run("r3", "a")];
        let held = HashSet::from(["r3".into()]);
        let due = orphans.due(0, "a", &live, &runs, &held);
        assert_eq!(due, [run("r1", "a")]);
    }

    #[test]
    fn a_dead_member_s_runs_go_to_their_preferred_taker_at_once_and_to_others_after_the_grace() {
        let live = members(&["a", "b", "c"]);
        let runs: Vec<RunOwnership> = (0..40).map(|n| run(&format!("r{n}"), "dead")).collect();
        let none = HashSet::new();
        let mut taken_at_once = 0;
        for me in ["a", "b", "c"] {
            let mut orphans = Orphans::new(5_000);
            let now = orphans.due(0, me, &live, &runs, &none);
            for taken in &now {
                assert_eq!(preferred_taker(&taken.run_id, &live), Some(me));
            }
            taken_at_once += now.len();
            assert!(!now.is_empty(), "{me} is preferred for none of 40 runs");
            assert_eq!(orphans.due(4_999, me, &live, &runs, &none).len(), now.len());
            assert_eq!(
                orphans.due(5_000, me, &live, &runs, &none).len(),
                runs.len()
            );
        }
        assert_eq!(
            taken_at_once,
            runs.len(),
            "each run has one preferred taker"
        );
    }

    #[test]
    fn the_grace_starts_again_for_a_run_that_was_owned_again_in_between() {
        let live = members(&["a", "b"]);
        let mut orphans = Orphans::new(5_000);
        let orphan = run("r1", "dead");
        let me = if preferred_taker(&orphan.run_id, &live) == Some("a") {
            "b"
        } else {
            "a"
        };
        let none = HashSet::new();
        assert!(
            orphans
                .due(0, me, &live, std::slice::from_ref(&orphan), &none)
                .is_empty()
        );
        let owned = run("r1", "a");
        orphans.due(3_000, me, &live, &[owned], &none);
        assert!(orphans.due(6_000, me, &live, &[orphan], &none).is_empty());
    }
}
