//! Runs: every run the caller may see, filtered by state and by workflow, kept current by
//! the event stream.

use leptos::prelude::*;

use crate::api;
use crate::model::RunSummary;
use crate::view::{FilterSelect, Status, format, loaded};

const STATES: [&str; 5] = ["", "running", "completed", "failed", "cancelled"];

#[component]
pub fn Runs() -> impl IntoView {
    let ticks = super::live_ticks();
    let state = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let runs = LocalResource::new(move || {
        ticks.track();
        let state = state.get();
        async move {
            let query = if state.is_empty() {
                String::new()
            } else {
                format!("&status={state}")
            };
            api::get::<Vec<RunSummary>>(&format!("/api/v1/runs?limit=1000{query}")).await
        }
    });
    view! {
        <h1>"Runs"</h1>
        <form class="filters glass" role="search" on:submit=|ev| ev.prevent_default()>
            <FilterSelect label="State" choices=&STATES value=state/>
            <label>"Workflow"
                <input type="search" placeholder="name or id" prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))/>
            </label>
        </form>
        <section class="panel glass">
            {loaded(runs, move |runs: Vec<RunSummary>| {
                let wanted = text.get().to_lowercase();
                let shown: Vec<RunSummary> = runs
                    .into_iter()
                    .filter(|run| wanted.is_empty()
                        || run.workflow_name.to_lowercase().contains(&wanted)
                        || run.workflow_id.contains(&wanted))
                    .collect();
                if shown.is_empty() {
                    return view! { <p class="muted">"No runs match."</p> }.into_any();
                }
                view! {
                    <div class="table-scroll">
                        <table class="table" data-testid="runs">
                            <thead><tr>
                                <th scope="col">"Workflow"</th><th scope="col">"State"</th>
                                <th scope="col">"Project"</th><th scope="col">"Started by"</th>
                                <th scope="col">"Started (UTC)"</th><th scope="col">"Took"</th>
                            </tr></thead>
                            <tbody>
                                {shown.into_iter().map(|run| {
                                    let took = if run.finished_at_ms > 0 {
                                        format::duration(run.finished_at_ms - run.created_at_ms)
                                    } else {
                                        "—".into()
                                    };
                                    view! {
                                        <tr>
                                            <td><a href=format!("/runs/{}", run.run_id)>{run.workflow_name.clone()}</a></td>
                                            <td><Status status=run.status.clone()/></td>
                                            <td>{run.project.clone()}</td>
                                            <td>{run.started_by.clone()}</td>
                                            <td>{format::timestamp(run.created_at_ms)}</td>
                                            <td>{took}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            })}
        </section>
    }
}
