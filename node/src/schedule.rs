//! Scheduled runs (`triggers.schedule`). Every node looks at the clock once a second
//! and, for each workflow whose latest version has a schedule, finds the latest tick of
//! its cron (in its time zone, UTC when it names none) that is due. A tick fires as a
//! run whose id is made from the workflow and the tick ([`RunId::for_tick`]): the
//! store's unique run id lets exactly one node start it, whichever nodes are up, and a
//! node that dies at the tick leaves it to the next look of another node, or its own
//! when it is back.
//!
//! Missed ticks are those after the latest of the workflow's last scheduled run, the
//! save of its latest version and the last pause or resume of its triggers. `catch_up:
//! once` fires the latest of them; `skip` fires a tick only within [`GRACE_MS`] of it.
//! While the triggers are paused, ticks pass and fire nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use chrono_tz::Tz;
use tokio::task::JoinHandle;
use troupe_engine::context::EngineContext;
use troupe_engine::run_manager::{RunManagerMsg, RunOptions, StartRun};
use troupe_security::audit::{AuditAction, AuditLog};
use troupe_store::events::Person;
use troupe_store::{RunId, WorkflowId, WorkflowRecord};
use troupe_workflow::{CatchUp, ScheduleTrigger};

use crate::NodeError;

/// How often a node looks at the schedules.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How late a tick may still fire under `catch_up: skip`.
pub const GRACE_MS: i64 = 60_000;
/// The most ticks one look steps over (a minutely cron missed for two years).
const MAX_STEPS: usize = 1_000_000;

/// A workflow's schedule, as the loop follows it.
#[derive(Debug)]
struct Schedule {
    cron: croner::Cron,
    zone: Tz,
    catch_up: CatchUp,
    /// The first tick not yet fired or skipped (Unix ms); `i64::MAX` when none comes.
    next_ms: i64,
}

/// What the loop knows of each workflow: the version it read and when its triggers were
/// last paused or resumed, and its schedule if that version has one.
type Known = HashMap<WorkflowId, ((u32, i64), Option<Schedule>)>;

/// The loop of one node; it runs until aborted.
pub(crate) fn spawn(context: Arc<EngineContext>, audit: Arc<AuditLog>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut known = Known::new();
        loop {
            // A node that is not a live member of its cluster (cut off from the store)
            // could start nothing: it leaves the store alone until it has joined again.
            if context.is_acting()
                && let Err(error) = look(&context, &audit, &mut known).await
            {
                tracing::warn!(%error, "the schedules could not be looked at");
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    })
}

/// Fires what is due now.
async fn look(
    context: &EngineContext,
    audit: &AuditLog,
    known: &mut Known,
) -> Result<(), NodeError> {
    let workflows = context.store.workflows().await?;
    known.retain(|id, _| workflows.iter().any(|record| &record.workflow_id == id));
    for record in workflows {
        let seen = (record.latest_version, record.triggers_changed_at_ms);
        let fresh = known
            .get(&record.workflow_id)
            .is_some_and(|(read, _)| *read == seen);
        if !fresh {
            let schedule = read_schedule(context, &record).await?;
            known.insert(record.workflow_id.clone(), (seen, schedule));
        }
        let Some((_, Some(schedule))) = known.get_mut(&record.workflow_id) else {
            continue;
        };
        schedule.next_ms = match schedule.due(context.clock.now_ms()) {
            None => continue,
            // Paused: the ticks pass, and none is missed when the triggers resume.
            Some(Due::Skip { next } | Due::Fire { next, .. }) if record.triggers_paused => next,
            Some(Due::Skip { next }) => {
                tracing::info!(workflow = %record.workflow_id, "missed ticks skipped (catch_up: skip)");
                next
            }
            Some(Due::Fire { tick, next }) => {
                // A tick that could not be started (the store away, this node not a
                // member) stays due: the next look tries it again.
                if !fire(context, audit, &record.workflow_id, tick).await? {
                    continue;
                }
                next
            }
        };
    }
    Ok(())
}

/// The schedule of the workflow's latest version, following on from its last scheduled
/// run or, when later, the save of that version.
async fn read_schedule(
    context: &EngineContext,
    record: &WorkflowRecord,
) -> Result<Option<Schedule>, NodeError> {
    let version = Some(record.latest_version);
    let workflow = crate::node::stored_workflow(context, &record.workflow_id, version).await?;
    let Some(trigger) = workflow.triggers.schedule else {
        return Ok(None);
    };
    let last = context.store.last_tick(&record.workflow_id).await?;
    let since = last
        .unwrap_or(i64::MIN)
        .max(record.updated_at_ms)
        .max(record.triggers_changed_at_ms);
    match Schedule::new(&trigger, since) {
        Ok(schedule) => Ok(Some(schedule)),
        Err(problem) => {
            tracing::warn!(workflow = %record.workflow_id, %problem, "a schedule that cannot fire");
            Ok(None)
        }
    }
}

/// Starts the run of `tick`; `true` once the tick has its run, here or on another node.
async fn fire(
    context: &EngineContext,
    audit: &AuditLog,
    workflow: &WorkflowId,
    tick: i64,
) -> Result<bool, NodeError> {
    let Some(manager) = context.run_manager.get() else {
        return Ok(false);
    };
    let request = StartRun {
        workflow_id: workflow.clone(),
        options: RunOptions::default(),
        started_by: Person::named("schedule"),
        trace: None,
        tick_ms: Some(tick),
    };
    match ractor::call!(manager, RunManagerMsg::StartRun, request)? {
        Ok(run_id) => {
            tracing::info!(%workflow, tick, %run_id, "a scheduled run started");
            let action = AuditAction::RunStart {
                workflow: workflow.to_string(),
                version: None,
            };
            audit.record("schedule", action, run_id.as_str()).await?;
            Ok(true)
        }
        // Another node started the tick first: its run exists.
        Err(error) => match context.store.run(&RunId::for_tick(workflow, tick)).await {
            Ok(_) => Ok(true),
            Err(_) => {
                tracing::warn!(%workflow, tick, %error, "a scheduled run could not start");
                Ok(false)
            }
        },
    }
}

/// The first tick of `trigger` after `now_ms`; `None` for one that cannot fire.
pub(crate) fn next_tick(trigger: &ScheduleTrigger, now_ms: i64) -> Option<i64> {
    let schedule = Schedule::new(trigger, now_ms).ok()?;
    (schedule.next_ms != i64::MAX).then_some(schedule.next_ms)
}

/// What the node would refuse in `workflow`'s schedule beyond what the language checks
/// (its zone: the time zone database lives here, not in the browser's parser).
pub fn schedule_problem(workflow: &troupe_workflow::Workflow) -> Option<String> {
    let schedule = workflow.triggers.schedule.as_ref()?;
    zone_of(schedule).err()
}

/// The zone a schedule names, or why it is not one.
pub(crate) fn zone_of(trigger: &ScheduleTrigger) -> Result<Tz, String> {
    match &trigger.timezone {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            format!(
                "triggers.schedule.timezone: `{name}` is not an IANA time zone (e.g. \
                 Europe/Paris, America/New_York, UTC)"
            )
        }),
    }
}

impl Schedule {
    fn new(trigger: &ScheduleTrigger, since_ms: i64) -> Result<Self, String> {
        let cron = croner::Cron::new(&trigger.cron)
            .parse()
            .map_err(|error| error.to_string())?;
        let mut schedule = Schedule {
            cron,
            zone: zone_of(trigger)?,
            catch_up: trigger.catch_up,
            next_ms: i64::MAX,
        };
        schedule.next_ms = schedule.after(since_ms).unwrap_or(i64::MAX);
        Ok(schedule)
    }

    /// The first tick after `ms`.
    fn after(&self, ms: i64) -> Option<i64> {
        let at = self.zone.timestamp_millis_opt(ms).single()?;
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        Some(next.timestamp_millis())
    }

    /// What to do at `now`, if a tick has come: fire the latest due tick (under `skip`
    /// only within the grace), then wait for the first tick after it.
    fn due(&self, now: i64) -> Option<Due> {
        if now < self.next_ms {
            return None;
        }
        let mut latest = self.next_ms;
        let mut next = self.after(latest);
        for _ in 0..MAX_STEPS {
            match next {
                Some(tick) if tick <= now => {
                    latest = tick;
                    next = self.after(tick);
                }
                _ => break,
            }
        }
        let next = next.unwrap_or(i64::MAX);
        Some(match self.catch_up {
            CatchUp::Skip if now - latest > GRACE_MS => Due::Skip { next },
            _ => Due::Fire { tick: latest, next },
        })
    }
}

/// What a look does with a schedule whose next tick has come.
#[derive(Debug, PartialEq)]
enum Due {
    /// Start the run of `tick`, then wait for `next`.
    Fire { tick: i64, next: i64 },
    /// The ticks missed are too old to fire (`catch_up: skip`): wait for `next`.
    Skip { next: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: i64 = 1_767_225_600_000;

    fn schedule(cron: &str, zone: Option<&str>, catch_up: CatchUp, since: i64) -> Schedule {
        let trigger = ScheduleTrigger {
            cron: cron.into(),
            timezone: zone.map(str::to_owned),
            catch_up,
        };
        Schedule::new(&trigger, since).unwrap()
    }

    #[test]
    fn the_first_tick_is_the_one_after_the_schedule_was_saved() {
        let hourly = schedule("0 * * * *", None, CatchUp::Once, NEW_YEAR + 10 * MINUTE);
        assert_eq!(hourly.next_ms, NEW_YEAR + 60 * MINUTE);
        assert_eq!(hourly.due(NEW_YEAR + 59 * MINUTE), None);
        assert_eq!(
            hourly.due(NEW_YEAR + 60 * MINUTE),
            Some(Due::Fire {
                tick: NEW_YEAR + 60 * MINUTE,
                next: NEW_YEAR + 120 * MINUTE
            })
        );
    }

    #[test]
    fn missed_ticks_fire_once_as_the_latest_or_are_skipped() {
        let since = NEW_YEAR;
        let back = NEW_YEAR + 5 * 60 * MINUTE + 30_000; // five hours and a half later
        let once = schedule("0 * * * *", None, CatchUp::Once, since);
        assert_eq!(
            once.due(back),
            Some(Due::Fire {
                tick: NEW_YEAR + 5 * 60 * MINUTE,
                next: NEW_YEAR + 6 * 60 * MINUTE
            })
        );
        let skip = schedule("0 * * * *", None, CatchUp::Skip, since);
        assert_eq!(
            skip.due(back),
            Some(Due::Fire {
                tick: NEW_YEAR + 5 * 60 * MINUTE,
                next: NEW_YEAR + 6 * 60 * MINUTE
            }),
            "30 s late is within the grace"
        );
        let later = NEW_YEAR + 5 * 60 * MINUTE + 2 * MINUTE;
        assert_eq!(
            skip.due(later),
            Some(Due::Skip {
                next: NEW_YEAR + 6 * 60 * MINUTE
            })
        );
    }

    #[test]
    fn a_schedule_keeps_its_own_time_zone() {
        // 02:30 in Paris is 01:30 UTC in winter.
        let nightly = schedule("30 2 * * *", Some("Europe/Paris"), CatchUp::Once, NEW_YEAR);
        assert_eq!(nightly.next_ms, NEW_YEAR + 90 * MINUTE);
        let trigger = ScheduleTrigger {
            cron: "* * * * *".into(),
            timezone: Some("Mars/Olympus".into()),
            catch_up: CatchUp::Once,
        };
        assert_eq!(
            zone_of(&trigger).unwrap_err(),
            "triggers.schedule.timezone: `Mars/Olympus` is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)"
        );
    }

    #[test]
    fn a_tick_has_one_run_id_whichever_node_fires_it() {
        let workflow = WorkflowId::from("nightly");
        assert_eq!(
            RunId::for_tick(&workflow, NEW_YEAR),
            RunId::for_tick(&workflow, NEW_YEAR)
        );
        assert_ne!(
            RunId::for_tick(&workflow, NEW_YEAR),
            RunId::for_tick(&workflow, NEW_YEAR + MINUTE)
        );
        assert_ne!(
            RunId::for_tick(&workflow, NEW_YEAR),
            RunId::for_tick(&"other".into(), NEW_YEAR)
        );
    }
}
