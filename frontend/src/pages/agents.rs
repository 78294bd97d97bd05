//! Agents and models: the agent kinds this node runs, its local models and their workers.

use leptos::prelude::*;

use crate::api;
use crate::model::{AgentKind, Models};
use crate::view::loaded;

#[component]
pub fn AgentsPage() -> impl IntoView {
    let agents = LocalResource::new(|| api::get::<Vec<AgentKind>>("/api/v1/agents"));
    let models = LocalResource::new(|| api::get::<Models>("/api/v1/models"));
    view! {
        <h1>"Agents and models"</h1>
        <section class="panel glass" aria-labelledby="models-title">
            <h2 id="models-title">"Local models"</h2>
            {loaded(models, |models: Models| view! {
                <div class="table-scroll"><table class="table">
                    <thead><tr><th scope="col">"Model"</th><th scope="col">"Role"</th><th scope="col">"Device"</th><th scope="col">"Quantisation"</th></tr></thead>
                    <tbody>{models.models.into_iter().map(|model| view! {
                        <tr><th scope="row">{model.name}</th><td>{model.role}</td><td>{model.device}</td><td>{model.quantization}</td></tr>
                    }).collect_view()}</tbody>
                </table></div>
                <h3>"Workers"</h3>
                <ul class="plain">{models.workers.into_iter().map(|worker| view! {
                    <li>{format!("{}: {} of {} busy, {} restarts", worker.kind, worker.load, worker.capacity, worker.restarts)}</li>
                }).collect_view()}</ul>
            })}
        </section>
        <section class="panel glass" aria-labelledby="kinds-title">
            <h2 id="kinds-title">"Agent kinds"</h2>
            {loaded(agents, |agents: Vec<AgentKind>| view! {
                <dl class="kinds">{agents.into_iter().map(|agent| view! {
                    <dt><code>{agent.kind}</code></dt><dd>{agent.description}</dd>
                }).collect_view()}</dl>
            })}
        </section>
    }
}
