//! A retry of a failed or cancelled run: which tasks run again, and the run's state
//! once the `run_retried` event is folded in.
//!
//! The state is rebuilt rather than patched: a fresh `RunState` of the same workflow,
//! into which every task that keeps its end is replayed (its attempt's start and
//! success, its skip, its fan-out's expansion), so the counters, candidates and views
//! are exactly what they would be had the reset tasks never run. A reset task numbers
//! its attempts on from where it stopped, so no new attempt reuses an idempotency key,
//! and its retries are counted afresh.

use std::collections::HashSet;

use troupe_store::TaskId;
use troupe_store::events::{RunEvent, RunStatus, StoredEvent, TaskStatus};

use super::RunState;

/// Why a run cannot be retried as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryRefusal {
    #[error("run `{0}` is still running: wait for it to end, or cancel it first")]
    Running(String),
    #[error("run `{0}` completed: there is nothing to retry")]
    Completed(String),
    #[error("run `{run}` has no task `{task}`; its tasks: {known}")]
    UnknownTask {
        run: String,
        task: String,
        known: String,
    },
}

impl RunState {
    /// The tasks a retry runs again: those that failed, were cancelled or rejected,
    /// `from` when given, and everything downstream of any of them.
    pub fn retry_set(&self, from: Option<&str>) -> Result<Vec<TaskId>, RetryRefusal> {
        let run = self.run_id.to_string();
        match self.finished {
            None => return Err(RetryRefusal::Running(run)),
            Some(RunStatus::Completed) => return Err(RetryRefusal::Completed(run)),
            Some(_) => {}
        }
        let mut reset: HashSet<&str> = self
            .workflow
            .tasks
            .iter()
            .filter(|task| {
                self.tasks.get(task.id.as_str()).is_some_and(|state| {
                    matches!(
                        state.status,
                        TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Rejected
                    )
                })
            })
            .map(|task| task.id.as_str())
            .collect();
        if let Some(from) = from {
            let Some(task) = self.workflow.task(from) else {
                let known: Vec<&str> = self.workflow.tasks.iter().map(|t| t.id.as_str()).collect();
                return Err(RetryRefusal::UnknownTask {
                    run,
                    task: from.to_owned(),
                    known: known.join(", "),
                });
            };
            reset.insert(task.id.as_str());
        }
        // Dependencies first, so one pass reaches everything downstream.
        for &position in &self.graph.by_rank {
            let task = &self.workflow.tasks[position];
            if task
                .depends_on
                .iter()
                .any(|dep| reset.contains(dep.as_str()))
            {
                reset.insert(task.id.as_str());
            }
        }
        Ok(self
            .graph
            .by_rank
            .iter()
            .map(|&position| &self.workflow.tasks[position].id)
            .filter(|id| reset.contains(id.as_str()))
            .map(TaskId::from)
            .collect())
    }

    /// Folds `run_retried`: the run as it would be had the tasks in `reset` (and their
    /// children) never run; every other task as it ended.
    pub(super) fn retry(&mut self, reset: &[TaskId]) {
        let mut fresh = RunState::new(&self.run_id, self.workflow.clone());
        fresh.variables = self.variables.clone();
        fresh.started_by = self.started_by.clone();
        fresh.started_by_id = self.started_by_id.clone();
        fresh.started_at_ms = self.started_at_ms;
        fresh.seed = self.seed;
        fresh.max_fan_out = self.max_fan_out;
        let old = std::mem::replace(self, fresh);
        let reset: HashSet<&str> = reset.iter().map(TaskId::as_str).collect();
        for (id, state) in &old.tasks {
            let top = state.parent.as_ref().unwrap_or(id);
            if reset.contains(top.as_str()) {
                self.attempt_bases.insert(id.clone(), state.attempts);
            }
        }
        for &position in &old.graph.by_rank {
            let id = TaskId::from(&old.workflow.tasks[position].id);
            match self.attempt_bases.get(&id).copied() {
                Some(base) => {
                    if let Some(state) = self.tasks.get_mut(&id) {
                        state.attempts = base;
                        state.attempt_base = base;
                    }
                }
                None => self.replay(&old, &id, position),
            }
        }
        self.next_seq = old.next_seq;
    }

    /// Puts `task`'s end in `old` back: its events again, then its whole recorded
    /// state (the same status, so nothing the events counted changes).
    fn replay(&mut self, old: &RunState, task: &TaskId, position: usize) {
        let Some(ended) = old.tasks.get(task) else {
            return;
        };
        let mut replayed = vec![task.clone()];
        match (ended.status, old.expansions.get(&position)) {
            (TaskStatus::Completed, Some(expansion)) => {
                self.replay_event(RunEvent::FanOutExpanded {
                    task: task.clone(),
                    items: expansion.items.clone(),
                });
                for child in &expansion.children {
                    self.replay_end(old, child);
                }
                replayed.extend(expansion.children.iter().cloned());
            }
            (TaskStatus::Completed | TaskStatus::Skipped, _) => self.replay_end(old, task),
            _ => return,
        }
        for id in replayed {
            if let Some(state) = old.tasks.get(&id) {
                self.tasks.insert(id, state.clone());
            }
        }
    }

    /// A completed or skipped task's events, again.
    fn replay_end(&mut self, old: &RunState, task: &TaskId) {
        let Some(ended) = old.tasks.get(task) else {
            return;
        };
        match ended.status {
            TaskStatus::Skipped => self.replay_event(RunEvent::TaskSkipped { task: task.clone() }),
            TaskStatus::Completed => {
                self.replay_event(RunEvent::AttemptStarted {
                    idempotency_key: String::new(),
                    node: ended.node.clone(),
                    task: task.clone(),
                    attempt: ended.attempts,
                    inputs: ended.inputs.clone().unwrap_or_default(),
                });
                self.replay_event(RunEvent::AttemptSucceeded {
                    task: task.clone(),
                    attempt: ended.attempts,
                    outputs: ended.outputs.clone().unwrap_or_default(),
                    cost_usd: 0.0,
                    node: ended.node.clone(),
                });
            }
            _ => {}
        }
    }

    /// `event` folded in as if logged; `next_seq` is put back after the replay.
    fn replay_event(&mut self, event: RunEvent) {
        self.apply(&StoredEvent {
            run_id: self.run_id.clone(),
            seq: 0,
            at_ms: 0,
            event,
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use troupe_store::events::{RunEvent, RunStatus, TaskStatus};

    use crate::state::test_log::Log;
    use crate::state::{RunState, Step};

    const WORKFLOW: &str = r#"
name: lanes
tasks:
  - { id: a, name: A, agent: work }
  - { id: code, name: Code, agent: work, depends_on: [a], for_each: "{{ [1, 2] }}", fail_fast: false }
  - { id: review, name: Review, agent: work, depends_on: [code] }
  - { id: docs, name: Docs, agent: work, depends_on: [a] }
"#;

    /// A run whose fan-out lost one child: `a` and `docs` completed, `code[1]` failed,
    /// so `code` failed and `review` was cancelled.
    fn failed_run() -> Log {
        let mut log = Log::new(WORKFLOW);
        log.attempt("a", 1, Ok(json!({"plan": "p"})));
        log.push(RunEvent::FanOutExpanded {
            task: "code".into(),
            items: vec![json!(1), json!(2)],
        });
        log.attempt("docs", 1, Ok(json!({})));
        log.attempt("code[0]", 1, Ok(json!({"file": "one.py"})));
        log.attempt("code[1]", 1, Err("boom"));
        log.push(RunEvent::TaskCancelled {
            task: "review".into(),
            reason: "upstream failed".into(),
        });
        log.push(RunEvent::RunFinished {
            status: RunStatus::Failed,
            reason: None,
        });
        log
    }

    #[test]
    fn a_retry_starts_the_failed_fan_out_afresh_and_keeps_what_completed() {
        let mut log = failed_run();
        assert_eq!(log.status("code"), TaskStatus::Failed);
        let reset = log.state.retry_set(None).unwrap();
        assert_eq!(reset, ["code", "review"]);
        log.push(RunEvent::RunRetried {
            by: "ada".into(),
            reset,
        });
        assert_eq!(log.state.finished, None);
        assert_eq!(
            (
                log.status("a"),
                log.status("docs"),
                log.status("code"),
                log.status("review")
            ),
            (
                TaskStatus::Completed,
                TaskStatus::Completed,
                TaskStatus::Pending,
                TaskStatus::Pending
            )
        );
        assert_eq!(log.state.tasks()["a"].outputs, Some(json!({"plan": "p"})));
        assert!(
            !log.state.tasks().contains_key("code[0]"),
            "children come from a new expansion"
        );
        let items = match log.state.plan(100, 10).as_slice() {
            [Step::Expand { task, items }] if task.as_str() == "code" => items.clone(),
            other => panic!("expected code to expand again, planned {other:?}"),
        };
        log.push(RunEvent::FanOutExpanded {
            task: "code".into(),
            items,
        });
        let starts: Vec<(String, u32)> = log
            .state
            .plan(100, 10)
            .into_iter()
            .filter_map(|step| match step {
                Step::StartAttempt { task, attempt, .. } => Some((task.to_string(), attempt)),
                _ => None,
            })
            .collect();
        assert_eq!(
            starts,
            vec![("code[0]".to_owned(), 2), ("code[1]".to_owned(), 2)],
            "each child's attempts number on from the run before the retry"
        );

        // A node taking the run over folds the whole log to the same state.
        let mut resumed = RunState::new(&"r".into(), log.state.workflow.clone());
        for stored in &log.events {
            resumed.apply(stored);
        }
        assert_eq!(resumed.tasks(), log.state.tasks());
    }

    #[test]
    fn a_retry_is_refused_while_running_and_after_completing() {
        let mut log = Log::new(WORKFLOW);
        assert_eq!(
            log.state.retry_set(None).unwrap_err().to_string(),
            "run `r` is still running: wait for it to end, or cancel it first"
        );
        log.push(RunEvent::RunFinished {
            status: RunStatus::Completed,
            reason: None,
        });
        assert_eq!(
            log.state.retry_set(Some("a")).unwrap_err().to_string(),
            "run `r` completed: there is nothing to retry"
        );
        let failed = failed_run();
        assert_eq!(
            failed.state.retry_set(Some("a")).unwrap(),
            ["a", "code", "docs", "review"],
            "from `a`: everything downstream of it, in the graph's order"
        );
    }
}
