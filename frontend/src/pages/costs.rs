//! Costs: what model calls cost, the share served locally and what that saved, by day,
//! by agent and by provider, from the node's ledger.

use leptos::prelude::*;

use crate::api;
use crate::model::{CostLine, Costs};
use crate::view::{BarChart, Stat, format, loaded};

#[component]
pub fn CostsPage() -> impl IntoView {
    let costs = LocalResource::new(|| api::get::<Costs>("/api/v1/costs"));
    view! {
        <h1>"Costs"</h1>
        {loaded(costs, |costs: Costs| view! {
            <section class="stats" aria-label="Totals">
                <Stat label="spent" value=format::usd(costs.total.cost_usd)/>
                <Stat label="saved by local models" value=format::usd(costs.total.savings_usd)/>
                <Stat label="served locally" value=format::percent(costs.total.local_share)/>
                <Stat label="calls" value=costs.total.calls.to_string()/>
            </section>
            <section class="panel glass">
                <BarChart title="Cost by day (USD)" values=costs.by_day.iter().map(|d| (d.key.chars().skip(5).collect(), d.cost_usd)).collect()/>
            </section>
            <CostTable title="By agent" lines=costs.by_agent/>
            <CostTable title="By provider" lines=costs.by_provider/>
            <CostTable title="By day" lines=costs.by_day/>
        })}
    }
}

#[component]
fn CostTable(title: &'static str, lines: Vec<CostLine>) -> impl IntoView {
    view! {
        <section class="panel glass">
            <h2>{title}</h2>
            {if lines.is_empty() {
                view! { <p class="muted">"No model calls yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table class="table">
                        <thead><tr>
                            <th scope="col">"Key"</th><th scope="col">"Calls"</th>
                            <th scope="col" title="Answers the agent that asked could not use">"Refused"</th>
                            <th scope="col">"Tokens in"</th>
                            <th scope="col">"Tokens out"</th><th scope="col">"Cost"</th><th scope="col">"Saved"</th>
                            <th scope="col">"Local"</th>
                        </tr></thead>
                        <tbody>{lines.into_iter().map(|line| view! {
                            <tr>
                                <th scope="row">{line.key}</th><td>{line.calls}</td><td>{line.refusals}</td>
                                <td>{line.tokens_in}</td>
                                <td>{line.tokens_out}</td><td>{format::usd(line.cost_usd)}</td>
                                <td>{format::usd(line.savings_usd)}</td><td>{format::percent(line.local_share)}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}
