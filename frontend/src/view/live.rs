//! A run's page kept current from its event stream: each event changes the task it
//! names at once, so a state change reaches the screen without asking the node for the
//! whole run again (the page refetches only when the run finishes).

use serde_json::Value;

use crate::model::{RunDetail, TaskState};

/// What one event means for the run; `true` when the page should refetch the run: at
/// its end, whose summary the events do not carry whole, when a fan-out expands (its
/// children are new rows) and when a fan-out's last child ends (no event says how the
/// fan-out itself ended), when a finished run is retried (its tasks start over), and
/// when a run moves to another version (it may have tasks the page has no row for).
pub fn apply(run: &mut RunDetail, stored: &Value) -> bool {
    let at_ms = stored["at_ms"].as_i64();
    let event = &stored["event"];
    let kind = event["kind"].as_str().unwrap_or_default();
    if matches!(kind, "fan_out_expanded" | "run_retried" | "run_migrated") {
        return true;
    }
    if kind == "run_finished" {
        if let Some(status) = event["status"].as_str() {
            run.summary.status = status.to_owned();
        }
        run.summary.finished_at_ms = at_ms.unwrap_or_default();
        return true;
    }
    let Some(task) = event["task"]
        .as_str()
        .and_then(|id| run.tasks.iter_mut().find(|task| task.id == id))
    else {
        return false;
    };
    match kind {
        "attempt_started" => {
            task.status = "running".into();
            task.attempts = event["attempt"]
                .as_u64()
                .map_or(task.attempts, |a| a as u32);
            task.started_at_ms = task.started_at_ms.or(at_ms);
            task.inputs = Some(event["inputs"].clone());
            task.node = event_node(event).or(task.node.take());
        }
        "attempt_succeeded" => {
            task.status = "completed".into();
            task.outputs = Some(event["outputs"].clone());
            task.cost_usd += event["cost_usd"].as_f64().unwrap_or(0.0);
            task.finished_at_ms = at_ms;
            task.error = None;
            task.node = event_node(event).or(task.node.take());
        }
        "attempt_failed" => {
            task.error = event["error"].as_str().map(String::from);
            task.node = event_node(event).or(task.node.take());
            task.status = if event["retry_at_ms"].is_i64() {
                "retrying"
            } else {
                "failed"
            }
            .into();
            finish_if(task, at_ms, task.status == "failed");
        }
        "task_failed" | "task_cancelled" => {
            task.status = if kind == "task_failed" {
                "failed"
            } else {
                "cancelled"
            }
            .into();
            task.error = event["reason"].as_str().map(String::from);
            finish_if(task, at_ms, true);
        }
        "task_skipped" => {
            task.status = "skipped".into();
            finish_if(task, at_ms, true);
        }
        "approval_requested" => {
            task.status = "waiting_approval".into();
            task.inputs = Some(event["inputs"].clone());
        }
        "approval_decided" => {
            let approved = event["approved"].as_bool().unwrap_or(false);
            task.status = if approved { "approved" } else { "rejected" }.into();
            finish_if(task, at_ms, !approved);
        }
        "approval_expired" => {
            task.status = "rejected".into();
            task.error = Some("the approval expired".into());
            finish_if(task, at_ms, true);
        }
        _ => {}
    }
    let parent = task.parent.clone();
    parent.is_some_and(|parent| last_child_ended(run, &parent))
}

/// Whether every child of the fan-out `parent` has ended.
fn last_child_ended(run: &RunDetail, parent: &str) -> bool {
    run.tasks
        .iter()
        .filter(|task| task.parent.as_deref() == Some(parent))
        .all(|task| {
            matches!(
                task.status.as_str(),
                "completed" | "failed" | "skipped" | "cancelled" | "rejected"
            )
        })
}

/// The node an attempt event names (absent outside a cluster, and in older logs).
fn event_node(event: &Value) -> Option<String> {
    event["node"].as_str().map(String::from)
}

/// An event's place in its run's log.
pub fn seq(stored: &Value) -> Option<i64> {
    stored["seq"].as_i64()
}

/// The tasks' states folded from the whole `log`, over what `run` said of them (its
/// inputs and its summary are kept, and a fan-out's state: no event of the log says
/// how the fan-out itself is doing, only its children's).
pub fn rebuild(run: &mut RunDetail, log: &[Value]) {
    let fan_outs: Vec<String> = run
        .tasks
        .iter()
        .filter_map(|task| task.parent.clone())
        .collect();
    for task in run
        .tasks
        .iter_mut()
        .filter(|task| !fan_outs.contains(&task.id))
    {
        task.status = "pending".into();
        task.attempts = 0;
        task.outputs = None;
        task.error = None;
        task.started_at_ms = None;
        task.finished_at_ms = None;
        task.cost_usd = 0.0;
        task.node = None;
    }
    let finished = run.summary.finished_at_ms;
    for event in log {
        apply(run, event);
    }
    if finished > 0 {
        run.summary.finished_at_ms = finished;
    }
}

fn finish_if(task: &mut TaskState, at_ms: Option<i64>, finished: bool) {
    if finished {
        task.finished_at_ms = at_ms;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run() -> RunDetail {
        serde_json::from_value(json!({
            "run_id": "r1", "workflow_id": "w", "workflow_version": 1, "workflow_name": "W",
            "status": "running", "started_by": "ada", "created_at_ms": 1, "finished_at_ms": 0,
            "project": "default", "cost_usd": 0.0, "failure_reason": null,
            "tasks": [
                { "id": "build", "status": "pending", "attempts": 0, "inputs": null, "outputs": null,
                  "error": null, "started_at_ms": null, "finished_at_ms": null, "cost_usd": 0.0 },
                { "id": "gate", "status": "pending", "attempts": 0, "inputs": null, "outputs": null,
                  "error": null, "started_at_ms": null, "finished_at_ms": null, "cost_usd": 0.0 }
            ]
        }))
        .unwrap()
    }

    fn event(at_ms: i64, event: Value) -> Value {
        json!({ "run_id": "r1", "seq": 0, "at_ms": at_ms, "event": event })
    }

    #[test]
    fn events_move_tasks_through_their_states() {
        let mut run = run();
        let steps = [
            (
                json!({ "kind": "attempt_started", "task": "build", "attempt": 1, "inputs": { "a": 1 } }),
                "running",
            ),
            (
                json!({ "kind": "attempt_failed", "task": "build", "attempt": 1, "error": "boom", "retry_at_ms": 9 }),
                "retrying",
            ),
            (
                json!({ "kind": "attempt_started", "task": "build", "attempt": 2, "inputs": { "a": 1 }, "node": "b" }),
                "running",
            ),
            (
                json!({ "kind": "attempt_succeeded", "task": "build", "attempt": 2, "outputs": { "ok": true }, "cost_usd": 0.5, "node": "c" }),
                "completed",
            ),
        ];
        for (at, (body, status)) in steps.into_iter().enumerate() {
            assert!(!apply(&mut run, &event(10 + at as i64, body)));
            assert_eq!(run.tasks[0].status, status);
        }
        assert_eq!((run.tasks[0].attempts, run.tasks[0].cost_usd), (2, 0.5));
        assert_eq!(
            (run.tasks[0].started_at_ms, run.tasks[0].finished_at_ms),
            (Some(10), Some(13))
        );
        assert_eq!(run.tasks[0].outputs, Some(json!({ "ok": true })));
        assert_eq!(
            run.tasks[0].node.as_deref(),
            Some("c"),
            "the node that ran it"
        );

        apply(
            &mut run,
            &event(
                20,
                json!({ "kind": "approval_requested", "task": "gate", "inputs": {}, "inputs_digest": "d", "expires_at_ms": 0 }),
            ),
        );
        assert_eq!(run.tasks[1].status, "waiting_approval");
        apply(
            &mut run,
            &event(
                21,
                json!({ "kind": "approval_decided", "task": "gate", "approved": false, "approver": "bo", "comment": null }),
            ),
        );
        assert_eq!(run.tasks[1].status, "rejected");
        assert!(apply(
            &mut run,
            &event(22, json!({ "kind": "run_finished", "status": "failed" }))
        ));
        assert_eq!(
            (run.summary.status.as_str(), run.summary.finished_at_ms),
            ("failed", 22)
        );
    }

    #[test]
    fn folding_the_whole_log_gives_what_live_updates_gave() {
        let log: Vec<Value> = [
            json!({ "kind": "attempt_started", "task": "build", "attempt": 1, "inputs": {} }),
            json!({ "kind": "attempt_succeeded", "task": "build", "attempt": 1, "outputs": { "x": 1 }, "cost_usd": 0.25 }),
            json!({ "kind": "approval_requested", "task": "gate", "inputs": {}, "inputs_digest": "d", "expires_at_ms": 0 }),
        ]
        .into_iter()
        .enumerate()
        .map(|(at, body)| json!({ "run_id": "r1", "seq": at, "at_ms": 100 + at as i64, "event": body }))
        .collect();
        let mut live = run();
        for event in &log {
            apply(&mut live, event);
        }
        let mut stale = live.clone();
        stale.tasks[0].cost_usd = 9.0;
        stale.tasks[1].status = "running".into();
        rebuild(&mut stale, &log);
        assert_eq!(stale, live, "a rebuild counts each event once");
        assert_eq!(
            log.iter().map(seq).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2)]
        );
        assert_eq!(seq(&json!({ "lagged": 3 })), None);
    }

    #[test]
    fn events_of_unknown_tasks_or_kinds_change_nothing() {
        let mut run = run();
        let before = run.clone();
        for body in [
            json!({ "kind": "attempt_started", "task": "ghost", "attempt": 1 }),
            json!({ "kind": "something_new", "task": "build" }),
            json!({ "lagged": 3 }),
            json!(null),
        ] {
            assert!(!apply(&mut run, &event(1, body)));
        }
        assert!(!apply(&mut run, &json!({ "lagged": 3 })));
        assert_eq!(run, before);
    }

    #[test]
    fn a_fan_out_refetches_when_it_expands_and_when_its_last_child_ends() {
        let mut run: RunDetail = serde_json::from_value(json!({
            "run_id": "r1", "workflow_id": "w", "workflow_version": 1, "workflow_name": "W",
            "status": "running", "started_by": "ada", "created_at_ms": 1, "finished_at_ms": 0,
            "project": "default", "cost_usd": 0.0, "failure_reason": null,
            "tasks": [
                { "id": "code", "status": "running", "inputs": null, "outputs": null,
                  "error": null, "started_at_ms": 5, "finished_at_ms": null },
                { "id": "code[0]", "parent": "code", "status": "pending", "inputs": null,
                  "outputs": null, "error": null, "started_at_ms": null, "finished_at_ms": null },
                { "id": "code[1]", "parent": "code", "status": "pending", "inputs": null,
                  "outputs": null, "error": null, "started_at_ms": null, "finished_at_ms": null }
            ]
        }))
        .unwrap();
        let expanded = json!({ "kind": "fan_out_expanded", "task": "code", "items": [1, 2] });
        assert!(apply(&mut run, &event(1, expanded.clone())));
        let done = |task: &str| json!({ "kind": "attempt_succeeded", "task": task, "attempt": 1, "outputs": {}, "cost_usd": 0.0 });
        assert!(
            !apply(&mut run, &event(2, done("code[0]"))),
            "a sibling is still pending"
        );
        assert!(
            apply(&mut run, &event(3, done("code[1]"))),
            "the last child ended"
        );
        rebuild(&mut run, &[event(1, expanded)]);
        assert_eq!(
            (run.tasks[0].status.as_str(), run.tasks[1].status.as_str()),
            ("running", "pending"),
            "the fan-out keeps the state the node gave it; its children are folded again"
        );
        let retried = json!({ "kind": "run_retried", "by": "ada", "reset": ["code"] });
        assert!(apply(&mut run, &event(4, retried)), "a retry refetches");
    }
}
