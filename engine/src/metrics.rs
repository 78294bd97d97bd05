//! What the engine counts for `/metrics`, every name in one place. The node installs
//! the recorder; without one (a unit test, an embedding program that wants none) these
//! calls cost next to nothing. Labels come from small fixed sets (a run's status, an
//! agent kind, an attempt's outcome), never a run id, so a busy node's series stay few.

use metrics::{counter, describe_counter, describe_histogram, histogram};
use troupe_agents::{AgentError, AgentOutput};
use troupe_store::events::RunStatus;

pub const RUNS_STARTED: &str = "troupe_runs_started_total";
pub const RUNS_FINISHED: &str = "troupe_runs_finished_total";
pub const RUN_DURATION: &str = "troupe_run_duration_seconds";
pub const ATTEMPTS: &str = "troupe_task_attempts_total";
pub const ATTEMPT_DURATION: &str = "troupe_task_attempt_duration_seconds";

/// The help text of each of the engine's metrics (once, at start).
pub fn describe() {
    describe_counter!(RUNS_STARTED, "Runs started on this node.");
    describe_counter!(
        RUNS_FINISHED,
        "Runs that ended on this node, by status (completed, failed, cancelled)."
    );
    describe_histogram!(
        RUN_DURATION,
        metrics::Unit::Seconds,
        "From a run's start to its end, by status."
    );
    describe_counter!(
        ATTEMPTS,
        "Task attempts that ended on this node, by agent kind and outcome."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        metrics::Unit::Seconds,
        "How long task attempts ran, by agent kind."
    );
}

pub(crate) fn run_started() {
    counter!(RUNS_STARTED).increment(1);
}

/// A run ended `status`, `millis` after it started.
pub(crate) fn run_finished(status: RunStatus, millis: i64) {
    counter!(RUNS_FINISHED, "status" => status.as_str()).increment(1);
    histogram!(RUN_DURATION, "status" => status.as_str()).record(millis.max(0) as f64 / 1e3);
}

/// An attempt of `kind` ended with `outcome` after `seconds`.
pub(crate) fn attempt_ended(kind: &str, outcome: &Result<AgentOutput, AgentError>, seconds: f64) {
    let outcome = outcome_word(outcome);
    let kind = kind.to_string();
    counter!(ATTEMPTS, "kind" => kind.clone(), "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_DURATION, "kind" => kind).record(seconds);
}

/// An attempt's outcome in one word, for a label or a span's `error.type`.
pub(crate) fn outcome_word(outcome: &Result<AgentOutput, AgentError>) -> &'static str {
    match outcome {
        Ok(_) => "succeeded",
        Err(AgentError::Cancelled) => "cancelled",
        Err(AgentError::TimedOut { .. }) => "timed_out",
        Err(_) => "failed",
    }
}
