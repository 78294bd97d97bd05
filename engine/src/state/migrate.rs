//! Moving an unfinished run to another version of its workflow: the plan, computed from
//! the run's state and the two versions, and what makes it unsafe.
//!
//! Only what has not started may change: a task that completed, runs, waits or failed
//! keeps its definition, so every event already in the log means the same under the
//! new version, and the log folds against it to the state the run had (plus what the
//! new version adds). A run's `run_migrated` event names the version; the fold reads
//! the log against the last one it names.

use serde::{Deserialize, Serialize};
use troupe_store::events::TaskStatus;
use troupe_workflow::Workflow;

use super::RunState;

/// What a migration does, and why it may not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MigrationPlan {
    pub from_version: u32,
    pub to_version: u32,
    /// Tasks only the new version has: they run when their dependencies let them.
    pub added: Vec<String>,
    /// Tasks only the old version has: none of them started.
    pub removed: Vec<String>,
    /// Tasks the new version defines differently: none of them started.
    pub changed: Vec<String>,
    /// Completed tasks both versions define alike: their outputs carry over.
    pub kept: Vec<String>,
    /// Why the plan cannot be applied; empty when it can.
    pub refusals: Vec<String>,
}

impl RunState {
    /// The plan that moves this run from its version `versions.0` to `to`, version
    /// `versions.1`.
    pub fn migration(&self, to: &Workflow, versions: (u32, u32)) -> MigrationPlan {
        let mut plan = MigrationPlan {
            from_version: versions.0,
            to_version: versions.1,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            kept: Vec::new(),
            refusals: Vec::new(),
        };
        if versions.0 == versions.1 {
            plan.refusals
                .push(format!("the run is on version {} already", versions.0));
        }
        if let Some(status) = self.finished {
            let ended = format!(
                "the run is {}: only an unfinished run moves",
                status.as_str()
            );
            plan.refusals.push(ended);
        }
        for old in &self.workflow.tasks {
            let status = self.tasks.get(old.id.as_str()).map(|state| state.status);
            let started = status.filter(|status| *status != TaskStatus::Pending);
            let (list, verb) = match to.task(&old.id) {
                None => (&mut plan.removed, "removed"),
                Some(new) if new != old => (&mut plan.changed, "changed"),
                Some(_) => {
                    if status == Some(TaskStatus::Completed) {
                        plan.kept.push(old.id.clone());
                    }
                    continue;
                }
            };
            list.push(old.id.clone());
            if let Some(status) = started {
                plan.refusals.push(format!(
                    "task `{}` is {}: it cannot be {verb}",
                    old.id,
                    status.as_str()
                ));
            }
        }
        plan.added = to
            .tasks
            .iter()
            .filter(|task| self.workflow.task(&task.id).is_none())
            .map(|task| task.id.clone())
            .collect();
        self.check_run_fits(to, &mut plan.refusals);
        plan
    }

    /// What the run itself brings that the new version must take: its project and
    /// the variables it was started with.
    fn check_run_fits(&self, to: &Workflow, refusals: &mut Vec<String>) {
        if to.project != self.workflow.project {
            refusals.push("the new version belongs to another project".to_owned());
        }
        for name in self.variables.keys() {
            if !to.declares_variable(name) {
                refusals.push(format!(
                    "the run has variable `{name}`, which the new version does not declare"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use troupe_store::events::RunStatus;

    use crate::state::RunState;
    use crate::state::test_log::{Log, workflow};

    const V1: &str = r#"
name: flow
tasks:
  - { id: build, name: Build, agent: work }
  - { id: test, name: Test, agent: work, depends_on: [build] }
  - { id: ship, name: Ship, agent: work, depends_on: [test], inputs: { to: staging } }
"#;

    /// A run of V1 whose `build` completed and whose `test` runs.
    fn run() -> RunState {
        let mut log = Log::new(V1);
        log.attempt("build", 1, Ok(json!({"artifact": "a.tar"})));
        log.start("test", 1);
        log.state
    }

    #[test]
    fn what_has_not_started_may_change_and_what_completed_carries_over() {
        let v2 = V1.replace("to: staging", "to: production")
            + "  - { id: notify, name: Notify, agent: work, depends_on: [ship] }\n";
        let plan = run().migration(&workflow(&v2), (1, 2));
        assert_eq!(plan.changed, ["ship"]);
        assert_eq!(plan.added, ["notify"]);
        assert!(plan.removed.is_empty());
        assert_eq!(plan.kept, ["build"]);
        assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
    }

    #[test]
    fn changing_or_removing_what_started_is_refused_with_each_reason() {
        let v2 = V1
            .replace(
                "name: Build, agent: work }",
                "name: Build, agent: work, timeout: 60 }",
            )
            .replace(
                "  - { id: test, name: Test, agent: work, depends_on: [build] }\n",
                "",
            )
            .replace("depends_on: [test]", "depends_on: [build]");
        let plan = run().migration(&workflow(&v2), (1, 2));
        assert_eq!(
            plan.refusals,
            [
                "task `build` is completed: it cannot be changed",
                "task `test` is running: it cannot be removed",
            ]
        );
        assert_eq!(
            (plan.changed, plan.removed),
            (
                vec!["build".to_owned(), "ship".to_owned()],
                vec!["test".to_owned()]
            )
        );
    }

    #[test]
    fn removing_a_completed_task_is_refused() {
        let v2 = V1
            .replace("  - { id: build, name: Build, agent: work }\n", "")
            .replace("depends_on: [build]", "");
        let plan = run().migration(&workflow(&v2), (1, 2));
        assert_eq!(plan.removed, ["build"]);
        assert_eq!(
            plan.refusals,
            [
                "task `build` is completed: it cannot be removed",
                "task `test` is running: it cannot be changed",
            ]
        );
    }

    #[test]
    fn a_finished_run_or_another_project_or_a_lost_variable_is_refused() {
        let mut finished = run();
        finished.finished = Some(RunStatus::Failed);
        finished.variables.insert("target".into(), json!("eu"));
        let elsewhere = format!("project: shop\n{V1}");
        let plan = finished.migration(&workflow(&elsewhere), (1, 2));
        assert_eq!(
            plan.refusals,
            [
                "the run is failed: only an unfinished run moves",
                "the new version belongs to another project",
                "the run has variable `target`, which the new version does not declare",
            ]
        );
    }
}
