//! One module per page of the app.

pub mod account;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod costs;
pub mod dashboard;
pub mod findings;
pub mod run;
pub mod runs;
pub mod sign_in;

use leptos::prelude::*;

/// A counter that goes up with every run event the caller may see: resources that track
/// it refetch when something happens.
pub fn live_ticks() -> RwSignal<u64> {
    let ticks = RwSignal::new(0_u64);
    Effect::new(move |_| {
        crate::api::watch_events(None, move |_| ticks.update(|count| *count += 1));
    });
    ticks
}
