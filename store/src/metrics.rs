//! How long the store takes, for `/metrics`: reads, writes, and the run log's appends
//! (the engine's hot path) apart.

use std::time::Instant;

use metrics::{describe_histogram, histogram};

pub const OPERATION_DURATION: &str = "troupe_store_operation_duration_seconds";

/// The help text of the store's metrics (once, at start).
pub fn describe() {
    describe_histogram!(
        OPERATION_DURATION,
        metrics::Unit::Seconds,
        "How long store operations took, by kind: read, write, append (a run log's)."
    );
}

/// Records the time since `started` of an operation of `kind`.
pub(crate) fn took(kind: &'static str, started: Instant) {
    histogram!(OPERATION_DURATION, "operation" => kind).record(started.elapsed().as_secs_f64());
}
