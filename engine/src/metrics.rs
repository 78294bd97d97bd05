//! What the engine counts for `/metrics`, every name in one place. The node installs
//! the recorder; without one (a unit test, an embedding program that wants none) these
//! calls cost next to nothing. Labels come from small fixed sets (a run's status, an
//! agent kind, an attempt's outcome), never a run id, so a busy node's series stay few.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use troupe_agents::{AgentError, AgentOutput};
use troupe_store::events::RunStatus;

pub const RUNS_STARTED: &str = "troupe_runs_started_total";
pub const RUNS_FINISHED: &str = "troupe_runs_finished_total";
pub const RUN_DURATION: &str = "troupe_run_duration_seconds";
pub const ATTEMPTS: &str = "troupe_task_attempts_total";
pub const ATTEMPT_DURATION: &str = "troupe_task_attempt_duration_seconds";
pub const APPROVALS_WAITING: &str = "troupe_approvals_waiting";
pub const APPROVAL_OLDEST: &str = "troupe_approval_oldest_wait_seconds";

/// The approvals waiting on this node's gates: when each was asked for, by gate.
static WAITING: Mutex<BTreeMap<u64, i64>> = Mutex::new(BTreeMap::new());
static NEXT_GATE: AtomicU64 = AtomicU64::new(0);

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
    describe_gauge!(
        APPROVALS_WAITING,
        "Approvals the runs owned by this node wait for."
    );
    describe_gauge!(
        APPROVAL_OLDEST,
        metrics::Unit::Seconds,
        "How long the oldest of them has waited (0 when none waits)."
    );
}

/// An approval waiting on this node, counted until dropped.
#[derive(Debug)]
pub(crate) struct Waiting(u64);

impl Waiting {
    pub(crate) fn open(requested_at_ms: i64) -> Waiting {
        let gate = NEXT_GATE.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut waiting) = WAITING.lock() {
            waiting.insert(gate, requested_at_ms);
        }
        Waiting(gate)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut waiting) = WAITING.lock() {
            waiting.remove(&self.0);
        }
    }
}

/// Sets the approval gauges as of `now_ms` (at each scrape: an age is a moment's).
pub fn sample_approvals(now_ms: i64) {
    let (count, oldest) = WAITING.lock().map_or((0, None), |waiting| {
        (waiting.len(), waiting.values().min().copied())
    });
    gauge!(APPROVALS_WAITING).set(count as f64);
    let age_ms = oldest.map_or(0, |requested| (now_ms - requested).max(0));
    gauge!(APPROVAL_OLDEST).set(age_ms as f64 / 1e3);
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

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// The two approval gauges as `sample_approvals` sets them at `now_ms`.
    fn sampled(recorder: &DebuggingRecorder, now_ms: i64) -> (f64, f64) {
        metrics::with_local_recorder(recorder, || sample_approvals(now_ms));
        let gauges: BTreeMap<String, f64> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Gauge(value) => Some((key.key().name().to_string(), value.0)),
                _ => None,
            })
            .collect();
        (gauges[APPROVALS_WAITING], gauges[APPROVAL_OLDEST])
    }

    #[test]
    fn waiting_approvals_are_counted_with_the_oldest_s_age_until_their_gates_go() {
        // Each test is a process of its own under nextest: no other gate is open here.
        let recorder = DebuggingRecorder::new();
        assert_eq!(sampled(&recorder, 10_000), (0.0, 0.0));
        let oldest = Waiting::open(1_000);
        let newer = Waiting::open(4_000);
        assert_eq!(sampled(&recorder, 10_000), (2.0, 9.0));
        drop(oldest);
        assert_eq!(sampled(&recorder, 10_000), (1.0, 6.0));
        drop(newer);
        assert_eq!(sampled(&recorder, 10_000), (0.0, 0.0));
    }
}
