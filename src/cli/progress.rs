//! Live progress of a run in the terminal, one line per transition, and the closing
//! summary. Fed by run events, whether they come from this process or a WebSocket.

use std::collections::BTreeMap;
use std::time::Instant;

use troupe_node::RunDetail;
use troupe_store::TaskId;
use troupe_store::events::{RunEvent, StoredEvent};
use troupe_workflow::Workflow;

pub struct Progress {
    started: Instant,
    names: BTreeMap<String, String>,
}

impl Progress {
    pub fn new(workflow: &Workflow) -> Self {
        let names = workflow
            .tasks
            .iter()
            .map(|task| (task.id.clone(), task.name.clone()))
            .collect();
        Self {
            started: Instant::now(),
            names,
        }
    }

    /// Prints the event's line; returns true when the run finished.
    pub fn show(&self, event: &StoredEvent) -> bool {
        let elapsed = self.started.elapsed().as_secs_f32();
        // A fan-out's child (`code[2]`) is named after its fan-out: "Write code [2]".
        let name = |task: &TaskId| {
            let (base, child) = task.as_str().split_once('[').unwrap_or((task.as_str(), ""));
            match self.names.get(base) {
                Some(name) if child.is_empty() => name.clone(),
                Some(name) => format!("{name} [{child}"),
                None => task.to_string(),
            }
        };
        let line = match &event.event {
            RunEvent::RunStarted {
                workflow_id,
                workflow_version,
                ..
            } => {
                format!(
                    "run {} of {workflow_id} v{workflow_version} started",
                    event.run_id
                )
            }
            RunEvent::AttemptStarted { task, attempt, .. } if *attempt > 1 => {
                format!("▶ {} (attempt {attempt})", name(task))
            }
            RunEvent::AttemptStarted { task, .. } => format!("▶ {}", name(task)),
            RunEvent::AttemptSucceeded { task, .. } => format!("✔ {}", name(task)),
            RunEvent::AttemptFailed {
                task,
                attempt,
                error,
                retry_at_ms: Some(_),
                ..
            } => {
                format!(
                    "↻ {} attempt {attempt} failed, will retry: {}",
                    name(task),
                    first_line(error)
                )
            }
            RunEvent::AttemptFailed {
                task,
                error,
                retry_at_ms: None,
                ..
            } => format!("✖ {} failed: {}", name(task), first_line(error)),
            RunEvent::TaskSkipped { task } => format!("⤼ {} skipped", name(task)),
            RunEvent::TaskFailed { task, reason } => {
                format!("✖ {} failed: {}", name(task), first_line(reason))
            }
            RunEvent::TaskCancelled { task, reason } => {
                format!("⊘ {} cancelled: {reason}", name(task))
            }
            RunEvent::ApprovalRequested { task, .. } => format!(
                "⏸ {} waits for approval: troupe approve {} {task} --as NAME [--comment TEXT]",
                name(task),
                event.run_id
            ),
            RunEvent::ApprovalDecided { task, decision } => {
                format!(
                    "{} {} by {}",
                    if decision.approved {
                        "✔ approved:"
                    } else {
                        "✖ rejected:"
                    },
                    name(task),
                    decision.approver
                )
            }
            RunEvent::ApprovalExpired { task } => format!("✖ approval of {} expired", name(task)),
            RunEvent::RunCancelRequested { by } => format!("cancel requested by {by}"),
            RunEvent::RunMigrated {
                by,
                from_version,
                to_version,
            } => format!("moved from version {from_version} to {to_version} by {by}"),
            RunEvent::RunRetried { by, reset } => {
                let tasks: Vec<&str> = reset.iter().map(TaskId::as_str).collect();
                format!("retried by {by}: {}", tasks.join(", "))
            }
            RunEvent::FanOutExpanded { task, items } => {
                format!("⑂ {} fans out over {} items", name(task), items.len())
            }
            RunEvent::RunFinished { status, .. } => format!("run {}", status.as_str()),
        };
        println!("[{elapsed:>7.2}s] {line}");
        matches!(event.event, RunEvent::RunFinished { .. })
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

pub fn print_summary(detail: &RunDetail) {
    println!();
    println!(
        "Run {}  {}  ({} v{})",
        detail.record.run_id,
        detail.record.status.as_str(),
        detail.record.workflow_id,
        detail.record.workflow_version
    );
    if let Some(trace) = detail.trace_url.as_ref().or(detail.trace_id.as_ref()) {
        println!("Trace {trace}");
    }
    // What `troupe run --seed` takes to draw the same model answers again.
    println!("Seed {}", detail.seed);
    println!(
        "{:<24} {:<16} {:>8} {:>10}",
        "TASK", "STATUS", "ATTEMPTS", "SECONDS"
    );
    for task in &detail.tasks {
        let seconds = match (task.started_at_ms, task.finished_at_ms) {
            (Some(start), Some(end)) => format!("{:.2}", (end - start) as f64 / 1000.0),
            _ => "-".into(),
        };
        // A fan-out's children are indented under it.
        let id = match task.parent {
            Some(_) => format!("  {}", task.id),
            None => task.id.to_string(),
        };
        println!(
            "{:<24} {:<16} {:>8} {:>10}",
            id,
            task.status.as_str(),
            task.attempts,
            seconds
        );
    }
    // A fan-out's outputs are its children's, as a list: they are shown once, there.
    let with_outputs: Vec<_> = detail
        .tasks
        .iter()
        .filter(|task| task.parent.is_none())
        .filter_map(|task| Some((&task.id, task.outputs.as_ref()?)))
        .collect();
    if !with_outputs.is_empty() {
        println!("\nOUTPUTS");
        for (task, outputs) in with_outputs {
            println!("{task:<24} {}", shorten(&outputs.to_string(), 300));
        }
    }
    if let Some(reason) = &detail.failure_reason {
        println!("reason: {reason}");
    }
    println!("cost: ${:.4}", detail.cost_usd);
    if let Some(budget) = &detail.budget {
        println!(
            "budget: ${:.4} of ${:.4} spent (on_budget: {})",
            budget.spent_usd, budget.budget_usd, budget.on_budget
        );
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
