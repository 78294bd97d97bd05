//! The cluster under a nemesis: three `troupe up` processes on a real SurrealDB server
//! take run submissions while nodes are killed (SIGKILL, then started again), frozen
//! (SIGSTOP, then SIGCONT) at random for a bounded time. Then a checker reads the
//! recorded history: every run whose start was acknowledged ends `completed`, no task
//! completes twice (an outcome from a superseded epoch would be a second one), each log
//! has no gap, and the epochs read along the way only grew.
//!
//! The seed is printed: `NEMESIS_SEED=<seed>` replays a failing schedule.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const NODES: usize = 3;
const NEMESIS_FOR: Duration = Duration::from_secs(25);

const WORKFLOW: &str = r#"
name: Chain
tasks:
  - { id: a, name: A, agent: shell, inputs: { command: "sleep 0.3" } }
  - { id: b, name: B, agent: shell, depends_on: [a], inputs: { command: "sleep 0.3" } }
  - { id: c, name: C, agent: shell, depends_on: [b], inputs: { command: "sleep 0.3" } }
"#;

/// A small deterministic generator (xorshift64*): the schedule follows from the seed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What is wrong with a node, and when it ends.
enum Trouble {
    Fine,
    Dead { until: Instant },
    Frozen { until: Instant },
}

struct Node {
    name: String,
    address: String,
    server: Option<Server>,
    trouble: Trouble,
    starts: usize,
}

struct Cluster<'a> {
    dir: &'a std::path::Path,
    surreal: &'a SurrealServer,
    nodes: Vec<Node>,
}

impl Cluster<'_> {
    fn start(&self, node: &mut Node) {
        node.starts += 1;
        let log = self.dir.join(format!("{}-{}", node.name, node.starts));
        node.server = Some(start_cluster_node(
            self.surreal,
            &self.surreal.address,
            &node.name,
            LeaseLength::Short,
            &log,
            &node.address,
        ));
    }

    /// Ends troubles that are due; starts one on a fine node now and then, keeping at
    /// least one node fine.
    fn nemesis(&mut self, dice: &mut Dice, now: Instant, active: bool) {
        for index in 0..self.nodes.len() {
            let due = match self.nodes[index].trouble {
                Trouble::Dead { until } | Trouble::Frozen { until } => until <= now || !active,
                Trouble::Fine => false,
            };
            if due {
                self.heal(index);
            }
        }
        let troubled = self
            .nodes
            .iter()
            .filter(|node| !matches!(node.trouble, Trouble::Fine))
            .count();
        if !active || troubled + 1 >= self.nodes.len() || dice.below(8) != 0 {
            return;
        }
        let index = dice.below(self.nodes.len() as u64) as usize;
        let lasting = Duration::from_millis(500 + dice.below(3_000));
        let node = &mut self.nodes[index];
        if !matches!(node.trouble, Trouble::Fine) {
            return;
        }
        let server = node.server.as_ref().expect("a fine node runs");
        if dice.below(2) == 0 {
            eprintln!("nemesis: kill {} for {lasting:?}", node.name);
            node.server.take().expect("running").kill();
            node.trouble = Trouble::Dead {
                until: now + lasting,
            };
        } else {
            eprintln!("nemesis: freeze {} for {lasting:?}", node.name);
            server.signal("STOP");
            node.trouble = Trouble::Frozen {
                until: now + lasting,
            };
        }
    }

    fn heal(&mut self, index: usize) {
        let trouble = std::mem::replace(&mut self.nodes[index].trouble, Trouble::Fine);
        match trouble {
            Trouble::Dead { .. } => {
                let mut node = std::mem::replace(
                    &mut self.nodes[index],
                    Node {
                        name: String::new(),
                        address: String::new(),
                        server: None,
                        trouble: Trouble::Fine,
                        starts: 0,
                    },
                );
                self.start(&mut node);
                self.nodes[index] = node;
            }
            Trouble::Frozen { .. } => self.nodes[index]
                .server
                .as_ref()
                .expect("frozen, not dead")
                .signal("CONT"),
            Trouble::Fine => {}
        }
    }
}

/// Starts a run on `node`; its id when the node acknowledged it (201).
fn submit(node: &Node) -> Option<String> {
    let server = node.server.as_ref()?;
    let answer = http1::request_within(
        "POST",
        &server.url("/api/v1/workflows/chain/runs"),
        Some(("application/json", r#"{"started_by": "ada"}"#)),
        &[],
        Duration::from_secs(2),
    )
    .ok()?;
    if answer.status != 201 {
        return None;
    }
    let started: Value = serde_json::from_str(&answer.body).ok()?;
    started["run_id"].as_str().map(String::from)
}

/// The epoch of every run as `node` reads it now, when it answers in time.
fn epochs(node: &Node) -> Vec<(String, u64)> {
    let Some(server) = node.server.as_ref() else {
        return Vec::new();
    };
    let Ok(answer) = http1::request_within(
        "GET",
        &server.url("/api/v1/runs?limit=1000"),
        None,
        &[],
        Duration::from_secs(2),
    ) else {
        return Vec::new();
    };
    let runs: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    runs.as_array()
        .into_iter()
        .flatten()
        .filter_map(|run| Some((run["run_id"].as_str()?.to_string(), run["epoch"].as_u64()?)))
        .collect()
}

/// Records each run's epoch as read now, asserting none went back.
fn record_epochs(seen: &mut std::collections::HashMap<String, u64>, now: Vec<(String, u64)>) {
    for (run_id, epoch) in now {
        let before = seen.insert(run_id.clone(), epoch).unwrap_or(0);
        assert!(
            epoch >= before,
            "{run_id}: epoch {epoch} read after {before}"
        );
    }
}

/// What the checker asserts of one acknowledged run, from a healthy node's answers.
fn check_run(server: &Server, run_id: &str) -> u64 {
    let run = wait_for_run(server, run_id, 120, |run| run["status"] != "running");
    assert_eq!(run["status"], "completed", "{run:#}");
    let events = get_json(server, &format!("/api/v1/runs/{run_id}/events"));
    let events = events.as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "{run_id}: a gap"
    );
    for task in ["a", "b", "c"] {
        let succeeded = events
            .iter()
            .filter(|e| e["event"]["kind"] == "attempt_succeeded" && e["event"]["task"] == task)
            .count();
        assert_eq!(succeeded, 1, "{run_id}: {task} completed {succeeded} times");
    }
    let epoch = run["epoch"].as_u64().unwrap();
    assert!(epoch >= 1, "{run:#}");
    epoch
}

#[test]
fn runs_survive_nodes_killed_and_frozen_at_random() {
    let seed = std::env::var("NEMESIS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            u64::from(nanos) | 1
        });
    eprintln!("NEMESIS_SEED={seed}");
    let mut dice = Dice(seed);
    let dir = tempfile::tempdir().unwrap();
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let mut cluster = Cluster {
        dir: dir.path(),
        surreal: &surreal,
        nodes: Vec::new(),
    };
    for n in 0..NODES {
        let mut node = Node {
            name: format!("n{n}"),
            address: free_address(),
            server: None,
            trouble: Trouble::Fine,
            starts: 0,
        };
        cluster.start(&mut node);
        cluster.nodes.push(node);
    }
    let first = cluster.nodes[0].server.as_ref().unwrap();
    allow_kinds(first, "default", &["shell"]);
    let (status, created) = post(first, "/api/v1/workflows", "application/yaml", WORKFLOW);
    assert_eq!(status, 201, "{created}");

    let mut acknowledged = Vec::new();
    let mut seen_epochs = std::collections::HashMap::new();
    let started = Instant::now();
    while started.elapsed() < NEMESIS_FOR {
        cluster.nemesis(&mut dice, Instant::now(), true);
        let node = &cluster.nodes[dice.below(NODES as u64) as usize];
        if matches!(node.trouble, Trouble::Fine)
            && let Some(run_id) = submit(node)
        {
            acknowledged.push(run_id);
        }
        if matches!(node.trouble, Trouble::Fine) {
            record_epochs(&mut seen_epochs, epochs(node));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    cluster.nemesis(&mut dice, Instant::now(), false);
    let healthy = cluster.nodes[0].server.as_ref().unwrap();
    assert!(
        acknowledged.len() >= 20,
        "only {} runs started",
        acknowledged.len()
    );
    let moved: u64 = acknowledged
        .iter()
        .map(|run_id| check_run(healthy, run_id) - 1)
        .sum();
    record_epochs(&mut seen_epochs, epochs(&cluster.nodes[0]));
    eprintln!(
        "nemesis: {} acknowledged runs all completed once; {moved} take-overs",
        acknowledged.len()
    );
}
