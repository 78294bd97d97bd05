//! A run's trace (see [`troupe_telemetry::RunTrace`]): read back from its record by
//! whichever node runs it, and its root span sent by the node that ends it.

use troupe_store::events::RunStatus;
use troupe_store::{RunId, RunRecord};
use troupe_telemetry::{RunEnd, RunTrace};

pub(crate) fn of_record(record: &RunRecord) -> Option<RunTrace> {
    RunTrace::from_strings(&record.trace, &record.trace_parent)
}

/// What the root span of an ending run says about it.
pub(crate) struct Ended<'a> {
    pub workflow: &'a str,
    pub run_id: &'a RunId,
    pub status: RunStatus,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub cost_usd: f64,
}

pub(crate) fn run_ended(trace: Option<&RunTrace>, ended: &Ended<'_>) {
    if let Some(trace) = trace {
        trace.finish(&RunEnd {
            workflow: ended.workflow,
            run_id: ended.run_id.as_str(),
            status: ended.status.as_str(),
            started_ms: ended.started_ms,
            ended_ms: ended.ended_ms,
            cost_usd: ended.cost_usd,
        });
    }
}
