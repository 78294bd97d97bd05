//! Failover, timed: two `troupe up` processes (this binary) on a shared SurrealDB
//! server. Each trial starts a run that waits at an approval gate on one node, kills
//! that node (SIGKILL: no shutdown code runs, as when a machine dies), and times until
//! the other node owns the run; then starts the killed node again, and the next trial
//! (once the two are linked again) swaps their roles. What it measures is how soon a
//! death is seen: a survivor whose link to the owner closed declares it dead once it
//! has missed its renewals (two heartbeats, `cluster.heartbeat_ms`), and takes its run
//! over at its next heartbeat; a death the links did not see waits for the lease.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::client::Client;

/// A run that waits until someone decides: it stays put while its owner is killed.
const WAITING_WORKFLOW: &str = "name: Failover benchmark\ntasks:\n  - id: wait\n    name: Wait\n    agent: human_review\n    requires_approval: true\n";
const COOKIE: &str = "the-failover-benchmark-cookie";
/// How long a node may take to start, or a take-over to happen, before the benchmark
/// gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// Where and how often to measure failover.
#[derive(Debug, Clone)]
pub struct FailoverPlan {
    /// The shared store, `ws://HOST:PORT`.
    pub store_url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub trials: usize,
    pub heartbeat_ms: u64,
    pub lease_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct FailoverFigures {
    pub trials: usize,
    pub heartbeat_ms: u64,
    pub lease_ms: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Each trial's kill → the survivor owning the run.
    pub samples_ms: Vec<f64>,
}

impl FailoverFigures {
    pub fn line(&self) -> String {
        format!(
            "failover (kill → run taken over, {} trials, lease {} ms): p50 {:.0} ms   p95 {:.0} ms   max {:.0} ms",
            self.trials, self.lease_ms, self.p50_ms, self.p95_ms, self.max_ms
        )
    }
}

pub async fn failover(plan: &FailoverPlan, scratch: &Path) -> anyhow::Result<FailoverFigures> {
    let mut nodes = [
        BenchNode::start(plan, "failover-a", scratch).await?,
        BenchNode::start(plan, "failover-b", scratch).await?,
    ];
    let created: Value = nodes[0]
        .client
        .post_text("/api/v1/workflows", WAITING_WORKFLOW.into())
        .await?;
    let workflow = created["workflow_id"]
        .as_str()
        .context("a workflow id")?
        .to_string();
    let mut samples_ms = Vec::with_capacity(plan.trials);
    for trial in 0..plan.trials {
        let (victim, survivor) = (trial % 2, 1 - trial % 2);
        // A cluster, not two nodes that just met: the survivor is linked to the victim.
        nodes[survivor].wait_linked_to(nodes[victim].name).await?;
        let run = start_waiting_run(&nodes[victim], &workflow).await?;
        let killed = Instant::now();
        nodes[victim].kill();
        nodes[survivor].wait_to_own(&run).await?;
        samples_ms.push(killed.elapsed().as_secs_f64() * 1e3);
        let cancel = format!("/api/v1/runs/{run}/cancel");
        let _: Value = nodes[survivor].client.post(&cancel, &json!({})).await?;
        nodes[victim] = BenchNode::start(plan, nodes[victim].name, scratch).await?;
    }
    let mut sorted = samples_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let percentile = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    Ok(FailoverFigures {
        trials: plan.trials,
        heartbeat_ms: plan.heartbeat_ms,
        lease_ms: plan.lease_ms,
        p50_ms: percentile(0.5),
        p95_ms: percentile(0.95),
        max_ms: percentile(1.0),
        samples_ms,
    })
}

/// Starts a run of `workflow` on `node` and waits until it waits at its gate there.
async fn start_waiting_run(node: &BenchNode, workflow: &str) -> anyhow::Result<String> {
    let start = format!("/api/v1/workflows/{workflow}/runs");
    let not_member = troupe_engine::EngineError::NotMember.to_string();
    let deadline = Instant::now() + PATIENCE;
    let started: Value = loop {
        match node.client.post(&start, &json!({})).await {
            Ok(started) => break started,
            // A node that missed a renewal on a busy machine fenced itself, and is a
            // member again within a lease.
            Err(error) if error.to_string().contains(&not_member) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error),
        }
    };
    let run = started["run_id"].as_str().context("a run id")?.to_string();
    loop {
        let approvals: Value = node.client.get("/api/v1/approvals").await?;
        let waiting = approvals
            .as_array()
            .is_some_and(|all| all.iter().any(|approval| approval["run_id"] == run));
        if waiting {
            return Ok(run);
        }
        if Instant::now() > deadline {
            bail!("run {run} never reached its gate on {}", node.name);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One `troupe up` cluster node of the benchmark's.
struct BenchNode {
    name: &'static str,
    /// The node's API, with no account (its `auth.required` is off).
    client: Client,
    child: Child,
    log: PathBuf,
}

impl BenchNode {
    /// Starts node `name` and waits until it is a live member; again on another port
    /// when the free one it picked was taken before the node could bind it.
    async fn start(
        plan: &FailoverPlan,
        name: &'static str,
        scratch: &Path,
    ) -> anyhow::Result<BenchNode> {
        let mut tries = 0;
        loop {
            match BenchNode::start_once(plan, name, scratch).await {
                Err(error) if error.to_string().contains("Address already in use") && tries < 3 => {
                    tries += 1;
                }
                started => return started,
            }
        }
    }

    async fn start_once(
        plan: &FailoverPlan,
        name: &'static str,
        scratch: &Path,
    ) -> anyhow::Result<BenchNode> {
        let address = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .to_string();
        let log = scratch.join(format!("{name}.log"));
        let mut command = Command::new(std::env::current_exe()?);
        for setting in node_settings(plan, name, scratch) {
            command.args(["--set", &setting]);
        }
        let child = command
            .args(["up", "--address", &address])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting a node of the failover benchmark")?;
        let node = BenchNode {
            name,
            client: Client::new(&format!("http://{address}")),
            child,
            log,
        };
        node.wait_ready().await?;
        Ok(node)
    }

    fn kill(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
    }

    /// `/readyz` answers 200 once the node holds its lease.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.client.get::<Value>("/readyz").await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        bail!(
            "node {} was not ready within 60 s; its log:\n{log}",
            self.name
        )
    }

    /// Waits until this node has a link to `peer`.
    async fn wait_linked_to(&self, peer: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            let view: Value = self.client.get("/api/v1/cluster").await?;
            let linked = view["linked"].as_array();
            if linked.is_some_and(|linked| linked.iter().any(|name| name == peer)) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("node {} never linked to {peer} within 60 s", self.name)
    }

    /// Waits until this node owns `run`.
    async fn wait_to_own(&self, run: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        let record = format!("/api/v1/runs/{run}");
        while Instant::now() < deadline {
            if self.client.get::<Value>(&record).await?["owner"] == self.name {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("node {} did not take run {run} over within 60 s", self.name)
    }
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The settings of node `name`: the shared store, plain links on loopback (both ends
/// are this machine), the plan's lease, no accounts and no models.
fn node_settings(plan: &FailoverPlan, name: &str, scratch: &Path) -> Vec<String> {
    let mut settings = vec![
        format!("store.url={}", plan.store_url),
        "cluster.enabled=true".into(),
        format!("cluster.node_name={name}"),
        "cluster.insecure=true".into(),
        "cluster.listen=127.0.0.1:0".into(),
        format!("cluster.cookie={COOKIE}"),
        format!("cluster.heartbeat_ms={}", plan.heartbeat_ms),
        format!("cluster.lease_ms={}", plan.lease_ms),
        "auth.required=false".into(),
        "models.serve=false".into(),
        format!("auth.dir={}", scratch.join("auth").display()),
        format!(
            "audit.dir={}",
            scratch.join(format!("audit-{name}")).display()
        ),
    ];
    if let Some(username) = &plan.username {
        settings.push(format!("store.username={username}"));
    }
    if let Some(password) = &plan.password {
        settings.push(format!("store.password={password}"));
    }
    settings
}
