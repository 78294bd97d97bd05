//! The execution policy: which agent kinds a workflow may use. A node runs the kinds
//! `agents.allowed_kinds` names (`*`: all it has). Of those, any project may use the kinds
//! that only read and report; a kind that runs code that is not ours or reaches the
//! network ([`Agent::needs_grant`](troupe_agents::Agent::needs_grant)) must also be
//! granted to the project (`troupe_store::ProjectPolicy`). The project may also gate
//! kinds: every task of a gated kind must be an approval gate (`requires_approval`) in a
//! workflow whose runs a second person approves (`separate_approver`). Checked when a
//! version is saved and again when a run starts, so a grant withdrawn or a gate added
//! since the save stops new runs of every version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;
use troupe_agents::Registry;
use troupe_store::{ProjectId, Store, project_of};
use troupe_workflow::{Task, Workflow};

use crate::EngineError;
use crate::invoke::Invocation;

/// The node's part of the policy. Clones share it, so that a reload of
/// `agents.allowed_kinds` ([`ExecutionPolicy::replace`]) reaches every holder.
#[derive(Debug, Clone, Default)]
pub struct ExecutionPolicy {
    /// `None`: every kind the node has.
    node_kinds: Arc<RwLock<Option<BTreeSet<String>>>>,
}

impl ExecutionPolicy {
    /// From `agents.allowed_kinds`: `*` allows every kind the node has.
    pub fn new(allowed_kinds: &[String]) -> Self {
        Self {
            node_kinds: Arc::new(RwLock::new(Self::kinds(allowed_kinds))),
        }
    }

    fn kinds(allowed_kinds: &[String]) -> Option<BTreeSet<String>> {
        (!allowed_kinds.iter().any(|kind| kind == "*"))
            .then(|| allowed_kinds.iter().cloned().collect())
    }

    /// Takes a new `agents.allowed_kinds`: saves, run starts and attempts from now on
    /// are checked against it.
    pub fn replace(&self, allowed_kinds: &[String]) {
        *self
            .node_kinds
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Self::kinds(allowed_kinds);
    }

    /// Whether this node runs `kind` at all (`agents.allowed_kinds`).
    pub fn node_runs(&self, kind: &str) -> bool {
        self.node_kinds
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(|kinds| kinds.contains(kind))
    }

    /// `Err` naming the first task whose kind this node does not run, whose project was
    /// not granted it, or that its project gates and the workflow does not.
    pub async fn check(
        &self,
        workflow: &Workflow,
        registry: &Registry,
        store: &Store,
    ) -> Result<(), EngineError> {
        let project = project_of(workflow);
        let policy = store.project_policy(&project).await?;
        for task in &workflow.tasks {
            if !self.node_runs(&task.agent) {
                return Err(EngineError::KindNotOnNode {
                    user: format!("task `{}`", task.id),
                    kind: task.agent.clone(),
                });
            }
            let granted = policy.allowed_kinds.contains(&task.agent);
            if let Ok(agent) = registry.get(&task.agent)
                && let Some(why) = agent.needs_grant(&task.inputs)
                && !granted
            {
                return Err(EngineError::KindNotGranted {
                    user: format!("task `{}`", task.id),
                    kind: task.agent.clone(),
                    why,
                    project,
                });
            }
            if policy.gated_kinds.contains(&task.agent) {
                check_gate(workflow, task, &project)?;
            }
        }
        Ok(())
    }
}

impl ExecutionPolicy {
    /// `Err` when an attempt of `kind` with `inputs`, invoked outside any workflow, may
    /// not run for `project`: the kind is unknown, this node alone does not run it, it
    /// needs a grant the project lacks, or the project gates it (a gated kind waits for
    /// a second person's approval, which only a workflow's gate gives); or the inputs do
    /// not fit its schema.
    pub async fn check_invocation(
        &self,
        invocation: &Invocation,
        registry: &Registry,
        store: &Store,
        alone: bool,
    ) -> Result<(), EngineError> {
        let kind = invocation.kind.as_str();
        let agent = registry.get(kind).map_err(|_| EngineError::KindUnknown {
            kind: kind.into(),
            known: registry.kind_names().join(", "),
        })?;
        // In a cluster another node may run it; placement finds one or says none does.
        if alone && !self.node_runs(kind) {
            return Err(EngineError::KindNotOnNode {
                user: "the invocation".into(),
                kind: kind.into(),
            });
        }
        agent
            .input_schema()
            .validate(&invocation.inputs)
            .map_err(|error| EngineError::InvalidRequest(format!("inputs of `{kind}`: {error}")))?;
        let project = &invocation.project;
        let policy = store.project_policy(project).await?;
        let inputs: BTreeMap<String, Value> = invocation.inputs.clone().into_iter().collect();
        if let Some(why) = agent.needs_grant(&inputs)
            && !policy.allowed_kinds.iter().any(|granted| granted == kind)
        {
            return Err(EngineError::KindNotGranted {
                user: "the invocation".into(),
                kind: kind.into(),
                why,
                project: project.clone(),
            });
        }
        if policy.gated_kinds.iter().any(|gated| gated == kind) {
            return Err(EngineError::GatedInvocation {
                kind: kind.into(),
                project: project.clone(),
            });
        }
        Ok(())
    }
}

/// A task of a kind its project gates must wait for an approval that its run's
/// starter cannot give.
fn check_gate(workflow: &Workflow, task: &Task, project: &ProjectId) -> Result<(), EngineError> {
    let missing = if !task.requires_approval {
        "`requires_approval: true` on the task"
    } else if !workflow.separate_approver {
        "`separate_approver: true` on the workflow"
    } else {
        return Ok(());
    };
    Err(EngineError::GateRequired {
        task: task.id.clone(),
        kind: task.agent.clone(),
        missing,
        project: project.clone(),
    })
}
