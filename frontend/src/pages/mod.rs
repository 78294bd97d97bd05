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
pub mod triggers;

use leptos::prelude::*;

/// `GET path`, fetched again whenever `ticks` goes up.
pub fn live<T: serde::de::DeserializeOwned + Clone + 'static>(
    ticks: RwSignal<u64>,
    path: &'static str,
) -> LocalResource<Result<T, crate::api::UiError>> {
    LocalResource::new(move || {
        ticks.track();
        crate::api::get::<T>(path)
    })
}

/// Starts a run of `workflow_id` at `version` and opens its page.
pub async fn start_and_open(workflow_id: &str, version: u32) -> Result<(), crate::api::UiError> {
    let path = format!("/api/v1/workflows/{workflow_id}/runs");
    let body = serde_json::json!({ "version": version });
    let started: crate::model::RunStarted = crate::api::post(&path, &body).await?;
    crate::api::go_to(&format!("/runs/{}", started.run_id));
    Ok(())
}

/// A counter that goes up every `ms` milliseconds while the page is shown: for what
/// changes without a run event (the cluster's members).
pub fn every(ms: u64) -> RwSignal<u64> {
    let ticks = RwSignal::new(0_u64);
    // In an effect: effects run in the browser only, and a timer on the server (which
    // renders the page first) does not exist.
    Effect::new(move |_| {
        let interval = set_interval_with_handle(
            move || ticks.update(|count| *count += 1),
            std::time::Duration::from_millis(ms),
        );
        if let Ok(interval) = interval {
            on_cleanup(move || interval.clear());
        }
    });
    ticks
}

/// A counter that goes up with every run event the caller may see: resources that track
/// it refetch when something happens.
pub fn live_ticks() -> RwSignal<u64> {
    let ticks = RwSignal::new(0_u64);
    Effect::new(move |_| {
        crate::api::watch_events(None, move |_| ticks.update(|count| *count += 1));
    });
    ticks
}
