//! What the audit log shows `/metrics`: how long the chain is, and how its last
//! verification went and when, so an alert fires on a chain found broken or left
//! unchecked.

use metrics::{describe_gauge, gauge};

pub const CHAIN_LENGTH: &str = "troupe_audit_chain_entries";
pub const CHAIN_INTACT: &str = "troupe_audit_chain_intact";
pub const LAST_VERIFIED: &str = "troupe_audit_last_verification_timestamp_seconds";

/// The help text of the audit log's metrics (once, at start).
pub fn describe() {
    describe_gauge!(
        CHAIN_LENGTH,
        "Entries in the audit chain, as this node last appended or verified it."
    );
    describe_gauge!(
        CHAIN_INTACT,
        "1 when the last verification found the chain intact, 0 when it found a breach."
    );
    describe_gauge!(
        LAST_VERIFIED,
        metrics::Unit::Seconds,
        "When the chain was last verified (Unix time)."
    );
}

pub(super) fn appended(seq: u64) {
    gauge!(CHAIN_LENGTH).set(seq as f64);
}

pub(super) fn verified(entries: u64, intact: bool, at_ms: i64) {
    gauge!(CHAIN_LENGTH).set(entries as f64);
    gauge!(CHAIN_INTACT).set(if intact { 1.0 } else { 0.0 });
    gauge!(LAST_VERIFIED).set(at_ms as f64 / 1e3);
}
