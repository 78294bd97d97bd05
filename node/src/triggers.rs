//! What starts workflows besides people, as operators see it: each workflow's schedule
//! (with its next tick) and push trigger, whether they are paused, and their last runs;
//! pausing and resuming them.

use serde::{Deserialize, Serialize};
use troupe_security::audit::AuditAction;
use troupe_store::{RunFilter, RunRecord, WorkflowId};

use crate::{Node, NodeError};

/// How many of a workflow's latest runs a listing shows.
const LAST_RUNS: usize = 5;

/// One workflow's triggers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriggerView {
    pub workflow_id: WorkflowId,
    pub name: String,
    #[schema(value_type = String)]
    pub project: troupe_store::ProjectId,
    pub paused: bool,
    pub schedule: Option<ScheduleView>,
    pub on_push: Option<PushView>,
    /// Its latest runs, newest first, whoever started them.
    pub last_runs: Vec<RunRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub cron: String,
    /// UTC when absent.
    pub timezone: Option<String>,
    /// `once` or `skip`.
    pub catch_up: String,
    /// The next tick (Unix ms); absent while paused.
    pub next_tick_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushView {
    pub branches: Vec<String>,
    /// The secret's name; without one no delivery is believed.
    pub secret: Option<String>,
}

impl Node {
    /// The triggers of every workflow that has one, by workflow id.
    pub async fn triggers(&self) -> Result<Vec<TriggerView>, NodeError> {
        let now = self.context().clock.now_ms();
        let mut views = Vec::new();
        for record in self.store().workflows().await? {
            let version = Some(record.latest_version);
            let workflow =
                crate::node::stored_workflow(self.context(), &record.workflow_id, version).await?;
            let triggers = workflow.triggers;
            if triggers.schedule.is_none() && triggers.on_push.is_none() {
                continue;
            }
            let schedule = triggers.schedule.map(|schedule| ScheduleView {
                next_tick_ms: crate::schedule::next_tick(&schedule, now)
                    .filter(|_| !record.triggers_paused),
                catch_up: schedule.catch_up.as_str().to_owned(),
                cron: schedule.cron,
                timezone: schedule.timezone,
            });
            let on_push = triggers.on_push.map(|push| PushView {
                branches: push.branches,
                secret: push.secret,
            });
            let filter = RunFilter {
                workflow_id: Some(record.workflow_id.clone()),
                limit: Some(LAST_RUNS),
                ..Default::default()
            };
            views.push(TriggerView {
                last_runs: self.store().runs(&filter).await?,
                workflow_id: record.workflow_id,
                name: record.name,
                project: record.project,
                paused: record.triggers_paused,
                schedule,
                on_push,
            });
        }
        Ok(views)
    }

    /// Pauses (or resumes) what starts workflow `id` besides people: its schedule fires
    /// nothing and pushes start nothing until it is resumed.
    pub async fn pause_triggers(
        &self,
        id: &WorkflowId,
        paused: bool,
        actor: &str,
    ) -> Result<(), NodeError> {
        let now = self.context().clock.now_ms();
        self.store().set_triggers_paused(id, paused, now).await?;
        let action = match paused {
            true => AuditAction::TriggersPause {},
            false => AuditAction::TriggersResume {},
        };
        self.audit().record(actor, action, id.as_str()).await?;
        Ok(())
    }
}
