//! Triggers: each workflow that starts itself (a schedule, a push webhook), when its
//! schedule fires next, its latest runs, and a button that pauses or resumes it.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Method};
use crate::model::{RunSummary, TriggerView};
use crate::view::{Status, format, loaded};

#[component]
pub fn TriggersPage() -> impl IntoView {
    // Run events move the "last runs"; a pause or resume here moves the rest.
    let ticks = super::live_ticks();
    let triggers = super::live::<Vec<TriggerView>>(ticks, "/api/v1/triggers");
    view! {
        <h1>"Triggers"</h1>
        {loaded(triggers, move |triggers: Vec<TriggerView>| {
            if triggers.is_empty() {
                return view! { <p class="panel glass muted">"No workflow has a schedule or a push trigger."</p> }.into_any();
            }
            triggers.into_iter().map(|trigger| view! { <Trigger trigger=trigger ticks=ticks/> }).collect_view().into_any()
        })}
    }
}

#[component]
fn Trigger(trigger: TriggerView, ticks: RwSignal<u64>) -> impl IntoView {
    let title_id = format!("trigger-{}", trigger.workflow_id);
    let labelled_by = title_id.clone();
    let notice = RwSignal::new(None::<String>);
    let (action, label) = if trigger.paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    };
    let workflow_id = trigger.workflow_id.clone();
    let act = move |_| {
        let path = format!("/api/v1/workflows/{workflow_id}/triggers/{action}");
        spawn_local(async move {
            match api::act(Method::Post, &path, Some(serde_json::json!({}))).await {
                Ok(()) => ticks.update(|count| *count += 1),
                Err(error) => notice.set(Some(error.to_string())),
            }
        });
    };
    view! {
        <section class="panel glass trigger" aria-labelledby=labelled_by data-testid="trigger">
            <header class="page-head">
                <h2 id=title_id>{trigger.name.clone()}</h2>
                <span class="badge" data-testid="trigger-state">{if trigger.paused { "paused" } else { "active" }}</span>
                <div class="actions">
                    <button type="button" class="button" on:click=act>{label}</button>
                </div>
            </header>
            <dl class="kinds">
                <dt>"Workflow"</dt><dd><code>{trigger.workflow_id.clone()}</code>", project "{trigger.project.clone()}</dd>
                {trigger.schedule.map(|schedule| view! {
                    <dt>"Schedule"</dt>
                    <dd>
                        <code>{schedule.cron}</code>
                        {format!(" in {}, catch_up: {}", schedule.timezone.unwrap_or_else(|| "UTC".into()), schedule.catch_up)}
                    </dd>
                    <dt>"Next tick"</dt>
                    <dd data-testid="next-tick">{schedule.next_tick_ms.map_or_else(|| "none while paused".to_owned(), |ms| format!("{} UTC", format::timestamp(ms)))}</dd>
                })}
                {trigger.on_push.map(|push| view! {
                    <dt>"On push to"</dt>
                    <dd>{push.branches.join(", ")}{push.secret.map_or_else(|| " (no secret: every delivery is refused)".to_owned(), |name| format!(", secret {name}"))}</dd>
                })}
            </dl>
            {move || notice.get().map(|message| view! { <p class="note" role="status">{message}</p> })}
            <LastRuns runs=trigger.last_runs/>
        </section>
    }
}

#[component]
fn LastRuns(runs: Vec<RunSummary>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted">"No runs yet."</p> }.into_any();
    }
    view! {
        <div class="table-scroll"><table class="table">
            <thead><tr><th scope="col">"Run"</th><th scope="col">"Status"</th><th scope="col">"Started"</th><th scope="col">"By"</th></tr></thead>
            <tbody>{runs.into_iter().map(|run| view! {
                <tr>
                    <th scope="row"><a href=format!("/runs/{}", run.run_id)>{run.run_id.clone()}</a></th>
                    <td><Status status=run.status/></td>
                    <td>{format::timestamp(run.created_at_ms)}</td>
                    <td>{run.started_by}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}
