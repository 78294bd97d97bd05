//! The lease and take-over rules against a fake store with the real store's semantics
//! (leases by the store's clock, compare-and-set take-overs, fenced appends), under
//! random crashes, pauses and partitions from the store, with clocks that disagree.
//!
//! While faults happen: a node that believes it is live holds a lease the store also
//! counts live, and no two nodes that believe they are live hold one run. Once they
//! stop: every run ends up held, in its current epoch, by exactly one live node.

use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use troupe_store::{RunId, RunOwnership};

use crate::lease::{Lease, LeaseAction, LeaseTimes, Millis, Renewal};
use crate::orphans::Orphans;

const TIMES: LeaseTimes = LeaseTimes {
    heartbeat_ms: 1_000,
    lease_ms: 5_000,
};
const RUNS: usize = 6;

/// The store: one clock (the simulation's), node rows, run rows, accepted appends.
struct FakeStore {
    nodes: HashMap<String, (u64, Millis)>,
    runs: Vec<RunOwnership>,
}

impl FakeStore {
    fn register(&mut self, name: &str, now: Millis) -> u64 {
        let row = self.nodes.entry(name.into()).or_insert((0, 0));
        *row = (row.0 + 1, now + TIMES.lease_ms);
        row.0
    }

    fn renew(&mut self, name: &str, incarnation: u64, now: Millis) -> Renewal {
        match self.nodes.get_mut(name) {
            Some(row) if row.0 == incarnation && row.1 > now => {
                row.1 = now + TIMES.lease_ms;
                Renewal::Extended
            }
            _ => Renewal::Lost,
        }
    }

    fn lease_valid(&self, name: &str, incarnation: u64, now: Millis) -> bool {
        self.nodes
            .get(name)
            .is_some_and(|row| row.0 == incarnation && row.1 > now)
    }

    fn live(&self, now: Millis) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|(_, row)| row.1 > now)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn take_over(&mut self, run: &RunId, seen: u64, owner: &str) -> Option<u64> {
        let row = self.runs.iter_mut().find(|row| row.run_id == *run)?;
        (row.epoch == seen).then(|| {
            row.epoch += 1;
            row.owner = owner.into();
            row.epoch
        })
    }

    fn epoch(&self, run: &RunId) -> u64 {
        self.runs
            .iter()
            .find(|row| row.run_id == *run)
            .map_or(0, |row| row.epoch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Crash,
    Pause,
    Partition,
}

struct SimNode {
    name: String,
    /// Its clock minus the store's.
    offset: Millis,
    lease: Lease,
    orphans: Orphans,
    held: HashMap<RunId, u64>,
    down_until: Millis,
    paused_until: Millis,
    cut_off_until: Millis,
}

impl SimNode {
    fn new(name: String, offset: Millis) -> Self {
        Self {
            name,
            offset,
            lease: Lease::new(TIMES),
            orphans: Orphans::new(TIMES.lease_ms),
            held: HashMap::new(),
            down_until: 0,
            paused_until: 0,
            cut_off_until: 0,
        }
    }

    fn running(&self, now: Millis) -> bool {
        now >= self.down_until && now >= self.paused_until
    }

    fn believes_live(&self, now: Millis) -> bool {
        self.running(now) && self.lease.is_live(now + self.offset)
    }

    fn suffer(&mut self, fault: Fault, now: Millis, length: Millis) {
        match fault {
            Fault::Crash => {
                let (name, offset) = (self.name.clone(), self.offset);
                *self = SimNode::new(name, offset);
                self.down_until = now + length;
            }
            Fault::Pause => self.paused_until = now + length,
            Fault::Partition => self.cut_off_until = now + length,
        }
    }

    /// One heartbeat: the lease first, then take-overs, then an append to every run it
    /// holds (what its run actors do, lease or not: the store's fence stops them).
    fn heartbeat(&mut self, store: &mut FakeStore, now: Millis) {
        let local = now + self.offset;
        let reachable = now >= self.cut_off_until;
        match self.lease.tick(local) {
            LeaseAction::Register if reachable => {
                let incarnation = store.register(&self.name, now);
                self.lease.registered(local, incarnation);
            }
            LeaseAction::Register => self.lease.not_registered(),
            LeaseAction::Renew { incarnation } => {
                let renewal = match reachable {
                    true => store.renew(&self.name, incarnation, now),
                    false => Renewal::Unanswered,
                };
                if self.lease.renewed(local, incarnation, renewal) == LeaseAction::Fence {
                    self.held.clear();
                }
            }
            LeaseAction::Fence => self.held.clear(),
            LeaseAction::Wait => {}
        }
        if reachable && self.lease.is_live(local) {
            self.take_over(store, now, local);
        }
        if reachable {
            self.held.retain(|run, epoch| store.epoch(run) == *epoch);
        }
    }

    fn take_over(&mut self, store: &mut FakeStore, now: Millis, local: Millis) {
        let live = store.live(now);
        let held: HashSet<RunId> = self.held.keys().cloned().collect();
        let runs = store.runs.clone();
        for run in self.orphans.due(local, &self.name, &live, &runs, &held) {
            if let Some(epoch) = store.take_over(&run.run_id, run.epoch, &self.name) {
                self.held.insert(run.run_id, epoch);
            }
        }
    }
}

fn check_safety(nodes: &[SimNode], store: &FakeStore, now: Millis) -> Result<(), TestCaseError> {
    let mut holders: HashMap<&RunId, &str> = HashMap::new();
    for node in nodes.iter().filter(|node| node.believes_live(now)) {
        let incarnation = match node.lease.standing() {
            crate::lease::Standing::Live { incarnation, .. } => incarnation,
            crate::lease::Standing::Joining => unreachable!("live nodes stand live"),
        };
        prop_assert!(
            store.lease_valid(&node.name, incarnation, now),
            "{} acts at {now} on a lease the store let lapse",
            node.name
        );
        for run in node.held.keys() {
            if let Some(other) = holders.insert(run, &node.name) {
                prop_assert!(false, "{run} held by {other} and {} at {now}", node.name);
            }
        }
    }
    Ok(())
}

fn check_settled(nodes: &[SimNode], store: &FakeStore, now: Millis) -> Result<(), TestCaseError> {
    for run in &store.runs {
        let holders: Vec<&str> = nodes
            .iter()
            .filter(|node| {
                node.believes_live(now) && node.held.get(&run.run_id) == Some(&run.epoch)
            })
            .map(|node| node.name.as_str())
            .collect();
        prop_assert_eq!(holders.len(), 1, "{:?} at {}: {:?}", run, now, holders);
    }
    Ok(())
}

fn fault() -> impl Strategy<Value = (u64, usize, Fault, Millis)> {
    (
        0..40_000u64,
        0..3usize,
        prop_oneof![
            Just(Fault::Crash),
            Just(Fault::Pause),
            Just(Fault::Partition)
        ],
        100..12_000u64,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn leases_and_take_overs_keep_one_live_holder_per_run(
        offsets in prop::collection::vec(0..100_000u64, 3),
        phases in prop::collection::vec(0..1_000u64, 3),
        faults in prop::collection::vec(fault(), 0..12),
    ) {
        let mut store = FakeStore {
            nodes: HashMap::new(),
            runs: (0..RUNS)
                .map(|n| RunOwnership { run_id: format!("r{n}").into(), owner: String::new(), epoch: 0 })
                .collect(),
        };
        let mut nodes: Vec<SimNode> = offsets
            .iter()
            .enumerate()
            .map(|(n, offset)| SimNode::new(format!("n{n}"), *offset))
            .collect();
        let mut faults = faults;
        faults.sort_by_key(|fault| fault.0);
        let faults_end = faults.iter().map(|fault| fault.0 + fault.3).max().unwrap_or(0);
        // Long enough after the last fault for a lease to lapse, the grace to pass and
        // a few heartbeats more.
        let end = faults_end + TIMES.lease_ms * 3 + 5 * TIMES.heartbeat_ms;
        let mut pending = faults.into_iter().peekable();
        let mut now = 0;
        while now <= end {
            while let Some((at, node, kind, length)) = pending.next_if(|fault| fault.0 <= now) {
                let _ = at;
                nodes[node].suffer(kind, now, length);
            }
            for (node, phase) in nodes.iter_mut().zip(&phases) {
                if node.running(now) && (now + phase) % TIMES.heartbeat_ms < 100 {
                    node.heartbeat(&mut store, now);
                }
            }
            check_safety(&nodes, &store, now)?;
            now += 100;
        }
        check_settled(&nodes, &store, end)?;
    }
}
