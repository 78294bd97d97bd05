//! The execution policy: which agent kinds a workflow may use. A node runs the kinds
//! `agents.allowed_kinds` names (`*`: all it has). Of those, any project may use the kinds
//! that only read and report; a kind that runs code that is not ours or reaches the
//! network ([`Agent::needs_grant`](troupe_agents::Agent::needs_grant)) must also be
//! granted to the project (`troupe_store::ProjectPolicy`). Checked when a version is saved
//! and again when a run starts, so a grant withdrawn since the save stops new runs.

use std::collections::BTreeSet;

use troupe_agents::Registry;
use troupe_store::{ProjectId, Store, project_of};
use troupe_workflow::Workflow;

use crate::EngineError;

/// The node's part of the policy.
#[derive(Debug, Clone, Default)]
pub struct ExecutionPolicy {
    /// `None`: every kind the node has.
    node_kinds: Option<BTreeSet<String>>,
}

impl ExecutionPolicy {
    /// From `agents.allowed_kinds`: `*` allows every kind the node has.
    pub fn new(allowed_kinds: &[String]) -> Self {
        let node_kinds = (!allowed_kinds.iter().any(|kind| kind == "*"))
            .then(|| allowed_kinds.iter().cloned().collect());
        Self { node_kinds }
    }

    fn node_runs(&self, kind: &str) -> bool {
        self.node_kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(kind))
    }

    /// `Err` naming the first task whose kind this node does not run, or whose project
    /// was not granted it. The project's grants are read only when a task needs one.
    pub async fn check(
        &self,
        workflow: &Workflow,
        registry: &Registry,
        store: &Store,
    ) -> Result<(), EngineError> {
        let project = project_of(workflow);
        let mut granted: Option<Vec<String>> = None;
        for task in &workflow.tasks {
            if !self.node_runs(&task.agent) {
                return Err(EngineError::KindNotOnNode {
                    task: task.id.clone(),
                    kind: task.agent.clone(),
                });
            }
            let Ok(agent) = registry.get(&task.agent) else {
                continue;
            };
            let Some(why) = agent.needs_grant(&task.inputs) else {
                continue;
            };
            if granted.is_none() {
                granted = Some(grants(store, &project).await?);
            }
            if !granted.iter().flatten().any(|kind| *kind == task.agent) {
                return Err(EngineError::KindNotGranted {
                    task: task.id.clone(),
                    kind: task.agent.clone(),
                    why,
                    project,
                });
            }
        }
        Ok(())
    }
}

async fn grants(store: &Store, project: &ProjectId) -> Result<Vec<String>, EngineError> {
    Ok(store.project_policy(project).await?.allowed_kinds)
}
