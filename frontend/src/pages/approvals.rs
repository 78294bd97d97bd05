//! The approvals inbox: each gate waiting for a decision, with exactly what will run (the
//! task's rendered inputs, code changes in the diff viewer), decided with a comment. The
//! decision carries the inputs' digest, so a gate whose inputs changed since the page
//! showed them refuses it.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Method};
use crate::model::{DecisionBody, PendingApproval};
use crate::view::{ValueView, format, loaded};

#[component]
pub fn Approvals() -> impl IntoView {
    let ticks = super::live_ticks();
    let pending = super::live::<Vec<PendingApproval>>(ticks, "/api/v1/approvals");
    // Decisions made here, kept above the list: a decided gate leaves the list at once.
    let decided = RwSignal::new(Vec::<String>::new());
    provide_context(decided);
    view! {
        <h1>"Approvals"</h1>
        <ul class="plain" role="status" data-testid="decided">
            {move || decided.get().into_iter().map(|line| view! { <li class="note ok">{line}</li> }).collect_view()}
        </ul>
        {loaded(pending, |pending: Vec<PendingApproval>| {
            if pending.is_empty() {
                return view! { <p class="panel glass muted">"Nothing is waiting for a decision."</p> }.into_any();
            }
            pending.into_iter().map(|gate| view! { <Gate gate=gate/> }).collect_view().into_any()
        })}
    }
}

#[component]
fn Gate(gate: PendingApproval) -> impl IntoView {
    let comment = RwSignal::new(String::new());
    let outcome = RwSignal::new(None::<Result<&'static str, String>>);
    let busy = RwSignal::new(false);
    let title_id = format!("gate-{}-{}", gate.run_id, gate.task);
    let labelled_by = title_id.clone();
    let decided = expect_context::<RwSignal<Vec<String>>>();
    let decide = {
        let gate = gate.clone();
        move |decision: &'static str| {
            let gate = gate.clone();
            busy.set(true);
            spawn_local(async move {
                let comment = comment.get_untracked();
                let body = DecisionBody {
                    decision,
                    // The node records the signed-in reviewer whatever this says.
                    approver: String::from("web"),
                    comment: (!comment.trim().is_empty()).then_some(comment),
                    expected_digest: Some(gate.inputs_digest.clone()),
                };
                let path = format!("/api/v1/runs/{}/tasks/{}/decision", gate.run_id, gate.task);
                let body = serde_json::to_value(&body).ok();
                let result = api::act(Method::Post, &path, body).await;
                if result.is_ok() {
                    decided.update(|lines| {
                        lines.push(format!(
                            "{}: {decision}d, run {}.",
                            gate.task_name, gate.run_id
                        ));
                    });
                }
                outcome.set(Some(
                    result.map(|_| decision).map_err(|error| error.to_string()),
                ));
                busy.set(false);
            });
        }
    };
    let approve = {
        let decide = decide.clone();
        move |_| decide("approve")
    };
    let reject = move |_| decide("reject");
    let inputs = match &gate.inputs {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| {
                view! {
                    <div class="input">
                        <h3><code>{name.clone()}</code></h3>
                        <ValueView value=value.clone()/>
                    </div>
                }
            })
            .collect_view()
            .into_any(),
        other => view! { <ValueView value=other.clone()/> }.into_any(),
    };
    view! {
        <article class="panel glass gate" aria-labelledby=labelled_by data-testid="gate" data-run=gate.run_id.clone()>
            <header class="page-head">
                <h2 id=title_id>{gate.task_name.clone()}</h2>
                <a href=format!("/runs/{}", gate.run_id)>{format!("{} · run {}", gate.workflow_id, gate.run_id)}</a>
            </header>
            <p class="muted">
                {format!("Project {}. Asked {} UTC; expires {} UTC.", gate.project,
                    format::timestamp(gate.requested_at_ms), format::timestamp(gate.expires_at_ms))}
            </p>
            <section aria-label="What will run">{inputs}</section>
            <p class="muted">"Inputs digest " <code>{gate.inputs_digest.chars().take(16).collect::<String>()}</code></p>
            <label>"Comment"
                <textarea rows="2" prop:value=move || comment.get()
                    on:input=move |ev| comment.set(event_target_value(&ev))></textarea>
            </label>
            <div class="actions">
                <button type="button" class="button primary" on:click=approve disabled=move || busy.get() || outcome.get().is_some_and(|o| o.is_ok())>"Approve"</button>
                <button type="button" class="button danger" on:click=reject disabled=move || busy.get() || outcome.get().is_some_and(|o| o.is_ok())>"Reject"</button>
            </div>
            {move || outcome.get().map(|result| match result {
                Ok(decision) => view! { <p class="note" role="status">{format!("Done: {decision}d.")}</p> }.into_any(),
                Err(message) => view! { <p class="note error" role="alert">{message}</p> }.into_any(),
            })}
        </article>
    }
}
