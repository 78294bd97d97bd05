//! What the cluster counts for `/metrics`: this node's lease renewals by outcome, and
//! the times it fenced itself (let every run go).

use metrics::{counter, describe_counter};

use crate::lease::Renewal;

pub const LEASE_RENEWALS: &str = "troupe_cluster_lease_renewals_total";
pub const FENCES: &str = "troupe_cluster_fences_total";

/// The help text of the cluster's metrics (once, at start).
pub fn describe() {
    describe_counter!(
        LEASE_RENEWALS,
        "This node's lease renewals, by outcome: extended, lost (the store counts the node \
         dead), unanswered (the store did not answer in time)."
    );
    describe_counter!(
        FENCES,
        "Times this node let every run go because its lease could not be kept."
    );
}

pub(crate) fn renewal(renewal: &Renewal) {
    let outcome = match renewal {
        Renewal::Extended => "extended",
        Renewal::Lost => "lost",
        Renewal::Unanswered => "unanswered",
    };
    counter!(LEASE_RENEWALS, "outcome" => outcome).increment(1);
}

pub(crate) fn fenced() {
    counter!(FENCES).increment(1);
}
