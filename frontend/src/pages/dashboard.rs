//! The dashboard: what the node's alert rules raise, this node's health, runs by state,
//! approvals waiting, the model workers'
//! load, the local share of tokens and today's cost and savings, and charts of runs and
//! cost over time. Every event the caller may see refreshes it.

use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::api::{self, UiError};

use crate::model::{
    AlertLine, Alerts, ClusterView, Costs, Member, Models, PendingApproval, PoolLoad, Readiness,
    RunSummary,
};
use crate::view::{BarChart, Stat, format, loaded};

const HOUR_MS: i64 = 3_600_000;

/// What a panel of the dashboard reads: the value, or why it could not be read.
type Live<T> = LocalResource<Result<T, UiError>>;

#[component]
pub fn Dashboard() -> impl IntoView {
    let ticks = super::live_ticks();
    let runs = super::live::<Vec<RunSummary>>(ticks, "/api/v1/runs?limit=1000");
    let approvals = super::live::<Vec<PendingApproval>>(ticks, "/api/v1/approvals");
    let costs = super::live::<Costs>(ticks, "/api/v1/costs");
    let models = super::live::<Models>(ticks, "/api/v1/models");
    let health = LocalResource::new(|| api::get::<Readiness>("/readyz"));
    let pools = super::live::<BTreeMap<String, PoolLoad>>(ticks, "/api/v1/pools");
    // Nodes come and go without a run event: read every heartbeat or so.
    let cluster = super::live::<ClusterView>(super::every(1_000), "/api/v1/cluster");
    // The node evaluates its rules every few seconds (alerts.evaluate_every_secs).
    let alerts = super::live::<Alerts>(super::every(2_000), "/api/v1/alerts");
    view! {
        <h1>"Dashboard"</h1>
        <RunStats runs=runs approvals=approvals/>
        <div class="grid">
            <NodeAlerts alerts=alerts/>
            <NodeHealth health=health/>
            <ClusterNodes cluster=cluster/>
            <AgentPools pools=pools/>
            <ModelWorkers models=models/>
            <TokensAndCost costs=costs/>
            <RunsPerHour runs=runs/>
        </div>
    }
}

/// How many runs are in each state, and how many approvals wait (a link to them).
#[component]
fn RunStats(runs: Live<Vec<RunSummary>>, approvals: Live<Vec<PendingApproval>>) -> impl IntoView {
    let count = move |state: &'static str| {
        Signal::derive(move || match runs.get() {
            Some(Ok(runs)) => runs
                .iter()
                .filter(|run| run.status == state)
                .count()
                .to_string(),
            _ => "—".into(),
        })
    };
    let waiting = Signal::derive(move || match approvals.get() {
        Some(Ok(list)) => list.len().to_string(),
        _ => "—".into(),
    });
    view! {
        <section class="stats" aria-label="Runs and approvals" data-testid="run-stats">
            <Stat label="running" value=count("running")/>
            <Stat label="completed" value=count("completed")/>
            <Stat label="failed" value=count("failed")/>
            <Stat label="cancelled" value=count("cancelled")/>
            <a class="stat glass link" href="/approvals">
                <span class="stat-value" data-testid="approvals-waiting">{move || waiting.get()}</span>
                <span class="stat-label">"approvals waiting"</span>
            </a>
        </section>
    }
}

/// The alerts pending and firing on this node, firing and most severe first; a quiet
/// line when there are none.
#[component]
fn NodeAlerts(alerts: Live<Alerts>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="alerts-title">
            <h2 id="alerts-title">"Alerts"</h2>
            {loaded(alerts, |alerts: Alerts| {
                if !alerts.evaluating {
                    let off = "This node evaluates no alert rules (alerts.enabled is off).";
                    return view! { <p class="muted">{off}</p> }.into_any();
                }
                if alerts.alerts.is_empty() {
                    let quiet = format!("Nothing needs a person: {} rules quiet.", alerts.rules.len());
                    return view! { <p class="muted" data-testid="alerts-quiet">{quiet}</p> }.into_any();
                }
                view! {
                    <ul class="plain" data-testid="alerts">
                        {alerts.alerts.iter().map(alert_line).collect_view()}
                    </ul>
                }
                .into_any()
            })}
        </section>
    }
}

fn alert_line(alert: &AlertLine) -> impl IntoView + use<> {
    let since = alert.fired_at_ms.unwrap_or(alert.active_at_ms);
    view! {
        <li data-alert=alert.name.clone() data-severity=alert.severity.clone()>
            <span class="status" data-state=alert.state.clone()>{alert.state.clone()}</span>
            " "<strong>{alert.severity.clone()}</strong>" "{alert.summary.clone()}
            <span class="muted">{format!(" (since {})", format::timestamp(since))}</span>
        </li>
    }
}

/// Whether this node is ready, and the state of its store and supervision.
#[component]
fn NodeHealth(health: Live<Readiness>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="node-title">
            <h2 id="node-title">"This node"</h2>
            {loaded(health, |health: Readiness| view! {
                <dl class="facts">
                    <dt>"Ready"</dt><dd>{if health.ready { "yes" } else { "no" }}</dd>
                    <dt>"Store"</dt><dd>{health.store}</dd>
                    <dt>"Supervision"</dt><dd>{health.supervision}</dd>
                </dl>
            })}
        </section>
    }
}

/// The nodes sharing the store, each live or not, linked to this one or not, with the
/// age of its lease and the slots it last reported free.
#[component]
fn ClusterNodes(cluster: Live<ClusterView>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="cluster-title">
            <h2 id="cluster-title">"Cluster"</h2>
            {loaded(cluster, |view: ClusterView| {
                if view.members.is_empty() {
                    return view! {
                        <p class="muted">"This node runs alone (cluster.enabled is off)."</p>
                    }
                    .into_any();
                }
                view! {
                    <ul class="plain" data-testid="cluster-nodes">
                        {view.members.iter().map(|member| member_line(member, &view)).collect_view()}
                    </ul>
                }
                .into_any()
            })}
        </section>
    }
}

fn member_line(member: &Member, view: &ClusterView) -> impl IntoView + use<> {
    let here = member.name == view.node;
    let link = if here {
        "this node"
    } else if view.linked.contains(&member.name) {
        "linked"
    } else {
        "not linked"
    };
    let state = if member.live { "live" } else { "lease lapsed" };
    let slots = member
        .free_slots()
        .map_or_else(String::new, |free| format!(", {free} slots free"));
    let memory = member
        .free_memory_bytes()
        .map_or_else(String::new, |bytes| {
            format!(", {:.1} GiB free", bytes as f64 / (1u64 << 30) as f64)
        });
    let models = member.models();
    let models = if models.is_empty() {
        String::new()
    } else {
        format!(", serves {}", models.join(", "))
    };
    let labels = if member.labels.is_empty() {
        String::new()
    } else {
        format!(" [{}]", member.labels.join(", "))
    };
    view! {
        <li data-member=member.name.clone() data-live=member.live.to_string()>
            {format!("{}{labels}: {state}, {link}, renewed {} ago{slots}{memory}{models}",
                member.name, format::duration(member.lease_age_ms))}
        </li>
    }
}

/// The agent pools at work, each with its busy, queued and free places; the idle ones
/// only counted.
#[component]
fn AgentPools(pools: Live<BTreeMap<String, PoolLoad>>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="pools-title">
            <h2 id="pools-title">"Agent pools"</h2>
            {loaded(pools, |pools: BTreeMap<String, PoolLoad>| {
                let idle = pools.values().filter(|load| load.admitted == 0).count();
                let working: Vec<(String, PoolLoad)> =
                    pools.into_iter().filter(|(_, load)| load.admitted > 0).collect();
                view! {
                    <ul class="plain" data-testid="pools">
                        {working.into_iter().map(|(kind, load)| view! {
                            <li>{format!("{kind}: {} busy, {} queued, {} free",
                                load.running, load.admitted.saturating_sub(load.running),
                                load.capacity.saturating_sub(load.admitted))}</li>
                        }).collect_view()}
                    </ul>
                    <p class="muted">{format!("{idle} kinds idle")}</p>
                }
            })}
        </section>
    }
}

/// Each local model worker's load.
#[component]
fn ModelWorkers(models: Live<Models>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="workers-title">
            <h2 id="workers-title">"Model workers"</h2>
            {loaded(models, |models: Models| view! {
                <ul class="plain">
                    {models.workers.into_iter().map(|worker| {
                        let busy = worker.load.min(worker.capacity);
                        view! {
                            <li>
                                <span>{format!("{} — {} busy, {} idle", worker.kind, busy, worker.capacity - busy)}</span>
                                <meter min="0" max=worker.capacity as f64 value=busy as f64
                                    aria-label=format!("{} worker load", worker.kind)></meter>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                {(!models.serving).then(|| view! { <p class="muted">"This node serves no local models."</p> })}
            })}
        </section>
    }
}

/// The local share of tokens, today's cost and savings, each provider's speed, and the
/// last week's cost by day.
#[component]
fn TokensAndCost(costs: Live<Costs>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="cost-title">
            <h2 id="cost-title">"Tokens and cost"</h2>
            {loaded(costs, |costs: Costs| {
                let today = costs.by_day.last().cloned();
                view! {
                    <dl class="facts">
                        <dt>"Local share of tokens"</dt><dd>{format::percent(costs.total.local_share)}</dd>
                        <dt>"Today's cost"</dt><dd>{format::usd(today.as_ref().map_or(0.0, |d| d.cost_usd))}</dd>
                        <dt>"Today's savings"</dt><dd>{format::usd(today.as_ref().map_or(0.0, |d| d.savings_usd))}</dd>
                        {costs.by_provider.iter().filter_map(|line| line.tokens_per_second().map(|rate| view! {
                            <dt>{format!("{} tokens/s", line.key)}</dt><dd>{format!("{rate:.1}")}</dd>
                        })).collect_view()}
                        <dt>"Tokens in / out"</dt><dd>{format!("{} / {}", costs.total.tokens_in, costs.total.tokens_out)}</dd>
                    </dl>
                    <BarChart title="Cost by day (USD)"
                        values=costs.by_day.iter().rev().take(7).rev().map(|d| (d.key.chars().skip(5).collect(), d.cost_usd)).collect()/>
                }
            })}
        </section>
    }
}

/// Runs started in each of the last 12 hours, counted back from the newest run.
#[component]
fn RunsPerHour(runs: Live<Vec<RunSummary>>) -> impl IntoView {
    view! {
        <section class="panel glass" aria-labelledby="throughput-title">
            <h2 id="throughput-title">"Runs started, last 12 hours"</h2>
            {loaded(runs, |runs: Vec<RunSummary>| {
                let newest = runs.iter().map(|run| run.created_at_ms).max().unwrap_or(0);
                let now_hour = newest / HOUR_MS;
                let values = (0..12)
                    .rev()
                    .map(|ago| {
                        let hour = now_hour - ago;
                        let started = runs.iter().filter(|run| run.created_at_ms / HOUR_MS == hour).count();
                        (format!("{:02}", hour.rem_euclid(24)), started as f64)
                    })
                    .collect();
                view! { <BarChart title="Runs started per hour (UTC)" values=values/> }
            })}
        </section>
    }
}
