//! Where a task attempt runs. The engine asks a [`Placement`] for a node when it starts
//! an attempt (recorded in the log's `attempt_started`), and hands attempts placed on
//! another node to it. A node alone has [`HereOnly`]; a cluster node has the cluster
//! crate's placement, which picks among the members by load and reaches their gateways.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use troupe_agents::{AgentError, AgentOutput, Approval, Billing, CancellationToken, MemoryScope};
use troupe_store::{RunId, TaskId};
use troupe_telemetry::TraceParent;

use crate::EngineError;
use crate::agent_pool::AttemptJob;
use crate::command::RunCommand;

/// An attempt as another node receives it: everything its pool needs but the services,
/// which are that node's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteAttempt {
    /// The node that owns the run (and placed the attempt).
    pub owner: String,
    pub run_id: RunId,
    pub epoch: u64,
    pub task: TaskId,
    pub attempt: u32,
    /// The attempt's sampling seed (see [`crate::seed`]); 0 from a node older than
    /// seeds.
    #[serde(default)]
    pub seed: u64,
    pub kind: String,
    pub inputs: Map<String, Value>,
    pub timeout_secs: Option<u64>,
    pub approval: Option<Approval>,
    pub scope: MemoryScope,
    /// The run and task its model calls are billed to, with their budgets.
    #[serde(default)]
    pub billing: Option<Billing>,
    /// Started before the owner that sends it took the run on: it may have run already,
    /// so the node looks for its recorded outcome first. A fresh attempt has none, and
    /// skips that read.
    #[serde(default)]
    pub resumed: bool,
    /// The run's root span, so that the attempt's span joins the run's trace.
    #[serde(default)]
    pub trace: Option<TraceParent>,
}

impl RemoteAttempt {
    /// `job` as node `owner` sends it to another node, and the token that cancels it.
    pub(crate) fn of(
        owner: &str,
        kind: &str,
        job: AttemptJob,
        resumed: bool,
    ) -> (Self, CancellationToken) {
        let attempt = RemoteAttempt {
            owner: owner.into(),
            run_id: job.run_id,
            epoch: job.epoch,
            task: job.task,
            attempt: job.attempt,
            seed: job.seed,
            kind: kind.into(),
            inputs: job.inputs,
            timeout_secs: job.timeout_secs,
            approval: job.approval,
            scope: job.scope,
            billing: job.billing,
            resumed,
            trace: job.trace,
        };
        (attempt, job.cancel)
    }
}

/// What a node's attempt came to, and which node ran it.
pub type RemoteOutcome = (String, Result<AgentOutput, AgentError>);

pub trait Placement: Send + Sync {
    /// The node an attempt of `kind` should run on, among those with every label of
    /// `runs_on` (this node's name for here), with `local_free` slots free here; `Err`
    /// says why no node can take it now.
    fn choose(&self, kind: &str, runs_on: &[String], local_free: usize) -> Result<String, String>;

    /// Whether `node` can be reached now (a live, linked member).
    fn reachable(&self, node: &str) -> bool;

    /// Hands `command` to `node`, which owns its run, and gives back its answer.
    fn forward(
        &self,
        node: String,
        command: RunCommand,
    ) -> BoxFuture<'static, Result<(), EngineError>>;

    /// Runs `attempt` on `node` to its outcome, which that node recorded first.
    /// Cancelling `cancel` cancels it there.
    fn run_on(
        &self,
        node: String,
        attempt: RemoteAttempt,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, RemoteOutcome>;
}

/// A node alone: every attempt runs here, if this node has the labels it needs.
pub struct HereOnly {
    pub node: String,
    pub labels: Vec<String>,
}

impl Placement for HereOnly {
    fn choose(&self, _: &str, runs_on: &[String], _: usize) -> Result<String, String> {
        match missing_labels(&self.labels, runs_on) {
            None => Ok(self.node.clone()),
            Some(missing) => Err(format!(
                "no node has the labels it runs on ({missing}): this node has [{}] \
                 (cluster.labels)",
                self.labels.join(", ")
            )),
        }
    }

    fn reachable(&self, node: &str) -> bool {
        node == self.node
    }

    fn forward(
        &self,
        node: String,
        command: RunCommand,
    ) -> BoxFuture<'static, Result<(), EngineError>> {
        let error = EngineError::RunElsewhere {
            run: command.run().clone(),
            owner: node,
        };
        Box::pin(async move { Err(error) })
    }

    fn run_on(
        &self,
        node: String,
        _: RemoteAttempt,
        _: CancellationToken,
    ) -> BoxFuture<'static, RemoteOutcome> {
        let error =
            AgentError::Failed(format!("node `{node}` cannot be reached: not in a cluster"));
        Box::pin(async move { (node, Err(error)) })
    }
}

/// The labels of `runs_on` that `labels` lacks, comma-separated; `None` when none.
pub fn missing_labels(labels: &[String], runs_on: &[String]) -> Option<String> {
    let missing: Vec<&str> = runs_on
        .iter()
        .filter(|label| !labels.contains(label))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_alone_takes_what_its_labels_allow_and_names_what_it_lacks() {
        let here = HereOnly {
            node: "a".into(),
            labels: vec!["gpu".into()],
        };
        assert_eq!(here.choose("shell", &[], 0), Ok("a".into()));
        assert_eq!(here.choose("shell", &["gpu".into()], 0), Ok("a".into()));
        let refused = here
            .choose("shell", &["gpu".into(), "arm".into()], 4)
            .unwrap_err();
        assert!(
            refused.contains("(arm)") && refused.contains("[gpu]"),
            "{refused}"
        );
    }
}
